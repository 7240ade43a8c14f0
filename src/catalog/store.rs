//! SQL for the models a tenant declares for its OpenAI-compatible server (`tenant_models`); every
//! function runs inside a tenant-bound transaction.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::{ModelInfo, Prices};
use crate::ids::TenantId;

#[derive(Debug, sqlx::FromRow)]
struct Row {
    name: String,
    context_window: i32,
    max_output_tokens: i32,
    input_usd: Decimal,
    output_usd: Decimal,
    cached_input_usd: Option<Decimal>,
    cache_write_usd: Option<Decimal>,
}

impl From<Row> for ModelInfo {
    fn from(row: Row) -> Self {
        let count = |value: i32| u32::try_from(value).unwrap_or(0);
        Self {
            provider: super::TENANT_PROVIDER.to_owned(),
            name: row.name,
            context_window: count(row.context_window),
            max_output_tokens: count(row.max_output_tokens),
            prices: Prices {
                input: row.input_usd,
                output: row.output_usd,
                cached_input: row.cached_input_usd.unwrap_or(row.input_usd),
                cache_write: row.cache_write_usd.unwrap_or(row.input_usd),
            },
        }
    }
}

/// Every model the tenant declared, by name, for [`db::read_together`](crate::db::read_together);
/// [`models_of`] decodes its rows.
pub const LIST: &str = "SELECT name, context_window, max_output_tokens, input_usd, output_usd, cached_input_usd, \
     cache_write_usd FROM tenant_models ORDER BY name";

pub async fn list(connection: &mut PgConnection) -> Result<Vec<ModelInfo>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(LIST).fetch_all(connection).await?;
    Ok(rows.into_iter().map(ModelInfo::from).collect())
}

/// The models from the rows [`LIST`] answered.
pub fn models_of(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<ModelInfo>, sqlx::Error> {
    rows.iter().map(|row| <Row as sqlx::FromRow<_>>::from_row(row).map(ModelInfo::from)).collect()
}

/// Declares (or redeclares) a model; `cached_input` and `cache_write` as given (`None`: as `input`).
pub async fn upsert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    model: &ModelInfo,
    cached_input: Option<Decimal>,
    cache_write: Option<Decimal>,
) -> Result<(), sqlx::Error> {
    let count = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO tenant_models (tenant_id, name, context_window, max_output_tokens, input_usd, output_usd, \
         cached_input_usd, cache_write_usd) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET context_window = EXCLUDED.context_window, \
         max_output_tokens = EXCLUDED.max_output_tokens, input_usd = EXCLUDED.input_usd, \
         output_usd = EXCLUDED.output_usd, cached_input_usd = EXCLUDED.cached_input_usd, \
         cache_write_usd = EXCLUDED.cache_write_usd, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(&model.name)
    .bind(count(model.context_window))
    .bind(count(model.max_output_tokens))
    .bind(model.prices.input)
    .bind(model.prices.output)
    .bind(cached_input)
    .bind(cache_write)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn delete(connection: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM tenant_models WHERE name = $1").bind(name).execute(connection).await?;
    Ok(deleted.rows_affected() == 1)
}
