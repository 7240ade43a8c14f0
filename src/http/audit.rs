//! `GET /api/v1/audit-events` (admin): the tenant's audit trail, newest first, paged by `before`.

use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Query, Tenant, next_before, page_limit};
use super::views::audit::AuditEventList;
use crate::audit;
use crate::auth::context::Scope;
use crate::ids::AuditEventId;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many events (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only events older than this one: the previous page's `next_before`.
    before: Option<uuid::Uuid>,
}

/// The tenant's audit trail, newest first, a page at a time.
#[utoipa::path(
    get, path = "/audit-events", tag = "tenant",
    params(AuditQuery),
    responses((status = 200, description = "A page of events.", body = AuditEventList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<AuditEventList>, ApiError> {
    context.require(Scope::Admin)?;
    let limit = page_limit(query.limit, 100, 1000)?;
    let events = audit::list_for(&state.db, &context, limit, query.before.map(AuditEventId)).await?;
    let next_before = next_before(&events, limit, |event| event.id);
    Ok(axum::Json(AuditEventList::new(&events, next_before)))
}
