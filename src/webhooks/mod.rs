//! Webhooks: a tenant's destinations, and the events it hears of without polling. A fact and its
//! deliveries are committed together (`store::enqueue`, in the transaction that records the fact: a run's
//! closing transaction, its pause for approval, a document's store, a budget's threshold); any process's
//! workers (`deliver.rs`) then POST each delivery, signed per Standard Webhooks (`sign.rs`), retrying with
//! backoff for 24 hours, and keep a log of every attempt. A destination that fails every attempt for the
//! whole retry window is disabled, and the audit trail says so.
//!
//! The signing secret is shown once, in the answer that creates the destination; it is sealed at rest like
//! provider keys, bound to its row, and never in a listing, a log line, an error, the audit trail or an export.

pub mod deliver;
pub mod events;
pub mod sign;
pub mod store;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use self::events::{Event, EventType};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::crypto::{CryptoError, MasterKeys};
use crate::db;
use crate::ids::{DeliveryId, RunId, SessionId, TenantId, WebhookId};
use crate::outbound::{OutboundError, OutboundPolicy};
use crate::runs::events::EventKind;

/// The most destinations a tenant may have.
pub const MAX_DESTINATIONS: i64 = 20;

/// The most deliveries one listing shows.
pub const MAX_LISTED: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "unknown event type `{0}`; known types: run.completed, run.failed, tool_call.awaiting_approval, \
         document.ingested, budget.threshold"
    )]
    UnknownEvent(String),
    #[error("a tenant may have at most {MAX_DESTINATIONS} webhook destinations")]
    TooMany,
    #[error("no such webhook")]
    NotFound,
    #[error("no such delivery")]
    DeliveryNotFound,
    #[error("the webhook is disabled; enable it (PATCH `enabled: true`) before redelivering")]
    Disabled,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A destination as the API shows it: never its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Endpoint {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A destination just made, with its secret: the one time it is shown.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    pub secret: SecretString,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: DeliveryId,
    pub endpoint_id: WebhookId,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
}

/// A delivery with every attempt it had, oldest first.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
}

/// Binds a sealed secret to its row: a ciphertext copied to another destination does not open.
fn associated_data(tenant_id: TenantId, id: WebhookId) -> String {
    format!("webhook_endpoints/{tenant_id}/{id}")
}

/// A destination's URL: http(s), at most 2000 characters, no credential in it, and a destination the
/// outbound policy allows (checked again at every connection).
async fn parse_url(url: &str, outbound: &OutboundPolicy) -> Result<String, WebhookError> {
    let url = url.trim();
    if url.is_empty() || url.len() > 2000 {
        return Err(WebhookError::Invalid("url must be 1 to 2000 characters".to_owned()));
    }
    outbound.check_before_saving(url).await.map_err(|error| match error {
        OutboundError::Credential(found) => WebhookError::Invalid(format!(
            "url carries a credential ({found}); verify deliveries with the signing secret instead, since the URL \
             is stored and shown in the clear"
        )),
        error => WebhookError::Invalid(format!("url: {error}")),
    })?;
    Ok(url.to_owned())
}

/// Event type names: 1 to 20, each known, duplicates dropped, in a stable order.
pub fn parse_events(names: &[String]) -> Result<Vec<String>, WebhookError> {
    if names.is_empty() || names.len() > 20 {
        return Err(WebhookError::Invalid("events must name 1 to 20 event types".to_owned()));
    }
    let mut kinds = Vec::new();
    for name in names {
        let kind =
            EventType::parse(name).ok_or_else(|| WebhookError::UnknownEvent(name.chars().take(100).collect()))?;
        kinds.push(kind);
    }
    kinds.sort_unstable();
    kinds.dedup();
    Ok(kinds.into_iter().map(|kind| kind.as_str().to_owned()).collect())
}

fn parse_description(description: &str) -> Result<String, WebhookError> {
    if description.chars().count() > 1000 || description.contains('\0') {
        return Err(WebhookError::Invalid("description must be at most 1000 characters".to_owned()));
    }
    Ok(description.trim().to_owned())
}

