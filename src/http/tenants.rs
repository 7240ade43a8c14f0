//! `POST /api/v1/tenants` (operator).

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Operator};
use crate::tenants::{self, NewTenant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    name: String,
    slug: String,
}

pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let new_tenant = NewTenant::parse(&body.name, &body.slug)?;
    let (tenant, key) = tenants::create(&state.db, &new_tenant, operator.request_id).await?;
    let body = json!({
        "tenant": { "id": tenant.id, "name": tenant.name, "slug": tenant.slug, "created_at": tenant.created_at },
        "api_key": {
            "id": key.key.id,
            "key": key.token.expose_secret(),
            "name": key.key.name,
            "prefix": key.key.prefix,
            "scopes": key.key.scopes,
        },
    });
    Ok((StatusCode::CREATED, axum::Json(body)))
}
