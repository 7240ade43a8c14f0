//! `POST /api/v1/tool-calls/{id}/approve` · `/deny` (chat or admin): a person's decision on a call that
//! waits for approval. The run resumes once none of its calls waits; follow it on `/runs/{id}/events`.

use axum::extract::State;

use super::AppState;
use super::error::ApiError;
use super::extract::{Path, Tenant};
use super::views::tool_calls::ToolCallView;
use crate::auth::context::Scope;
use crate::ids::ToolCallId;

pub async fn approve(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ToolCallId>,
) -> Result<axum::Json<ToolCallView>, ApiError> {
    decide(state, context, id, true).await
}

pub async fn deny(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ToolCallId>,
) -> Result<axum::Json<ToolCallView>, ApiError> {
    decide(state, context, id, false).await
}

async fn decide(
    state: AppState,
    context: crate::auth::context::TenantContext,
    id: ToolCallId,
    approve: bool,
) -> Result<axum::Json<ToolCallView>, ApiError> {
    if context.require_conversations().is_err() {
        context.require(Scope::Admin)?;
    }
    Ok(axum::Json(ToolCallView::from(&state.engine.decide_tool_call(&context, id, approve).await?)))
}
