//! `/api/v1/api-keys` (admin): create (the key is shown once), list (never the secret), change (its own
//! monthly budget, collections, policy profile), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::api_keys::{ApiKeyList, ApiKeyView, CreatedApiKeyView};
use crate::api_keys::{self, ApiKeyChange, NewApiKey};
use crate::auth::context::Scope;
use crate::ids::{ApiKeyId, PolicyProfileId};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1 to 200 characters, spaces around it trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    /// At least one.
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    scopes: Vec<String>,
    /// When the key stops working; in the future. Absent or null: never.
    expires_at: Option<DateTime<Utc>>,
    /// The key's own monthly budget: a decimal string or a number of US dollars; absent or null for none.
    #[serde(default)]
    #[schema(schema_with = crate::budgets::amount_schema)]
    monthly_budget_usd: Value,
    /// The collections (by name) the key may search, among those of the key creating it; absent: the
    /// creating key's (every collection, for an unlimited key).
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
    /// The key's own policy profile, which its runs use whatever their end user's group or the tenant's
    /// active profile; absent or null: the key inherits them.
    #[schema(value_type = Option<uuid::Uuid>)]
    policy_profile_id: Option<PolicyProfileId>,
}

/// Creates an API key; its token is in this answer only.
#[utoipa::path(
    post, path = "/api-keys", tag = "tenant",
    request_body = CreateApiKey,
    responses((status = 201, description = "The key, with its token shown this once.", body = CreatedApiKeyView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKeyView>), ApiError> {
    context.require(Scope::Admin)?;
    let new_key = NewApiKey::parse(&body.name, &body.scopes, body.expires_at)?
        .with_budget(&body.monthly_budget_usd)?
        .in_collections(body.collections);
    let created = api_keys::create_for(&state.db, &context, &new_key, body.policy_profile_id).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedApiKeyView::from(&created))))
}

/// The tenant's API keys, revoked ones too; never their tokens.
#[utoipa::path(
    get, path = "/api-keys", tag = "tenant",
    responses((status = 200, description = "Every API key of the tenant.", body = ApiKeyList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<ApiKeyList>, ApiError> {
    context.require(Scope::Admin)?;
    let keys = api_keys::list(&state.db, &context).await?;
    Ok(axum::Json(ApiKeyList::new(&keys)))
}

/// What `PATCH /api/v1/api-keys/{id}` takes (read as a map, so that an absent field and `null` differ).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema: the handler reads the object with `ApiKeyChange::parse`.
pub struct ApiKeyUpdate {
    /// The key's own monthly budget; null removes it (the tenant's budget for every key applies again);
    /// absent leaves it as it is.
    #[schema(schema_with = crate::budgets::amount_schema)]
    monthly_budget_usd: Option<Value>,
    /// The collections (by name) the key may search, among those of the key making the change; null: all
    /// that key may search; absent leaves them as they are.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
    /// The key's own policy profile; null: the key inherits (its end user's group's profile, else the
    /// tenant's active one); absent leaves it as it is.
    #[schema(value_type = Option<uuid::Uuid>)]
    policy_profile_id: Option<Value>,
}

/// Changes an API key's own monthly budget (`{"monthly_budget_usd": "12.50"}`, or `null` to remove it),
/// the collections it may search (`{"collections": ["public"]}`) or its policy profile
/// (`{"policy_profile_id": "…"}`, or `null` to inherit).
#[utoipa::path(
    patch, path = "/api-keys/{id}", tag = "tenant",
    params(("id" = uuid::Uuid, Path, description = "The API key's id.")),
    request_body = ApiKeyUpdate,
    responses((status = 200, description = "The key as changed.", body = ApiKeyView)),
    security(("tenant_key" = ["admin"])),
)]
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

/// Revokes an API key: it stops working at once, and stays listed with its `revoked_at`.
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "tenant",
    params(("id" = uuid::Uuid, Path, description = "The API key's id.")),
    responses((status = 204, description = "Revoked.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    api_keys::revoke_for(&state.db, &context, ApiKeyId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
