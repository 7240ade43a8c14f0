//! Idempotency keys, for every door that starts runs (integration chat, workspace runs): the first
//! request with a key claims it and starts its run; a retry with the same key and request gets the run
//! the first one started (waiting briefly if it is still starting); the same key with a different
//! request is refused. Keys are per tenant and per `scope` (the door). One path, [`start_once`], for all.

pub mod store;

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{RunId, SessionId};

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("Idempotency-Key must be 1 to 200 visible ASCII characters")]
    InvalidKey,
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("a request with this Idempotency-Key is still being started; retry shortly")]
    InProgress,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A client's `Idempotency-Key`: 1 to 200 visible ASCII characters, refused otherwise (never ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(key: &str) -> Result<Self, IdempotencyError> {
        let valid = (1..=200).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic());
        if valid { Ok(Self(key.to_owned())) } else { Err(IdempotencyError::InvalidKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a door asks to start once: its scope (keys of different doors never meet), the client's key,
/// and what makes two requests the same request.
#[derive(Debug, Clone, Copy)]
pub struct Once<'a> {
    pub scope: &'static str,
    pub key: Option<&'a IdempotencyKey>,
    pub fingerprint: &'a [u8],
}

/// The outcome of [`start_once`]: this request started something, or an earlier one with the key did.
#[derive(Debug, Clone)]
pub enum Started<T> {
    New(T),
    Replayed { session_id: SessionId, run_id: RunId },
}

/// How long a retry waits for the first request to record its run before answering `InProgress`.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// Runs `start` (a future, so nothing happens until it is awaited) unless an earlier request with the same
/// key did; `ids` names the conversation and run it started, recorded under the key. When `start` fails
/// nothing ran, and the key is free again for a retry. Without a key, `start` simply runs.
pub async fn start_once<T, E>(
    pool: &PgPool,
    context: &TenantContext,
    once: Once<'_>,
    start: impl Future<Output = Result<T, E>>,
    ids: impl Fn(&T) -> (SessionId, RunId),
) -> Result<Started<T>, E>
where
    E: From<IdempotencyError>,
{
    let Some(key) = once.key else { return Ok(Started::New(start.await?)) };
    // The bookkeeping is boxed: `start` (a whole turn's start) is held across it, and every door awaits this.
    if let Some((session_id, run_id)) =
        Box::pin(claim(pool, context, once.scope, key.as_str(), once.fingerprint)).await?
    {
        return Ok(Started::Replayed { session_id, run_id });
    }
    match start.await {
        Ok(started) => {
            Box::pin(settle(pool, context, once.scope, key.as_str(), Some(ids(&started)))).await?;
            Ok(Started::New(started))
        }
        Err(error) => {
            Box::pin(settle(pool, context, once.scope, key.as_str(), None)).await?;
            Err(error)
        }
    }
}

/// Records under the key the conversation and run its request started, or (`None`: it started nothing)
/// frees the key for a retry.
async fn settle(
    pool: &PgPool,
    context: &TenantContext,
    scope: &str,
    key: &str,
    started: Option<(SessionId, RunId)>,
) -> Result<(), IdempotencyError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    match started {
        Some((session_id, run_id)) => store::record(&mut transaction, scope, key, session_id, run_id).await?,
        None => store::release(&mut transaction, scope, key).await?,
    }
    transaction.commit().await?;
    Ok(())
}

/// Claims the key for this request (`None`), or returns the run an earlier request with it started.
async fn claim(
    pool: &PgPool,
    context: &TenantContext,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> Result<Option<(SessionId, RunId)>, IdempotencyError> {
    let waited = Instant::now();
    loop {
        let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
        if store::insert(&mut transaction, context.tenant_id(), scope, key, fingerprint).await? {
            transaction.commit().await?;
            return Ok(None);
        }
        let claimed = store::get(&mut transaction, scope, key).await?;
        transaction.commit().await?;
        if claimed.request_hash != fingerprint {
            return Err(IdempotencyError::KeyReused);
        }
        if let (Some(session_id), Some(run_id)) = (claimed.session_id, claimed.run_id) {
            return Ok(Some((session_id, run_id)));
        }
        // A claim whose request died before starting its run would block the key for good: after a
        // minute it is dropped and the next retry claims the key.
        let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
        let dropped = store::drop_abandoned(&mut transaction, scope, key).await?;
        transaction.commit().await?;
        if dropped {
            continue;
        }
        if waited.elapsed() >= WAIT_FOR_FIRST {
            return Err(IdempotencyError::InProgress);
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_reasonable_length() {
        for valid in ["a", "order-77", "A1b2_C3.d4:e5/f6", &"k".repeat(200)] {
            assert_eq!(IdempotencyKey::parse(valid).unwrap().as_str(), valid);
        }
        for invalid in ["", " ", "with space", "café", "tab\there", &"k".repeat(201)] {
            assert!(matches!(IdempotencyKey::parse(invalid), Err(IdempotencyError::InvalidKey)), "{invalid:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

            /// Any text is a key, exactly as given, when it is 1 to 200 bytes from `!` to `~`; otherwise it is
            /// refused.
            #[test]
            fn a_key_is_visible_ascii_kept_as_given_or_refused(
                key in prop_oneof!["[!-~]{0,210}", "[ -~]{0,24}", "(?s).{0,24}", "[!-~]{190,200}(?s).{1,2}"],
            ) {
                let visible = (1..=200).contains(&key.len()) && key.bytes().all(|byte| (0x21..=0x7e).contains(&byte));
                match IdempotencyKey::parse(&key) {
                    Ok(parsed) => {
                        prop_assert!(visible, "{:?} was taken", key);
                        prop_assert_eq!(parsed.as_str(), key.as_str());
                    }
                    Err(error) => {
                        prop_assert!(!visible, "{:?} was refused", key);
                        prop_assert!(matches!(error, IdempotencyError::InvalidKey));
                    }
                }
            }
        }
    }
}
