//! Idempotency keys, for the doors that start runs (integration chat, workspace runs): the first
//! request with a key claims it; a retry with the same key and request gets the run the first one
//! started (waiting briefly if it is still starting); the same key with a different request is refused.
//! Keys are per tenant and per `scope` (the door).

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::auth::TenantContext;
use crate::db;
use crate::ids::{RunId, SessionId};

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("a request with this Idempotency-Key is still being started; retry shortly")]
    InProgress,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy)]
pub enum Claim {
    /// This request holds the key and must start the run.
    Mine,
    /// An earlier request with this key started this run.
    Replay { session_id: SessionId, run_id: RunId },
}

const POLL: Duration = Duration::from_millis(100);

pub async fn claim(
    pool: &PgPool,
    context: &TenantContext,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    wait: Duration,
) -> Result<Claim, IdempotencyError> {
    let waited = Instant::now();
    loop {
        let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, scope, key, request_hash) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(context.tenant_id())
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            transaction.commit().await?;
            return Ok(Claim::Mine);
        }
        let (hash, session_id, run_id): (Vec<u8>, Option<SessionId>, Option<RunId>) = sqlx::query_as(
            "SELECT request_hash, session_id, run_id FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        if hash != fingerprint {
            return Err(IdempotencyError::KeyReused);
        }
        if let (Some(session_id), Some(run_id)) = (session_id, run_id) {
            return Ok(Claim::Replay { session_id, run_id });
        }
        if abandoned(pool, context, scope, key).await? {
            continue;
        }
        if waited.elapsed() >= wait {
            return Err(IdempotencyError::InProgress);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A claim whose request died before starting its run would block the key for good: after a minute it
/// is dropped and the next retry claims the key.
async fn abandoned(pool: &PgPool, context: &TenantContext, scope: &str, key: &str) -> Result<bool, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let dropped = sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND run_id IS NULL \
         AND created_at < now() - interval '1 minute'",
    )
    .bind(scope)
    .bind(key)
    .execute(&mut *transaction)
    .await?
    .rows_affected()
        == 1;
    transaction.commit().await?;
    Ok(dropped)
}

pub async fn record(
    pool: &PgPool,
    context: &TenantContext,
    scope: &str,
    key: &str,
    session_id: SessionId,
    run_id: RunId,
) -> Result<(), IdempotencyError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    sqlx::query("UPDATE idempotency_keys SET session_id = $3, run_id = $4 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(session_id)
        .bind(run_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Frees a key whose request started nothing, so that a retry can.
pub async fn release(pool: &PgPool, context: &TenantContext, scope: &str, key: &str) -> Result<(), IdempotencyError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND run_id IS NULL")
        .bind(scope)
        .bind(key)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}
