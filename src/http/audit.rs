//! `GET /api/v1/audit-events` (admin): the tenant's audit trail, newest first, paged by `before`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Query, Tenant, next_before, page_limit};
use crate::api_keys::Scope;
use crate::audit;
use crate::ids::AuditEventId;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    before: Option<uuid::Uuid>,
}

pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Admin)?;
    let limit = page_limit(query.limit, 100, 1000)?;
    let events = audit::list_for(&state.db, &context, limit, query.before.map(AuditEventId)).await?;
    let next_before = next_before(&events, limit, |event| event.id);
    Ok(axum::Json(json!({ "audit_events": events, "next_before": next_before })))
}
