//! `/api/v1/api-keys` (admin): create (the key is shown once), list (never the secret), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use crate::api_keys::{self, NewApiKey, Scope};
use crate::ids::ApiKeyId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateApiKey>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    context.require(Scope::Admin)?;
    let new_key = NewApiKey::parse(&body.name, &body.scopes, body.expires_at)?;
    let created = api_keys::create_for(&state.db, &context, &new_key).await?;
    let mut body = serde_json::to_value(&created.key).map_err(|error| ApiError::internal(&error))?;
    body["key"] = json!(created.token.expose_secret());
    Ok((StatusCode::CREATED, axum::Json(body)))
}

pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Admin)?;
    let keys = api_keys::list(&state.db, &context).await?;
    Ok(axum::Json(json!({ "api_keys": keys })))
}

pub async fn revoke(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    api_keys::revoke_for(&state.db, &context, ApiKeyId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
