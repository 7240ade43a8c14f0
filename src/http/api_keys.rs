//! `/api/v1/api-keys` (admin): create (the key is shown once), list (never the secret), change (its own
//! monthly budget), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::api_keys::{ApiKeyList, ApiKeyView, CreatedApiKeyView};
use crate::api_keys::{self, ApiKeyChange, NewApiKey};
use crate::auth::context::Scope;
use crate::ids::ApiKeyId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    /// The key's own monthly budget: a decimal string or a number of US dollars; absent or null for none.
    #[serde(default)]
    monthly_budget_usd: Value,
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKeyView>), ApiError> {
    context.require(Scope::Admin)?;
    let new_key = NewApiKey::parse(&body.name, &body.scopes, body.expires_at)?.with_budget(&body.monthly_budget_usd)?;
    let created = api_keys::create_for(&state.db, &context, &new_key).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedApiKeyView::from(&created))))
}

pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<ApiKeyList>, ApiError> {
    context.require(Scope::Admin)?;
    let keys = api_keys::list(&state.db, &context).await?;
    Ok(axum::Json(ApiKeyList::new(&keys)))
}

/// `PATCH /api/v1/api-keys/{id}`: `{"monthly_budget_usd": "12.50"}`, or `null` to remove the key's own budget.
pub async fn update(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ApiKeyId>,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<ApiKeyView>, ApiError> {
    context.require(Scope::Admin)?;
    let change = ApiKeyChange::parse(&fields)?;
    let key = api_keys::update_for(&state.db, &context, id, &change).await?;
    Ok(axum::Json(ApiKeyView::from(&key)))
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
