//! `POST /api/v1/widget-tokens` (admin): a short-lived token for one end user of the chat widget. The
//! tenant's backend mints it for a signed-in customer; the widget uses it for that customer's own
//! conversations and nothing else.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use crate::api_keys::Scope;
use crate::auth::widget::{self, Claims};
use crate::db;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    external_user_id: String,
    ttl_seconds: Option<i64>,
}

const DEFAULT_TTL: i64 = 3600;
const MAX_TTL: i64 = 24 * 3600;

pub async fn mint(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<MintBody>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    context.require(Scope::Admin)?;
    let external = body.external_user_id.trim();
    if external.is_empty() || external.len() > 200 {
        return Err(ApiError::invalid("external_user_id must be 1 to 200 characters"));
    }
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if !(1..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid(format!("ttl_seconds must be between 1 and {MAX_TTL}")));
    }
    let mut transaction = db::begin_tenant(&state.db, context.tenant_id()).await?;
    let user_id = crate::integration::store::end_user(&mut transaction, context.tenant_id(), external).await?;
    transaction.commit().await?;
    let expires_at = Utc::now() + chrono::Duration::seconds(ttl);
    let token = widget::sign(&state.keys, &Claims { tenant_id: context.tenant_id(), user_id, expires_at });
    Ok((StatusCode::CREATED, axum::Json(json!({ "token": token, "expires_at": expires_at, "user_id": user_id }))))
}
