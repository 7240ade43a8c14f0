//! `/api/v1/mcp-prompts` (chat): the prompts the tenant's MCP servers offer, for the widget and the IDE
//! to list, and filled in by the server that offers one when a person picks it.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::connectors::{FilledPrompt, PromptList};
use crate::tools::prompts;

/// The prompts of the tenant's active connectors, by `connector.prompt`.
#[utoipa::path(
    get, path = "/mcp-prompts", operation_id = "list_mcp_prompts",
    tag = "tools",
    responses((status = 200, description = "Every prompt offered.", body = PromptList)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<PromptList>, ApiError> {
    context.require_conversations()?;
    Ok(axum::Json(PromptList::new(&prompts::list(&state.db, &context).await?)))
}

/// What `POST /api/v1/mcp-prompts/{name}/fill` takes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FillPrompt {
    /// The prompt's arguments, each a string: every required one, and no other.
    #[serde(default)]
    #[schema(value_type = Object)]
    arguments: serde_json::Map<String, serde_json::Value>,
}

/// Fills in a prompt: its server makes the messages from the arguments given.
#[utoipa::path(
    post, path = "/mcp-prompts/{name}/fill", operation_id = "fill_mcp_prompt",
    tag = "tools",
    params(("name" = String, Path, description = "The prompt's `connector.prompt` name.")),
    request_body = FillPrompt,
    responses(
        (status = 200, description = "The messages, in order.", body = FilledPrompt),
        (status = 502, description = "The connector's server failed (`tool_unreachable`, `tool_timeout`, `tool_protocol_error`)."),
    ),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn fill(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(name): Path<String>,
    Json(body): Json<FillPrompt>,
) -> Result<axum::Json<FilledPrompt>, ApiError> {
    context.require_conversations()?;
    let messages = prompts::fill(&state.db, &state.tools, &context, &name, body.arguments).await?;
    Ok(axum::Json(FilledPrompt::new(messages)))
}
