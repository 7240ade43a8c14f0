//! SQL for webhooks: destinations, the outbox of deliveries (queued in the transaction that records each
//! fact), the attempt log, and the workers' claim. Every query but the claim runs in a transaction bound
//! to the tenant; the claim sees pending deliveries of every tenant through `app.webhook_worker` (0032).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::events::Event;
use super::{Attempt, Delivery, Endpoint};
use crate::crypto::Sealed;
use crate::ids::{DeliveryId, TenantId, WebhookId};

const ENDPOINT_COLUMNS: &str = "id, url, events, description, enabled, disabled_reason, consecutive_failures, \
     failing_since, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_type, status, attempts, next_attempt_at, \
     first_attempt_at, delivered_at, created_at";

/// Queues each event for every enabled destination of the transaction's tenant subscribed to its type: one
/// delivery each, committed (or not) with the fact itself. Nothing when no destination wants it. Returns
/// how many deliveries were queued.
pub async fn enqueue(connection: &mut PgConnection, tenant_id: TenantId, events: &[Event]) -> Result<u64, sqlx::Error> {
    let mut queued = 0;
    // Asked once per kind: a batch of documents enqueues one event of the same kind per document.
    let mut subscribed: std::collections::HashMap<&str, Vec<uuid::Uuid>> = std::collections::HashMap::new();
    for event in events {
        let kind = event.kind.as_str();
        if !subscribed.contains_key(kind) {
            let endpoints: Vec<uuid::Uuid> =
                sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE enabled AND $1 = ANY(events) ORDER BY id")
                    .bind(kind)
                    .fetch_all(&mut *connection)
                    .await?;
            subscribed.insert(kind, endpoints);
        }
        let endpoints = &subscribed[kind];
        if endpoints.is_empty() {
            continue;
        }
        let ids: Vec<uuid::Uuid> = endpoints.iter().map(|_| DeliveryId::new().0).collect();
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_type, body) \
             SELECT delivery, $3, endpoint, $4, $5 FROM unnest($1::uuid[], $2::uuid[]) AS queued (delivery, endpoint)",
        )
        .bind(&ids)
        .bind(endpoints)
        .bind(tenant_id)
        .bind(event.kind.as_str())
        .bind(event.body())
        .execute(&mut *connection)
        .await?;
        queued += inserted.rows_affected();
    }
    Ok(queued)
}

pub async fn count_endpoints(connection: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints").fetch_one(connection).await
}

/// A destination to store.
#[derive(Debug)]
pub struct NewEndpoint<'a> {
    pub id: WebhookId,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    pub secret: &'a Sealed,
}

pub async fn insert_endpoint(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    endpoint: &NewEndpoint<'_>,
) -> Result<Endpoint, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, description, secret_key_id, secret_nonce, \
         secret_ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(endpoint.id)
    .bind(tenant_id)
    .bind(endpoint.url)
    .bind(endpoint.events)
    .bind(endpoint.description)
    .bind(&endpoint.secret.key_id)
    .bind(&endpoint.secret.nonce)
    .bind(&endpoint.secret.ciphertext)
    .fetch_one(connection)
    .await
}

pub async fn list_endpoints(connection: &mut PgConnection) -> Result<Vec<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
    )))
    .fetch_all(connection)
    .await
}

pub async fn get_endpoint(connection: &mut PgConnection, id: WebhookId) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// What a change sets; `None` leaves a field as it is. Enabling clears the failure count and its reason.
#[derive(Debug, Default)]
pub struct EndpointChange<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    pub enabled: Option<bool>,
}

pub async fn update_endpoint(
    connection: &mut PgConnection,
    id: WebhookId,
    change: &EndpointChange<'_>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET url = coalesce($2, url), events = coalesce($3, events), \
         description = coalesce($4, description), enabled = coalesce($5, enabled), \
         disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason ELSE NULL END, \
         consecutive_failures = CASE WHEN $5 AND NOT enabled THEN 0 ELSE consecutive_failures END, \
         failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END, \
         updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(change.url)
    .bind(change.events)
    .bind(change.description)
    .bind(change.enabled)
    .fetch_optional(connection)
    .await
}

