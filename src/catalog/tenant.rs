//! Models a tenant declares for its own OpenAI-compatible server: the window, output ceiling and prices
//! the built-in catalog cannot know. Validated like the catalog's entries, audited.

use std::str::FromStr as _;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;

use super::{ModelInfo, Prices, TENANT_PROVIDER, store};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;

#[derive(Debug, thiserror::Error)]
pub enum TenantModelError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such model")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A declaration as the API receives it: prices in US dollars per million tokens, as decimal strings or
/// numbers.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TenantModelDeclaration)]
pub struct Declaration {
    /// Tokens in the model's context window.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub context_window: u32,
    /// The most tokens an answer may have; below `context_window`.
    #[schema(minimum = 1, maximum = 2_147_483_646)]
    pub max_output_tokens: u32,
    #[schema(schema_with = price_schema)]
    pub input_usd_per_million: Value,
    #[schema(schema_with = price_schema)]
    pub output_usd_per_million: Value,
    /// Absent or null: as `input_usd_per_million`.
    #[serde(default)]
    #[schema(schema_with = optional_price_schema)]
    pub cached_input_usd_per_million: Option<Value>,
    /// Absent or null: as `input_usd_per_million`.
    #[serde(default)]
    #[schema(schema_with = optional_price_schema)]
    pub cache_write_usd_per_million: Option<Value>,
}

/// What [`price`] takes, for the API's document: a decimal string or a number, from 0 to 1,000,000,000.
/// (The strings described are those always taken; a few other spellings are too, such as `"1e3"`.)
fn price_schema() -> utoipa::openapi::schema::OneOfBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^([0-9]{1,9}(\.[0-9]{1,10})?|1000000000(\.0{1,10})?)$"))
                .description(Some("A decimal string, e.g. `\"0.15\"`.")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number).minimum(Some(0)).maximum(Some(1_000_000_000)))
        .description(Some("US dollars per million tokens, from 0 to 1,000,000,000."))
}

/// [`price_schema`], or null.
fn optional_price_schema() -> utoipa::openapi::schema::OneOfBuilder {
    price_schema().item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null))
}

fn price(field: &str, value: &Value) -> Result<Decimal, TenantModelError> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return Err(TenantModelError::Invalid(format!("{field} must be a decimal number"))),
    };
    let price = Decimal::from_str(text.trim())
        .map_err(|_| TenantModelError::Invalid(format!("{field} `{text}` is not a decimal number")))?;
    if price.is_sign_negative() || price > Decimal::from(1_000_000_000) {
        return Err(TenantModelError::Invalid(format!("{field} must be from 0 to 1,000,000,000")));
    }
    Ok(price)
}

/// Declares the model `name` (or replaces its declaration).
pub async fn declare(
    pool: &PgPool,
    context: &TenantContext,
    name: &str,
    declaration: &Declaration,
) -> Result<ModelInfo, TenantModelError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(TenantModelError::Invalid("a model's name must be 1 to 200 characters".to_owned()));
    }
    if declaration.context_window == 0 || declaration.max_output_tokens == 0 {
        return Err(TenantModelError::Invalid("context_window and max_output_tokens must be positive".to_owned()));
    }
    // The column is a PostgreSQL `integer`: a larger window would be stored as something else than was said.
    if i32::try_from(declaration.context_window).is_err() {
        return Err(TenantModelError::Invalid(format!("context_window must be at most {}", i32::MAX)));
    }
    if declaration.max_output_tokens >= declaration.context_window {
        return Err(TenantModelError::Invalid("max_output_tokens must be below context_window".to_owned()));
    }
    let input = price("input_usd_per_million", &declaration.input_usd_per_million)?;
    let cached_input = declaration
        .cached_input_usd_per_million
        .as_ref()
        .map(|v| price("cached_input_usd_per_million", v))
        .transpose()?;
    let cache_write = declaration
        .cache_write_usd_per_million
        .as_ref()
        .map(|v| price("cache_write_usd_per_million", v))
        .transpose()?;
    let model = ModelInfo {
        provider: TENANT_PROVIDER.to_owned(),
        name: name.to_owned(),
        context_window: declaration.context_window,
        max_output_tokens: declaration.max_output_tokens,
        prices: Prices {
            input,
            output: price("output_usd_per_million", &declaration.output_usd_per_million)?,
            cached_input: cached_input.unwrap_or(input),
            cache_write: cache_write.unwrap_or(input),
        },
    };
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    store::upsert(&mut transaction, context.tenant_id(), &model, cached_input, cache_write).await?;
    let entry = AuditEntry::new("tenant_model.declared", "model", model.name.clone()).with_details(serde_json::json!({
        "context_window": model.context_window, "max_output_tokens": model.max_output_tokens,
        "input_usd_per_million": model.prices.input.normalize().to_string(),
        "output_usd_per_million": model.prices.output.normalize().to_string(),
    }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(model)
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<ModelInfo>, TenantModelError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let models = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(models)
}

pub async fn remove(pool: &PgPool, context: &TenantContext, name: &str) -> Result<(), TenantModelError> {
    // Trimmed as a declaration's name is, so what was declared as ` m ` is removed by the same words.
    let name = name.trim();
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::delete(&mut transaction, name).await? {
        return Err(TenantModelError::NotFound);
    }
    audit::record(&mut transaction, context, &AuditEntry::new("tenant_model.removed", "model", name.to_owned()))
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// The tenant's declared models, for a turn's plan (found before the catalog's).
pub async fn declared(connection: &mut sqlx::PgConnection) -> Result<Vec<Arc<ModelInfo>>, sqlx::Error> {
    Ok(store::list(connection).await?.into_iter().map(Arc::new).collect())
}

/// The read of [`declared`], for [`db::read_together`]; [`declared_of`] decodes its rows.
pub const DECLARED: &str = store::LIST;

/// [`declared`] from the rows [`DECLARED`] answered.
pub fn declared_of(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Arc<ModelInfo>>, sqlx::Error> {
    Ok(store::models_of(rows)?.into_iter().map(Arc::new).collect())
}
