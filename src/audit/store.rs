//! SQL for `audit_events`, which the database lets the service append to and read, never change.

use sqlx::PgConnection;

use super::{AuditEntry, AuditEvent, Recorder};
use crate::ids::AuditEventId;

pub async fn append(connection: &mut PgConnection, by: &Recorder<'_>, entry: &AuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events \
         (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details, request_id, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
    .bind(by.trace_id.as_deref())
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
        "SELECT id, actor_type, actor_id, action, target_type, target_id, details, request_id, trace_id, created_at \
         FROM audit_events WHERE ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(before)
    .fetch_all(connection)
    .await
}
