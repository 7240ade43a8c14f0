//! Usage records: the tokens each run consumed, from the provider's report or counted here, and whose key
//! paid. Written in one place, by the engine.

use sqlx::PgConnection;

use crate::ids::{ApiKeyId, RunId, TenantId, UsageRecordId};

/// Where a token count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Provider,
    Estimated,
}

impl TokenSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Estimated => "estimated",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UsageEntry<'a> {
    pub run_id: RunId,
    pub api_key_id: Option<ApiKeyId>,
    pub provider: &'a str,
    pub model: &'a str,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub source: TokenSource,
    pub is_byok: bool,
}

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
pub async fn of_run(
    pool: &sqlx::PgPool,
    context: &crate::auth::TenantContext,
    run_id: RunId,
) -> Result<(i64, i64), sqlx::Error> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let totals = sqlx::query_as(
        "SELECT coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint FROM usage_records WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(totals)
}
