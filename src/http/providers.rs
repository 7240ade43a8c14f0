//! `/api/v1/providers/{provider}` (admin): the tenant's own provider keys. The key goes in, never out.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::providers::CredentialView;
use crate::auth::context::Scope;
use crate::providers::byok::{self, NewCredential};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCredential {
    /// The provider's API key: 1 to 1000 bytes, no control characters. Sealed at rest, never shown again.
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    api_key: SecretString,
    /// Where the provider is reached instead of its public endpoint; required for `openai_compatible`. At
    /// most 2000 characters, an `http(s)` URL the service may reach, with no credential in it.
    #[schema(max_length = 2000)]
    base_url: Option<String>,
    /// The model used when neither the request nor the tenant's settings name one: 1 to 200 bytes.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    default_model: Option<String>,
}

/// A provider a tenant can bring its own key for.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the name is checked by `byok::parse_provider`.
enum ByokProvider {
    #[schema(rename = "openai")]
    OpenAi,
    #[schema(rename = "anthropic")]
    Anthropic,
    #[schema(rename = "gemini")]
    Gemini,
    #[schema(rename = "openai_compatible")]
    OpenAiCompatible,
}

/// Stores the tenant's own key for a provider (replacing any), which its turns then use.
#[utoipa::path(
    put, path = "/providers/{provider}", tag = "tenant",
    params(("provider" = inline(ByokProvider), Path, description = "The provider.")),
    request_body = PutCredential,
    responses((status = 200, description = "The credential as stored, without its key.", body = CredentialView)),
    security(("tenant_key" = ["admin"])),
)]
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

/// Whether the tenant has its own key for a provider, and the endpoint and model stored with it.
#[utoipa::path(
    get, path = "/providers/{provider}", tag = "tenant",
    params(("provider" = inline(ByokProvider), Path, description = "The provider.")),
    responses((status = 200, description = "The credential, without its key.", body = CredentialView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(provider): Path<String>,
) -> Result<axum::Json<CredentialView>, ApiError> {
    context.require(Scope::Admin)?;
    let provider = byok::parse_provider(&provider)?;
    Ok(axum::Json(CredentialView::from(&byok::show(&state.db, &context, provider).await?)))
}

/// Removes the tenant's own key for a provider: its turns use the platform's key again.
#[utoipa::path(
    delete, path = "/providers/{provider}", tag = "tenant",
    params(("provider" = inline(ByokProvider), Path, description = "The provider.")),
    responses((status = 204, description = "Removed.")),
    security(("tenant_key" = ["admin"])),
)]
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
