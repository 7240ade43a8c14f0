//! `/api/v1/tenant/config` (admin): the tenant's settings.

use axum::extract::State;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use crate::api_keys::Scope;
use crate::tenants;

pub async fn get(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(json!(tenants::config(&state.db, &context).await?)))
}

pub async fn patch(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(json!(tenants::update_config(&state.db, &context, &fields).await?)))
}