/// Deletes a destination with its deliveries and their attempts.
pub async fn delete_endpoint(connection: &mut PgConnection, id: WebhookId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id).execute(connection).await?;
    Ok(deleted.rows_affected() == 1)
}

/// A destination's deliveries, newest first, at most `limit`.
pub async fn list_deliveries(
    connection: &mut PgConnection,
    endpoint_id: WebhookId,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// The attempts of these deliveries, oldest first.
pub async fn attempts_of(
    connection: &mut PgConnection,
    deliveries: &[DeliveryId],
) -> Result<Vec<Attempt>, sqlx::Error> {
    let deliveries: Vec<uuid::Uuid> = deliveries.iter().map(|id| id.0).collect();
    sqlx::query_as(
        "SELECT delivery_id, attempted_at, status_code, error, latency_ms FROM webhook_attempts \
         WHERE delivery_id = ANY($1) ORDER BY attempted_at, id",
    )
    .bind(&deliveries)
    .fetch_all(connection)
    .await
}

/// Queues a delivery of this destination again, now, for a new round of retries; its log is kept. A
/// worker still holding it lets it go (its outcome no longer settles it).
pub async fn redeliver(
    connection: &mut PgConnection,
    endpoint_id: WebhookId,
    id: DeliveryId,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), \
         first_attempt_at = NULL, delivered_at = NULL, claimed_by = NULL, locked_until = NULL, updated_at = now() \
         WHERE id = $1 AND endpoint_id = $2 RETURNING {DELIVERY_COLUMNS}"
    )))
    .bind(id)
    .bind(endpoint_id)
    .fetch_optional(connection)
    .await
}

/// Takes the oldest due delivery of any tenant that nobody holds (`SKIP LOCKED`, and a lease that has not
/// run out), leased to `worker` until `lease_secs` from now, in the caller's transaction; it stays
/// pending. A suspended tenant's deliveries wait until it is resumed.
pub async fn claim_due(
    connection: &mut PgConnection,
    worker: uuid::Uuid,
    lease_secs: f64,
) -> Result<Option<(DeliveryId, TenantId)>, sqlx::Error> {
    sqlx::query("SELECT set_config('app.webhook_worker', 'on', true)").execute(&mut *connection).await?;
    let claimed: Option<(DeliveryId, TenantId)> = sqlx::query_as(
        "SELECT id, tenant_id FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now()) \
         AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = webhook_deliveries.tenant_id AND t.status = 'suspended') \
         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE OF webhook_deliveries SKIP LOCKED",
    )
    .fetch_optional(&mut *connection)
    .await?;
    if let Some((id, _)) = claimed {
        sqlx::query(
            "UPDATE webhook_deliveries SET claimed_by = $2, locked_until = now() + make_interval(secs => $3) \
             WHERE id = $1",
        )
        .bind(id)
        .bind(worker)
        .bind(lease_secs)
        .execute(&mut *connection)
        .await?;
    }
    sqlx::query("SELECT set_config('app.webhook_worker', '', true)").execute(&mut *connection).await?;
    Ok(claimed)
}

/// What a worker needs for one attempt: the delivery and its destination (its secret still sealed).
#[derive(Debug, sqlx::FromRow)]
pub struct Work {
    pub id: DeliveryId,
    pub endpoint_id: WebhookId,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<uuid::Uuid>,
    pub url: String,
    pub enabled: bool,
    pub secret_key_id: String,
    pub secret_nonce: Vec<u8>,
    pub secret_ciphertext: Vec<u8>,
}

pub async fn work(connection: &mut PgConnection, id: DeliveryId) -> Result<Option<Work>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.endpoint_id, d.body, d.status, d.attempts, d.first_attempt_at, d.claimed_by, e.url, e.enabled, \
                e.secret_key_id, e.secret_nonce, e.secret_ciphertext \
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// One attempt as the log keeps it.
#[derive(Debug)]
pub struct NewAttempt<'a> {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub latency_ms: i32,
}

