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

/// Replaces an erased end user's identifiers in the tenant's trail by their pseudonym: the one exception
/// to the trail's being append-only that erasure needs (migration 0025, `pseudonymise_audit_events`, which
/// records that it ran). Only within the erasure's transaction, after the pseudonymous row is made and the
/// old one deleted. Returns how many events changed.
pub async fn pseudonymise(
    connection: &mut PgConnection,
    old_user: crate::ids::UserId,
    external_id: &str,
    new_user: crate::ids::UserId,
    pseudonym: &str,
) -> Result<u64, sqlx::Error> {
    let changed: i64 = sqlx::query_scalar("SELECT pseudonymise_audit_events($1, $2, $3, $4, $5)")
        .bind(old_user)
        .bind(external_id)
        .bind(new_user)
        .bind(pseudonym)
        .bind(AuditEventId::new())
        .fetch_one(connection)
        .await?;
    Ok(u64::try_from(changed).unwrap_or_default())
}

/// Deletes up to `batch` of the tenant's events older than its audit retention (migration 0025,
/// `expire_audit_events`, which records how many). Returns how many.
pub async fn expire(connection: &mut PgConnection, batch: i64) -> Result<u64, sqlx::Error> {
    let removed: i64 = sqlx::query_scalar("SELECT expire_audit_events($1, $2)")
        .bind(i32::try_from(batch).unwrap_or(i32::MAX))
        .bind(AuditEventId::new())
        .fetch_one(connection)
        .await?;
    Ok(u64::try_from(removed).unwrap_or_default())
}
