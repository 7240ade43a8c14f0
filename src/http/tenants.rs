//! The operator's tenants over their life: `POST /api/v1/tenants` (create), `GET /api/v1/tenants` (list,
//! with status and month-to-date usage), `GET · PATCH · DELETE /api/v1/tenants/{id}` (rename, suspend,
//! resume; delete with every row, after `?confirm=<slug>`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Operator, Path, Query, next_before, page_limit};
use super::views::tenants::{TenantCreated, TenantList, TenantSummaryView};
use crate::ids::TenantId;
use crate::tenants::{self, NewTenant, TenantPatch, TenantStatus};

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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantListQuery {
    /// How many tenants (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only tenants created before this one: the previous page's `next_before`.
    before: Option<uuid::Uuid>,
}

/// Every tenant, newest first, a page at a time, with its status and its usage this month.
#[utoipa::path(
    get, path = "/tenants", operation_id = "list_tenants", tag = "operator",
    params(TenantListQuery),
    responses((status = 200, description = "A page of tenants.", body = TenantList)),
    security(("operator_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    Query(query): Query<TenantListQuery>,
) -> Result<axum::Json<TenantList>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    let summaries = tenants::list(&state.db, limit, query.before.map(TenantId)).await?;
    let next_before = next_before(&summaries, limit, |summary| summary.tenant.id);
    Ok(axum::Json(TenantList::new(&summaries, next_before)))
}

/// One tenant, with its status and its usage this month.
#[utoipa::path(
    get, path = "/tenants/{id}", operation_id = "get_tenant", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "The tenant's id.")),
    responses((status = 200, description = "The tenant.", body = TenantSummaryView)),
    security(("operator_token" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<TenantSummaryView>, ApiError> {
    Ok(axum::Json(TenantSummaryView::from(&tenants::get(&state.db, TenantId(id)).await?)))
}

/// Only a JSON object: serde would also read a struct from an array (`["name", null]`), field by field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct UpdateTenant {
    /// A new name: 1 to 200 characters, spaces around it trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    /// `suspended` refuses the tenant's keys and widget tokens (403 `tenant_suspended`) and holds its queued
    /// agent runs; `active` resumes it.
    status: Option<TenantStatus>,
}

/// [`UpdateTenant`]'s fields, read from an object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateTenantFields {
    name: Option<String>,
    status: Option<TenantStatus>,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for UpdateTenant {
    type Error = serde_json::Error;

    fn try_from(fields: serde_json::Map<String, serde_json::Value>) -> Result<Self, Self::Error> {
        let UpdateTenantFields { name, status } = serde_json::from_value(serde_json::Value::Object(fields))?;
        Ok(Self { name, status })
    }
}

/// Renames, suspends or resumes a tenant; each change is recorded in the tenant's audit trail and the
/// operator's. The system tenant cannot be changed (409 `system_tenant`).
#[utoipa::path(
    patch, path = "/tenants/{id}", operation_id = "update_tenant", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "The tenant's id.")),
    request_body = UpdateTenant,
    responses((status = 200, description = "The tenant as changed.", body = TenantSummaryView)),
    security(("operator_token" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<uuid::Uuid>,
    Json(body): Json<UpdateTenant>,
) -> Result<axum::Json<TenantSummaryView>, ApiError> {
    let patch = TenantPatch::parse(body.name.as_deref(), body.status)?;
    let summary = tenants::update(&state.db, TenantId(id), &patch, operator.request_id).await?;
    Ok(axum::Json(TenantSummaryView::from(&summary)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteTenantQuery {
    /// The tenant's slug, typed again: without it the deletion is refused (422 `confirmation_required`).
    confirm: Option<String>,
}

/// Deletes a suspended tenant and every row it owns, in one transaction, recorded in the operator's trail.
/// It must be suspended first (409 `tenant_not_suspended`) and its slug given as `?confirm=` (422
/// `confirmation_required`); the system tenant never (409 `system_tenant`).
#[utoipa::path(
    delete, path = "/tenants/{id}", operation_id = "delete_tenant", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "The tenant's id."), DeleteTenantQuery),
    responses((status = 204, description = "Deleted, with all its data.")),
    security(("operator_token" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<DeleteTenantQuery>,
) -> Result<StatusCode, ApiError> {
    tenants::delete(&state.db, TenantId(id), query.confirm.as_deref(), operator.request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