/// Logs an attempt of a delivery that still exists (a destination deleted meanwhile took it along).
pub async fn insert_attempt(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    delivery: DeliveryId,
    attempt: &NewAttempt<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_attempts (id, tenant_id, delivery_id, attempted_at, status_code, error, latency_ms) \
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $3)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant_id)
    .bind(delivery)
    .bind(attempt.attempted_at)
    .bind(attempt.status_code)
    .bind(attempt.error)
    .bind(attempt.latency_ms)
    .execute(connection)
    .await?;
    Ok(())
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    /// Given up: its retries ran out, or its destination is off.
    Failed,
}

/// Settles a delivery after an attempt made by `worker` (`counted`: whether one was made), if the worker
/// still holds it (a redelivery meanwhile takes it back). Returns whether it did.
pub async fn settle(
    connection: &mut PgConnection,
    id: DeliveryId,
    worker: uuid::Uuid,
    first_attempt_at: Option<DateTime<Utc>>,
    counted: bool,
    next: Next,
) -> Result<bool, sqlx::Error> {
    let (status, next_attempt_at) = match next {
        Next::Delivered => ("delivered", None),
        Next::RetryAt(at) => ("pending", Some(at)),
        Next::Failed => ("failed", None),
    };
    let settled = sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, attempts = attempts + $4, \
         first_attempt_at = coalesce(first_attempt_at, $5), next_attempt_at = coalesce($6, next_attempt_at), \
         delivered_at = CASE WHEN $3 = 'delivered' THEN now() END, claimed_by = NULL, locked_until = NULL, \
         updated_at = now() WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(worker)
    .bind(status)
    .bind(i32::from(counted))
    .bind(first_attempt_at)
    .bind(next_attempt_at)
    .execute(connection)
    .await?;
    Ok(settled.rows_affected() == 1)
}

/// A delivered attempt: the destination is healthy again.
pub async fn endpoint_succeeded(connection: &mut PgConnection, id: WebhookId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL \
         WHERE id = $1 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)",
    )
    .bind(id)
    .execute(connection)
    .await?;
    Ok(())
}

/// A failed attempt: counted; returns since when the destination has failed every attempt.
pub async fn endpoint_failed(
    connection: &mut PgConnection,
    id: WebhookId,
    at: DateTime<Utc>,
) -> Result<Option<(i32, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
         failing_since = coalesce(failing_since, $2) WHERE id = $1 RETURNING consecutive_failures, failing_since",
    )
    .bind(id)
    .bind(at)
    .fetch_optional(connection)
    .await
}

/// Turns a destination off for failing; false when it was off already.
pub async fn disable_failing(connection: &mut PgConnection, id: WebhookId) -> Result<bool, sqlx::Error> {
    let disabled = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'failing', updated_at = now() \
         WHERE id = $1 AND enabled",
    )
    .bind(id)
    .execute(connection)
    .await?;
    Ok(disabled.rows_affected() == 1)
}

/// Deletes up to `batch` of the tenant's finished deliveries (with their attempts) older than `days`.
pub async fn delete_finished(connection: &mut PgConnection, days: i32, batch: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
         WHERE status <> 'pending' AND updated_at < now() - make_interval(days => $1) \
         ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(days)
    .bind(batch)
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}

/// The destinations whose secret another master key sealed.
pub async fn endpoints_to_reseal(
    connection: &mut PgConnection,
    current_key_id: &str,
) -> Result<Vec<(WebhookId, Sealed)>, sqlx::Error> {
    let rows: Vec<(WebhookId, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT id, secret_key_id, secret_nonce, secret_ciphertext FROM webhook_endpoints WHERE secret_key_id <> $1",
    )
    .bind(current_key_id)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(|(id, key_id, nonce, ciphertext)| (id, Sealed { key_id, nonce, ciphertext })).collect())
}

pub async fn set_endpoint_secret(
    connection: &mut PgConnection,
    id: WebhookId,
    sealed: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET secret_key_id = $2, secret_nonce = $3, secret_ciphertext = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .execute(connection)
    .await?;
    Ok(())
}
