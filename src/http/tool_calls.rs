//! `POST /api/v1/tool-calls/{id}/approve` · `/deny` (chat or admin): a person's decision on a call that
//! waits for approval; `/input`: a person's answer to what a call's server asked (MCP elicitation). The
//! run resumes once none of its calls waits; follow it on `/runs/{id}/events`.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::tool_calls::ToolCallView;
use crate::auth::context::Scope;
use crate::ids::ToolCallId;
use crate::tools::elicitation::InputAction;

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

/// What `POST /api/v1/tool-calls/{id}/input` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveInput {
    action: InputAction,
    /// With `accept`: the answer, fitting the `requested_schema` of the call's `tool_call.awaiting_input`.
    #[schema(value_type = Option<Object>)]
    content: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Answers what a tool call's server asked (its `tool_call.awaiting_input` event); the call is made again
/// with the answer once none of the run's calls waits.
#[utoipa::path(
    post, path = "/tool-calls/{id}/input", operation_id = "give_tool_call_input",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The tool call's id (from its `tool_call.awaiting_input` event).")),
    request_body = GiveInput,
    responses(
        (status = 200, description = "The call as answered (`running`).", body = ToolCallView),
        (status = 422, description = "`invalid_request`: the content does not fit the question's schema."),
        (status = 409, description = "`tool_call_decided`: the call is not waiting for input."),
    ),
    security(("tenant_key" = ["chat"]), ("tenant_key" = ["admin"]), ("widget_token" = [])),
)]
pub async fn input(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ToolCallId>,
    Json(body): Json<GiveInput>,
) -> Result<axum::Json<ToolCallView>, ApiError> {
    if context.require_conversations().is_err() {
        context.require(Scope::Admin)?;
    }
    let record = state.engine.answer_tool_input(&context, id, body.action, body.content).await?;
    Ok(axum::Json(ToolCallView::from(&record)))
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
