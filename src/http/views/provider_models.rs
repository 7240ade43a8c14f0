//! A model a tenant declared for its own server, as the API shows it (prices as decimal strings).

use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::ModelInfo;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantModelList)]
pub struct ModelList {
    pub models: Vec<ModelView>,
}

/// Prices are US dollars per million tokens, decimal strings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantModelView)]
pub struct ModelView {
    pub name: String,
    pub context_window: u32,
    pub max_output_tokens: u32,
    pub input_usd_per_million: Decimal,
    pub output_usd_per_million: Decimal,
    pub cached_input_usd_per_million: Decimal,
    pub cache_write_usd_per_million: Decimal,
}

impl From<&ModelInfo> for ModelView {
    fn from(model: &ModelInfo) -> Self {
        Self {
            name: model.name.clone(),
            context_window: model.context_window,
            max_output_tokens: model.max_output_tokens,
            input_usd_per_million: model.prices.input.normalize(),
            output_usd_per_million: model.prices.output.normalize(),
            cached_input_usd_per_million: model.prices.cached_input.normalize(),
            cache_write_usd_per_million: model.prices.cache_write.normalize(),
        }
    }
}
