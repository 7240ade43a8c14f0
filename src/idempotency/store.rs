//! SQL for `idempotency_keys`; every function runs inside a tenant-bound transaction.

use sqlx::PgConnection;

use crate::ids::{RunId, SessionId, TenantId};

#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedKey {
    pub request_hash: Vec<u8>,
    pub session_id: Option<SessionId>,
    pub run_id: Option<RunId>,
}

/// Claims the key; false when another request holds it.
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, scope, key, request_hash) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn get(connection: &mut PgConnection, scope: &str, key: &str) -> Result<ClaimedKey, sqlx::Error> {
    sqlx::query_as("SELECT request_hash, session_id, run_id FROM idempotency_keys WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .fetch_one(connection)
        .await
}

/// Drops a claim older than a minute that never recorded its run; true when there was one.
pub async fn drop_abandoned(connection: &mut PgConnection, scope: &str, key: &str) -> Result<bool, sqlx::Error> {
    let dropped = sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND run_id IS NULL \
         AND created_at < now() - interval '1 minute'",
    )
    .bind(scope)
    .bind(key)
    .execute(connection)
    .await?;
    Ok(dropped.rows_affected() == 1)
}

pub async fn record(
    connection: &mut PgConnection,
    scope: &str,
    key: &str,
    session_id: SessionId,
    run_id: RunId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE idempotency_keys SET session_id = $3, run_id = $4 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(session_id)
        .bind(run_id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Frees a key whose request started nothing, so that a retry can.
pub async fn release(connection: &mut PgConnection, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND run_id IS NULL")
        .bind(scope)
        .bind(key)
        .execute(connection)
        .await?;
    Ok(())
}
