//! The cap on open event streams, per tenant and per caller (an API key, or a widget user): every door
//! that answers with Server-Sent Events reserves a [`StreamSlot`] before it starts anything, and the
//! slot goes with the stream's body, so it is given back when the stream ends or its client goes away.
//! Over the cap: 429 `too_many_streams` with `Retry-After`, and nothing was started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::auth::context::{Actor, TenantContext};
use crate::engine::Delivery;
use crate::ids::{ApiKeyId, TenantId, UserId};

/// How long a refused client is asked to wait: streams end with their runs, mostly within a minute.
const RETRY_AFTER_SECONDS: u64 = 5;

/// The open streams of every tenant and caller; one per router, in the requests' extensions.
#[derive(Debug, Clone)]
pub struct OpenStreams {
    per_tenant: usize,
    per_caller: usize,
    counts: Arc<Mutex<HashMap<Holder, usize>>>,
}

/// Who a stream counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Tenant(TenantId),
    ApiKey(ApiKeyId),
    EndUser(UserId),
    /// The operator acting inside a tenant: one caller per tenant.
    Operator(TenantId),
}

impl OpenStreams {
    pub fn new(per_tenant: usize, per_caller: usize) -> Self {
        Self { per_tenant, per_caller, counts: Arc::default() }
    }

    /// A slot for one stream of `context`'s tenant and caller, or 429 `too_many_streams`.
    pub fn reserve(&self, context: &TenantContext) -> Result<StreamSlot, ApiError> {
        self.reserve_for(context.tenant_id(), context.actor())
    }

    fn reserve_for(&self, tenant_id: TenantId, actor: Actor) -> Result<StreamSlot, ApiError> {
        let tenant = Holder::Tenant(tenant_id);
        let caller = match actor {
            Actor::ApiKey(id) => Holder::ApiKey(id),
            Actor::EndUser(id) => Holder::EndUser(id),
            Actor::Operator => Holder::Operator(tenant_id),
        };
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let open = |holder| counts.get(&holder).copied().unwrap_or(0);
        let refusal = if open(tenant) >= self.per_tenant {
            Some(format!("the tenant has {} event streams open, its limit", self.per_tenant))
        } else if open(caller) >= self.per_caller {
            Some(format!("this caller has {} event streams open, its limit", self.per_caller))
        } else {
            None
        };
        if let Some(message) = refusal {
            crate::metrics::refused("too_many_streams");
            tracing::info!(%tenant_id, "an event stream was refused: {message}");
            return Err(ApiError {
                retry_after_seconds: Some(RETRY_AFTER_SECONDS),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message)
            });
        }
        for holder in [tenant, caller] {
            *counts.entry(holder).or_insert(0) += 1;
        }
        crate::metrics::open_streams(1.0);
        Ok(StreamSlot { streams: self.clone(), holders: [tenant, caller] })
    }

    /// A slot when the client asked for a stream (`None` otherwise): reserved before the door starts
    /// anything, so a refusal leaves nothing behind.
    pub fn reserve_if(&self, wanted: bool, context: &TenantContext) -> Result<Option<StreamSlot>, ApiError> {
        wanted.then(|| self.reserve(context)).transpose()
    }

    fn release(&self, holders: [Holder; 2]) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for holder in holders {
            if let Some(open) = counts.get_mut(&holder) {
                *open -= 1;
                if *open == 0 {
                    counts.remove(&holder);
                }
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OpenStreams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| ApiError::internal(&std::io::Error::other("the router holds no OpenStreams extension")))
    }
}

/// One open stream, counted until this is dropped (with the response body that holds it).
#[derive(Debug)]
pub struct StreamSlot {
    streams: OpenStreams,
    holders: [Holder; 2],
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        crate::metrics::open_streams(-1.0);
        self.streams.release(self.holders);
    }
}

/// How the engine delivers a turn's answer: as a stream when a slot was reserved for one.
pub fn delivery(slot: Option<&StreamSlot>) -> Delivery {
    if slot.is_some() { Delivery::Stream } else { Delivery::Wait }
}

/// The slot of a stream the engine answered with: reserved, since it streams only when asked to.
pub fn required(slot: Option<StreamSlot>) -> Result<StreamSlot, ApiError> {
    slot.ok_or_else(|| ApiError::internal(&std::io::Error::other("an event stream without a reserved slot")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_per_tenant_and_caller_and_are_given_back_when_dropped() {
        let streams = OpenStreams::new(3, 2);
        let (tenant, other_tenant) = (TenantId::new(), TenantId::new());
        let (first_key, second_key) = (Actor::ApiKey(ApiKeyId::new()), Actor::EndUser(UserId::new()));
        let first = streams.reserve_for(tenant, first_key).unwrap();
        let _second = streams.reserve_for(tenant, first_key).unwrap();
        let refused = streams.reserve_for(tenant, first_key).unwrap_err();
        assert_eq!((refused.status, refused.code.as_ref()), (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"));
        assert_eq!(refused.retry_after_seconds, Some(RETRY_AFTER_SECONDS));

        let _third = streams.reserve_for(tenant, second_key).unwrap();
        let tenant_full = streams.reserve_for(tenant, second_key).unwrap_err();
        assert!(tenant_full.message.contains("tenant"), "{}", tenant_full.message);
        let _elsewhere = streams.reserve_for(other_tenant, Actor::ApiKey(ApiKeyId::new())).unwrap();

        drop(first);
        let _again = streams.reserve_for(tenant, first_key).unwrap();
        assert_eq!(streams.counts.lock().unwrap().get(&Holder::Tenant(tenant)), Some(&3));
    }
}
