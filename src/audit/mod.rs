//! The append-only audit trail: who did what to which object, in which request. The database rejects
//! UPDATE and DELETE on `audit_events`; this module only appends and reads.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::auth::TenantContext;
use crate::ids::{AuditEventId, TenantId};

/// One event about to be recorded; the actor, tenant and request come from the context.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub details: serde_json::Value,
}

impl AuditEntry {
    pub fn new(action: &'static str, target_type: &'static str, target_id: String) -> Self {
        Self { action, target_type, target_id, details: serde_json::json!({}) }
    }

    /// Details must never hold a secret: callers pass only names, prefixes, ids and settings.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn record(
    connection: &mut PgConnection,
    context: &TenantContext,
    entry: &AuditEntry,
) -> Result<(), sqlx::Error> {
    let actor = context.actor();
    let by = Recorder {
        tenant_id: context.tenant_id(),
        actor_type: actor.kind(),
        actor_id: actor.id(),
        request_id: context.request_id(),
    };
    append(connection, &by, entry).await
}

/// Who an entry is recorded for when no request is at hand (the engine deciding a tool call in the
/// background acts for the key that started the run, under the run's trace id).
#[derive(Debug, Clone)]
pub struct Recorder<'a> {
    pub tenant_id: TenantId,
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    pub request_id: Option<&'a str>,
}

pub async fn append(connection: &mut PgConnection, by: &Recorder<'_>, entry: &AuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events \
         (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(AuditEventId::new())
    .bind(by.tenant_id)
    .bind(by.actor_type)
    .bind(&by.actor_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(&entry.target_id)
    .bind(&entry.details)
    .bind(by.request_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// The newest events first, at most `limit`, optionally only those older than `before`.
pub async fn list(
    connection: &mut PgConnection,
    limit: i64,
    before: Option<AuditEventId>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor_type, actor_id, action, target_type, target_id, details, request_id, created_at \
         FROM audit_events WHERE ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(before)
    .fetch_all(connection)
    .await
}

/// The tenant's trail, newest first, in its own transaction.
pub async fn list_for(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    limit: i64,
    before: Option<AuditEventId>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let events = list(&mut transaction, limit, before).await?;
    transaction.commit().await?;
    Ok(events)
}
