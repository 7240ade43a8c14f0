//! The append-only audit trail: who did what to which object, in which request. The database rejects
//! UPDATE and DELETE on `audit_events`; this module only appends and reads.

pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::auth::context::TenantContext;
use crate::db;
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
    pub trace_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn record(
    connection: &mut PgConnection,
    context: &TenantContext,
    entry: &AuditEntry,
) -> Result<(), sqlx::Error> {
    store::append(connection, &Recorder::of(context), entry).await
}

/// Who an entry is recorded for when no request is at hand (the engine deciding a tool call in the
/// background acts for the key that started the run, under the run's trace id).
#[derive(Debug, Clone)]
pub struct Recorder<'a> {
    pub tenant_id: TenantId,
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    pub request_id: Option<&'a str>,
    /// The OpenTelemetry trace the entry is made in, when traces are on.
    pub trace_id: Option<String>,
}

impl<'a> Recorder<'a> {
    /// Entries for whoever made the request.
    pub fn of(context: &'a TenantContext) -> Self {
        let actor = context.actor();
        Self {
            tenant_id: context.tenant_id(),
            actor_type: actor.kind(),
            actor_id: actor.id(),
            request_id: context.request_id(),
            trace_id: crate::telemetry::current_trace_id(),
        }
    }
}

/// The tenant's trail, newest first, in its own transaction.
pub async fn list_for(
    pool: &PgPool,
    context: &TenantContext,
    limit: i64,
    before: Option<AuditEventId>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let events = store::list(&mut transaction, limit, before).await?;
    transaction.commit().await?;
    Ok(events)
}
