//! `GET /v1/models` and `GET /v1/models/{id}`: the models a tenant's key may name in `/v1/chat/completions`
//! (Switchboard's assistant, the tenant's default model and its fallback), as OpenAI's `model` objects.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::wire::ASSISTANT_MODEL;
use crate::auth::context::{Scope, TenantContext};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Path, Tenant};

pub async fn list_models(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<Value>, ApiError> {
    let data = models(&state, &context).await?;
    Ok(axum::Json(json!({ "object": "list", "data": data })))
}

/// One model the list shows. The id is everything after `/models/`: a `provider/model` name has a slash.
pub async fn retrieve_model(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let model = models(&state, &context).await?.into_iter().find(|model| model["id"] == id.as_str());
    // OpenAI's own words and code, which the SDKs raise as `NotFoundError` (`param` is set from the code).
    let message = format!("The model `{id}` does not exist or you do not have access to it.");
    model.map(axum::Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "model_not_found", message))
}

async fn models(state: &AppState, context: &TenantContext) -> Result<Vec<Value>, ApiError> {
    context.require(Scope::Chat)?;
    let config = crate::tenants::config(&state.db, context).await?;
    let mut names = vec![ASSISTANT_MODEL.to_owned(), config.default_model.clone()];
    names.extend(config.fallback_model.clone());
    names.dedup();
    let created = config.updated_at.timestamp();
    let models = names
        .iter()
        .map(|name| json!({ "id": name, "object": "model", "created": created, "owned_by": config.default_provider }))
        .collect();
    Ok(models)
}
