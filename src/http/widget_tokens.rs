//! `POST /api/v1/widget-tokens` (admin): a short-lived token for one end user of the chat widget. The
//! tenant's backend mints it for a signed-in customer; the widget uses it for that customer's own
//! conversations and nothing else.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use super::views::widget_tokens::IssuedTokenView;
use crate::auth::context::Scope;
use crate::auth::widget;
use crate::collections;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// The end user's id in the tenant's own system: 1 to 200 bytes, spaces around it trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    external_user_id: String,
    /// How long the token lasts, in seconds (default 3600, at most a day).
    #[schema(minimum = 1, maximum = 86_400)]
    ttl_seconds: Option<i64>,
    /// The collections (by name) the widget may search, among those of the key minting the token;
    /// absent: the key's.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
}

const DEFAULT_TTL: i64 = 3600;
const MAX_TTL: i64 = 24 * 3600;

/// Mints a short-lived token for one end user of the chat widget, who is created on first use.
#[utoipa::path(
    post, path = "/widget-tokens", tag = "tenant",
    request_body = MintBody,
    responses((status = 201, description = "The token, and the end user it acts for.", body = IssuedTokenView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn mint(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<MintBody>,
) -> Result<(StatusCode, axum::Json<IssuedTokenView>), ApiError> {
    context.require(Scope::Admin)?;
    let external = body.external_user_id.trim();
    if let Some(reason) = crate::users::refuse_external_id(external) {
        return Err(ApiError::invalid(reason));
    }
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if !(1..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid(format!("ttl_seconds must be between 1 and {MAX_TTL}")));
    }
    let collections = collections::narrow_for(&state.db, &context, body.collections.as_deref()).await?;
    let ttl = chrono::Duration::seconds(ttl);
    let issued = widget::issue(&state.db, &state.keys, context.tenant_id(), external, ttl, &collections).await?;
    Ok((StatusCode::CREATED, axum::Json(IssuedTokenView::from(&issued))))
}
