//! `POST /api/v1/tenants` (operator).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Operator};
use super::views::tenants::TenantCreated;
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
) -> Result<(StatusCode, axum::Json<TenantCreated>), ApiError> {
    let new_tenant = NewTenant::parse(&body.name, &body.slug)?;
    let (tenant, key) = tenants::create(&state.db, &new_tenant, operator.request_id).await?;
    Ok((StatusCode::CREATED, axum::Json(TenantCreated::new(&tenant, &key))))
}
