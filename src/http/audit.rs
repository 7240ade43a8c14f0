//! `GET /api/v1/audit-events` (admin): the tenant's audit trail, newest first, paged by `before`.

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::Tenant;
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
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Admin)?;
    let Query(query) = query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let events = audit::list_for(&state.db, &context, limit, query.before.map(AuditEventId)).await?;
    let next_before =
        (events.len() == usize::try_from(limit).unwrap_or(usize::MAX)).then(|| events.last().map(|e| e.id));
    Ok(axum::Json(json!({ "audit_events": events, "next_before": next_before.flatten() })))
}
