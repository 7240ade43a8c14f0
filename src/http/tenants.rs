//! `POST /api/v1/tenants` (operator).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Operator};
use super::views::tenants::TenantCreated;
use crate::tenants::{self, NewTenant};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The organisation's name: 1 to 200 characters, spaces around it trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    /// Its unique short name: 2 to 63 of `a-z`, `0-9` and `-`, not starting with `-`; not `system`.
    #[schema(min_length = 2, max_length = 63, pattern = "^[a-z0-9][a-z0-9-]*$")]
    slug: String,
}

/// Creates a tenant with default settings and its first admin API key, whose token is shown this once.
#[utoipa::path(
    post, path = "/tenants", tag = "operator",
    request_body = CreateTenant,
    responses((status = 201, description = "The tenant, and its first API key (all scopes).", body = TenantCreated)),
    security(("operator_token" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantCreated>), ApiError> {
    let new_tenant = NewTenant::parse(&body.name, &body.slug)?;
    let (tenant, key) = tenants::create(&state.db, &new_tenant, operator.request_id).await?;
    Ok((StatusCode::CREATED, axum::Json(TenantCreated::new(&tenant, &key))))
}
