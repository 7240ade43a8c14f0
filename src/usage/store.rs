//! SQL for `usage_records`; every function runs inside a tenant-bound transaction.

use sqlx::PgConnection;

use super::UsageEntry;
use crate::ids::{RunId, TenantId, UsageRecordId};

pub async fn record(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    entry: &UsageEntry<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_records (id, tenant_id, run_id, api_key_id, provider, model, input_tokens, \
         output_tokens, token_source, is_byok) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(UsageRecordId::new())
    .bind(tenant_id)
    .bind(entry.run_id)
    .bind(entry.api_key_id)
    .bind(entry.provider)
    .bind(entry.model)
    .bind(i32::try_from(entry.input_tokens).unwrap_or(i32::MAX))
    .bind(i32::try_from(entry.output_tokens).unwrap_or(i32::MAX))
    .bind(entry.source.as_str())
    .bind(entry.is_byok)
    .execute(connection)
    .await?;
    Ok(())
}

/// A run's tokens over all its model calls: (input, output).
pub async fn token_totals(connection: &mut PgConnection, run_id: RunId) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint \
         FROM usage_records WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_one(connection)
    .await
}
