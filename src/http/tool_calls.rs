//! `POST /api/v1/tool-calls/{id}/approve` · `/deny` (chat or admin): a person's decision on a call that
//! waits for approval. The run resumes once none of its calls waits; follow it on `/runs/{id}/events`.

use axum::extract::State;

use super::AppState;
use super::error::ApiError;
use super::extract::{Path, Tenant};
use super::views::tool_calls::ToolCallView;
use crate::auth::context::Scope;
use crate::ids::ToolCallId;

/// Approves a tool call that waits for a person; the run resumes once none of its calls waits.
#[utoipa::path(
    post, path = "/tool-calls/{id}/approve", operation_id = "approve_tool_call",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The tool call's id (from its `tool_call.awaiting_approval` event).")),
    responses((status = 200, description = "The call as approved (`running`).", body = ToolCallView)),
    security(("tenant_key" = ["chat"]), ("tenant_key" = ["admin"]), ("widget_token" = [])),
)]
pub async fn approve(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ToolCallId>,
) -> Result<axum::Json<ToolCallView>, ApiError> {
    decide(state, context, id, true).await
}

/// Denies a tool call that waits for a person; the run resumes once none of its calls waits.
#[utoipa::path(
    post, path = "/tool-calls/{id}/deny", operation_id = "deny_tool_call",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The tool call's id (from its `tool_call.awaiting_approval` event).")),
    responses((status = 200, description = "The call as denied.", body = ToolCallView)),
    security(("tenant_key" = ["chat"]), ("tenant_key" = ["admin"]), ("widget_token" = [])),
)]
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
