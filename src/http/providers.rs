//! `/api/v1/providers/{provider}` (admin): the tenant's own provider keys. The key goes in, never out.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::providers::CredentialView;
use crate::auth::context::Scope;
use crate::providers::byok::{self, NewCredential};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutCredential {
    api_key: SecretString,
    base_url: Option<String>,
    default_model: Option<String>,
}

pub async fn put(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(provider): Path<String>,
    Json(body): Json<PutCredential>,
) -> Result<axum::Json<CredentialView>, ApiError> {
    context.require(Scope::Admin)?;
    let provider = byok::parse_provider(&provider)?;
    let credential =
        NewCredential::parse(provider, body.api_key, body.base_url, body.default_model, &state.outbound).await?;
    Ok(axum::Json(CredentialView::from(&byok::save(&state.db, &context, &state.keys, provider, &credential).await?)))
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(provider): Path<String>,
) -> Result<axum::Json<CredentialView>, ApiError> {
    context.require(Scope::Admin)?;
    let provider = byok::parse_provider(&provider)?;
    Ok(axum::Json(CredentialView::from(&byok::show(&state.db, &context, provider).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(provider): Path<String>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    let provider = byok::parse_provider(&provider)?;
    byok::remove(&state.db, &context, provider).await?;
    Ok(StatusCode::NO_CONTENT)
}
