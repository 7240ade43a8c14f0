//! SQL for `usage_records`; every function runs inside a tenant-bound transaction.

use sqlx::PgConnection;

use super::{RunTotals, UsageEntry};
use crate::ids::{RunId, TenantId, UsageRecordId};

pub async fn record(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    entry: &UsageEntry<'_>,
) -> Result<(), sqlx::Error> {
    let count = |tokens: u64| i32::try_from(tokens).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO usage_records (id, tenant_id, run_id, api_key_id, provider, model, input_tokens, \
         output_tokens, token_source, is_byok, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
         cost_usd, priced) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(UsageRecordId::new())
    .bind(tenant_id)
    .bind(entry.run_id)
    .bind(entry.api_key_id)
    .bind(entry.provider)
    .bind(entry.model)
    .bind(count(entry.tokens.input))
    .bind(count(entry.tokens.output))
    .bind(entry.source.as_str())
    .bind(entry.is_byok)
    .bind(count(entry.tokens.cached_input))
    .bind(count(entry.tokens.cache_write))
    .bind(count(entry.tokens.reasoning))
    .bind(entry.cost_usd)
    .bind(entry.cost_usd.is_some())
    .execute(connection)
    .await?;
    Ok(())
}

/// A run's tokens and cost over all its model calls.
pub async fn run_totals(connection: &mut PgConnection, run_id: RunId) -> Result<RunTotals, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(input_tokens), 0)::bigint AS input_tokens, \
                coalesce(sum(output_tokens), 0)::bigint AS output_tokens, \
                coalesce(sum(cached_input_tokens), 0)::bigint AS cached_tokens, \
                coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens, \
                sum(cost_usd) AS cost_usd, coalesce(bool_and(priced), true) AS fully_priced \
         FROM usage_records WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_one(connection)
    .await
}
