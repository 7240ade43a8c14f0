//! SQL for `usage_records`; every function runs inside a tenant-bound transaction.

use sqlx::PgConnection;

use super::{GroupBy, RunTotals, UsageEntry, UsageGroup};
use crate::budgets::{Settled, Settlement};
use crate::ids::{RunId, TenantId, UsageRecordId};

pub async fn record(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    entry: &UsageEntry<'_>,
) -> Result<(), sqlx::Error> {
    record_with_search_units(connection, tenant_id, entry, None).await
}

/// The statement that records one usage row, its values at `$1` to `$19` ([`bind_entry!`]).
macro_rules! insert_record {
    () => {
        "INSERT INTO usage_records (id, tenant_id, run_id, api_key_id, provider, model, input_tokens, \
         output_tokens, token_source, is_byok, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
         cost_usd, priced, user_id, operation, trace_id, search_units) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    };
}

/// Binds a usage row's values, in [`insert_record!`]'s order, to a query or a typed query alike.
macro_rules! bind_entry {
    ($query:expr, $tenant_id:expr, $entry:expr, $search_units:expr) => {{
        let count = |tokens: u64| i32::try_from(tokens).unwrap_or(i32::MAX);
        let entry: &UsageEntry<'_> = $entry;
        $query
            .bind(UsageRecordId::new())
            .bind($tenant_id)
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
            .bind(entry.end_user)
            .bind(entry.operation.as_str())
            .bind(entry.trace_id.as_deref())
            .bind($search_units.map(count))
    }};
}

/// [`record`], with the search units a provider billed instead of tokens (Cohere's rerank).
pub async fn record_with_search_units(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    entry: &UsageEntry<'_>,
    search_units: Option<u64>,
) -> Result<(), sqlx::Error> {
    bind_entry!(sqlx::query(insert_record!()), tenant_id, entry, search_units).execute(connection).await?;
    Ok(())
}

/// [`record`], and the run's budget reservations settled with it (`settle_budgets`, migration 0022) in
/// the same statement: a turn under budgets pays no round trip of its own for its settlement. Returns
/// the budget lines as the settlement left them, for their thresholds to be audited.
pub async fn record_settling(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    entry: &UsageEntry<'_>,
    settlement: &Settlement<'_>,
) -> Result<Vec<Settled>, sqlx::Error> {
    let statement = concat!(
        "WITH recorded AS (",
        insert_record!(),
        ") SELECT settled.subject, settled.spent_usd, settled.audited_percent \
         FROM settle_budgets($20, $21, $22, $23, $24) AS settled"
    );
    let query = bind_entry!(sqlx::query_as(statement), tenant_id, entry, None::<u64>);
    crate::budgets::store::bind_settlement(query, settlement).fetch_all(connection).await
}

/// A run's tokens over all its model calls, and its cost with its embeddings' (the question's vector).
pub async fn run_totals(connection: &mut PgConnection, run_id: RunId) -> Result<RunTotals, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(input_tokens) FILTER (WHERE operation = 'chat'), 0)::bigint AS input_tokens, \
                coalesce(sum(output_tokens) FILTER (WHERE operation = 'chat'), 0)::bigint AS output_tokens, \
                coalesce(sum(cached_input_tokens) FILTER (WHERE operation = 'chat'), 0)::bigint AS cached_tokens, \
                coalesce(sum(reasoning_tokens) FILTER (WHERE operation = 'chat'), 0)::bigint AS reasoning_tokens, \
                CASE WHEN count(*) FILTER (WHERE operation = 'chat' AND priced) = 0 \
                     AND count(*) FILTER (WHERE operation = 'chat') > 0 THEN NULL \
                     ELSE sum(cost_usd) END AS cost_usd, \
                coalesce(bool_and(priced), true) AS fully_priced \
         FROM usage_records WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_one(connection)
    .await
}

/// The report's groups, in key order. The grouping expressions are fixed per [`GroupBy`], never built
/// from input.
pub async fn report(
    connection: &mut PgConnection,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    group_by: GroupBy,
) -> Result<Vec<UsageGroup>, sqlx::Error> {
    let key = match group_by {
        GroupBy::Day => "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        GroupBy::Model => "u.provider || '/' || u.model",
        GroupBy::Provider => "u.provider",
        GroupBy::ApiKey => "coalesce(u.api_key_id::text, '')",
        GroupBy::EndUser => "coalesce(users.external_id, '')",
        GroupBy::RunKind => "coalesce(runs.kind, '')",
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {key} AS key, \
                coalesce(sum(u.input_tokens), 0)::bigint AS input_tokens, \
                coalesce(sum(u.output_tokens), 0)::bigint AS output_tokens, \
                coalesce(sum(u.cached_input_tokens), 0)::bigint AS cached_tokens, \
                coalesce(sum(u.reasoning_tokens), 0)::bigint AS reasoning_tokens, \
                coalesce(sum(u.cost_usd), 0) AS cost_usd, \
                count(*) FILTER (WHERE NOT u.priced) AS unpriced_records, \
                count(DISTINCT u.run_id) AS runs \
         FROM usage_records u \
         LEFT JOIN runs ON runs.id = u.run_id \
         LEFT JOIN users ON users.id = u.user_id \
         WHERE u.created_at >= ($1::date AT TIME ZONE 'UTC') AND u.created_at < (($2::date + 1) AT TIME ZONE 'UTC') \
         GROUP BY 1 ORDER BY 1"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(connection)
    .await
}

/// Points an erased end user's usage records at their pseudonymous row: counts and costs stay, grouped
/// as before. Returns how many records.
pub async fn reassign_end_user(
    connection: &mut PgConnection,
    from: crate::ids::UserId,
    to: crate::ids::UserId,
) -> Result<u64, sqlx::Error> {
    let moved = sqlx::query("UPDATE usage_records SET user_id = $2 WHERE user_id = $1")
        .bind(from)
        .bind(to)
        .execute(connection)
        .await?;
    Ok(moved.rows_affected())
}

/// Deletes up to `batch` usage records older than `days`, oldest first, skipping rows another transaction
/// holds. Returns how many.
pub async fn delete_expired(connection: &mut PgConnection, days: i32, batch: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM usage_records WHERE id IN ( \
             SELECT id FROM usage_records WHERE created_at < now() - make_interval(days => $1) \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(days)
    .bind(batch)
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}