/// A destination to make, as the API gives it.
#[derive(Debug)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// Makes a destination with a new secret, audited (without the secret).
pub async fn create(
    pool: &PgPool,
    keys: &MasterKeys,
    outbound: &OutboundPolicy,
    context: &TenantContext,
    new: &NewWebhook,
) -> Result<CreatedEndpoint, WebhookError> {
    let events = parse_events(&new.events)?;
    let description = parse_description(new.description.as_deref().unwrap_or_default())?;
    let url = parse_url(&new.url, outbound).await?;
    let tenant_id = context.tenant_id();
    let id = WebhookId::new();
    let secret = sign::new_secret();
    let sealed = keys.seal(&secret, &associated_data(tenant_id, id));
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    if store::count_endpoints(&mut transaction).await? >= MAX_DESTINATIONS {
        return Err(WebhookError::TooMany);
    }
    let endpoint = store::NewEndpoint { id, url: &url, events: &events, description: &description, secret: &sealed };
    let endpoint = store::insert_endpoint(&mut transaction, tenant_id, &endpoint).await?;
    let entry = AuditEntry::new("webhook.created", "webhook", id.to_string())
        .with_details(json!({ "url": endpoint.url, "events": endpoint.events }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(CreatedEndpoint { endpoint, secret })
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<Endpoint>, WebhookError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let endpoints = store::list_endpoints(&mut transaction).await?;
    transaction.commit().await?;
    Ok(endpoints)
}

pub async fn get(pool: &PgPool, context: &TenantContext, id: WebhookId) -> Result<Endpoint, WebhookError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let endpoint = store::get_endpoint(&mut transaction, id).await?.ok_or(WebhookError::NotFound)?;
    transaction.commit().await?;
    Ok(endpoint)
}

/// A change as the API gives it; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Changes a destination, audited. Enabling a destination the worker disabled starts its count afresh.
pub async fn update(
    pool: &PgPool,
    outbound: &OutboundPolicy,
    context: &TenantContext,
    id: WebhookId,
    change: &WebhookChange,
) -> Result<Endpoint, WebhookError> {
    let events = change.events.as_deref().map(parse_events).transpose()?;
    let description = change.description.as_deref().map(parse_description).transpose()?;
    let url = match &change.url {
        Some(url) => Some(parse_url(url, outbound).await?),
        None => None,
    };
    let stored = store::EndpointChange {
        url: url.as_deref(),
        events: events.as_deref(),
        description: description.as_deref(),
        enabled: change.enabled,
    };
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let endpoint = store::update_endpoint(&mut transaction, id, &stored).await?.ok_or(WebhookError::NotFound)?;
    let entry = AuditEntry::new("webhook.updated", "webhook", id.to_string()).with_details(json!({
        "url": url, "events": events, "description_changed": description.is_some(), "enabled": change.enabled,
    }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(endpoint)
}

/// Deletes a destination with its deliveries and their log, audited.
pub async fn delete(pool: &PgPool, context: &TenantContext, id: WebhookId) -> Result<(), WebhookError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::delete_endpoint(&mut transaction, id).await? {
        return Err(WebhookError::NotFound);
    }
    audit::record(&mut transaction, context, &AuditEntry::new("webhook.deleted", "webhook", id.to_string())).await?;
    transaction.commit().await?;
    Ok(())
}

/// A destination's deliveries, newest first, each with its attempts.
pub async fn deliveries(
    pool: &PgPool,
    context: &TenantContext,
    id: WebhookId,
    limit: i64,
) -> Result<Vec<DeliveryLog>, WebhookError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if store::get_endpoint(&mut transaction, id).await?.is_none() {
        return Err(WebhookError::NotFound);
    }
    let deliveries = store::list_deliveries(&mut transaction, id, limit.clamp(1, MAX_LISTED)).await?;
    let ids: Vec<DeliveryId> = deliveries.iter().map(|delivery| delivery.id).collect();
    let mut attempts = store::attempts_of(&mut transaction, &ids).await?;
    transaction.commit().await?;
    Ok(deliveries
        .into_iter()
        .map(|delivery| {
            let (own, rest): (Vec<Attempt>, Vec<Attempt>) =
                attempts.drain(..).partition(|attempt| attempt.delivery_id == delivery.id);
            attempts = rest;
            DeliveryLog { delivery, attempts: own }
        })
        .collect())
}

/// Queues a delivery again, now, for a new round of retries (with the same `webhook-id`), audited; refused
/// while the destination is disabled (its worker would give it up at once).
pub async fn redeliver(
    pool: &PgPool,
    context: &TenantContext,
    id: WebhookId,
    delivery_id: DeliveryId,
) -> Result<DeliveryLog, WebhookError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let endpoint = store::get_endpoint(&mut transaction, id).await?.ok_or(WebhookError::NotFound)?;
    if !endpoint.enabled {
        return Err(WebhookError::Disabled);
    }
    let delivery = store::redeliver(&mut transaction, id, delivery_id).await?.ok_or(WebhookError::DeliveryNotFound)?;
    let attempts = store::attempts_of(&mut transaction, &[delivery_id]).await?;
    let entry = AuditEntry::new("webhook.redelivered", "webhook", id.to_string())
        .with_details(json!({ "delivery_id": delivery_id, "event_type": delivery.event_type }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(DeliveryLog { delivery, attempts })
}

/// Re-seals every destination's secret under the current master key; returns how many changed.
pub async fn reseal(
    connection: &mut PgConnection,
    keys: &MasterKeys,
    tenant_id: TenantId,
) -> Result<usize, WebhookError> {
    let mut resealed_rows = 0;
    for (id, sealed) in store::endpoints_to_reseal(connection, keys.current_id()).await? {
        let Some(resealed) = keys.reseal(&sealed, &associated_data(tenant_id, id))? else { continue };
        store::set_endpoint_secret(connection, id, &resealed).await?;
        resealed_rows += 1;
    }
    Ok(resealed_rows)
}

/// The webhook events among a run's events as it records them: its end (`run.completed`, `run.failed`;
/// a cancelled run has none) and the calls its pause waits on (`tool_call.awaiting_approval`). Ids and
/// codes only: never the answer's text, a tool's arguments or an error's message.
pub fn of_run(run_id: RunId, session_id: Option<SessionId>, recorded: &[EventKind]) -> Vec<Event> {
    let usage = recorded.iter().find_map(|event| match event {
        EventKind::Usage { input_tokens, output_tokens, cost_usd, .. } => Some(json!({
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "cost_usd": cost_usd.map(|cost| cost.normalize().to_string()),
        })),
        _ => None,
    });
    recorded
        .iter()
        .filter_map(|event| match event {
            EventKind::RunCompleted { message_id, finish_reason } => Some(Event::new(
                EventType::RunCompleted,
                json!({
                    "run_id": run_id, "session_id": session_id, "message_id": message_id,
                    "finish_reason": finish_reason, "usage": usage.clone().unwrap_or(Value::Null),
                }),
            )),
            EventKind::RunFailed { code, message_id, .. } => Some(Event::new(
                EventType::RunFailed,
                json!({
                    "run_id": run_id, "session_id": session_id, "code": code, "message_id": message_id,
                    "usage": usage.clone().unwrap_or(Value::Null),
                }),
            )),
            EventKind::ToolCallAwaitingApproval { tool_call_id, name, reason } => Some(Event::new(
                EventType::ToolCallAwaitingApproval,
                json!({
                    "run_id": run_id, "session_id": session_id, "tool_call_id": tool_call_id, "name": name,
                    "reason": reason,
                }),
            )),
            // The question, never the answer: an answer may hold what the person typed.
            EventKind::ToolCallAwaitingInput { tool_call_id, name, message, .. } => Some(Event::new(
                EventType::ToolCallAwaitingInput,
                json!({
                    "run_id": run_id, "session_id": session_id, "tool_call_id": tool_call_id, "name": name,
                    "message": message,
                }),
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_checked_deduplicated_and_ordered() {
        let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&["run.failed", "run.completed", "run.failed"])).unwrap(),
            ["run.completed", "run.failed"]
        );
        assert!(matches!(parse_events(&names(&[])), Err(WebhookError::Invalid(_))));
        assert!(matches!(
            parse_events(&names(&["run.completed", "run.exploded"])),
            Err(WebhookError::UnknownEvent(name)) if name == "run.exploded"
        ));
    }

    #[test]
    fn a_runs_events_become_webhook_events_without_text() {
        let run_id = RunId::new();
        let message_id = crate::ids::MessageId::new();
        let recorded = [
            EventKind::MessageDelta { text: "secret answer text".to_owned() },
            EventKind::Usage {
                input_tokens: 3,
                output_tokens: 4,
                total_tokens: 7,
                cached_tokens: 0,
                reasoning_tokens: 0,
                cost_usd: None,
                estimated: false,
            },
            EventKind::RunCompleted { message_id, finish_reason: None },
        ];
        let events = of_run(run_id, None, &recorded);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventType::RunCompleted);
        assert_eq!(events[0].data["usage"]["output_tokens"], 4);
        assert!(!events[0].body().contains("secret answer text"));

        let failed =
            EventKind::RunFailed { code: "timeout".into(), message: "upstream said: sk-x".into(), message_id: None };
        let events = of_run(run_id, None, &[failed]);
        assert_eq!((events[0].kind, events[0].data["code"].as_str()), (EventType::RunFailed, Some("timeout")));
        assert!(!events[0].body().contains("sk-x"));
        assert!(of_run(run_id, None, &[EventKind::RunCancelled { message_id: None }]).is_empty());
    }
}
