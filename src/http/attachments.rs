//! `/api/v1/sessions/{id}/resources` (chat): MCP resources attached to a conversation as context. A
//! resource is read when it is attached, through the caller's policy profile (`resource_allowlist`,
//! blocked fields, row limits), and every later turn of the conversation gives the model what is left.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::attachments::{AttachmentList, AttachmentView};
use crate::ids::{AttachmentId, ConnectorId, SessionId};
use crate::tools::attachments;

/// What `POST /api/v1/sessions/{id}/resources` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachResource {
    /// The connector whose server holds the resource.
    #[schema(value_type = uuid::Uuid)]
    connector_id: ConnectorId,
    /// The resource's URI: one its server lists, or one a template of it makes.
    #[schema(min_length = 1, max_length = 2048)]
    uri: String,
}

/// Reads a resource through the caller's policy and attaches it to the conversation (the same URI again
/// reads it afresh).
#[utoipa::path(
    post, path = "/sessions/{id}/resources", operation_id = "attach_session_resource",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    request_body = AttachResource,
    responses(
        (status = 201, description = "The resource as attached: what the model will be given.", body = AttachmentView),
        (status = 403, description = "`resource_not_allowed`: no pattern of the policy's `resource_allowlist` matches."),
        (status = 422, description = "`unsupported_resource` (no text) or `resource_too_large`."),
        (status = 502, description = "The connector's server failed (`tool_unreachable`, `tool_timeout`, `tool_protocol_error`)."),
    ),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn attach(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Json(body): Json<AttachResource>,
) -> Result<(StatusCode, axum::Json<AttachmentView>), ApiError> {
    context.require_conversations()?;
    let attachment =
        attachments::attach(&state.db, &state.tools, &context, SessionId(id), body.connector_id, &body.uri).await?;
    Ok((StatusCode::CREATED, axum::Json(AttachmentView::from(&attachment))))
}

/// The resources attached to a conversation, oldest first.
#[utoipa::path(
    get, path = "/sessions/{id}/resources", operation_id = "list_session_resources",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    responses((status = 200, description = "Every attached resource.", body = AttachmentList)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<AttachmentList>, ApiError> {
    context.require_conversations()?;
    Ok(axum::Json(AttachmentList::new(&attachments::list(&state.db, &context, SessionId(id)).await?)))
}

/// Detaches a resource: later turns no longer see it.
#[utoipa::path(
    delete, path = "/sessions/{id}/resources/{resource_id}", operation_id = "detach_session_resource",
    tag = "chat",
    params(
        ("id" = uuid::Uuid, Path, description = "The conversation's id."),
        ("resource_id" = uuid::Uuid, Path, description = "The attached resource's id."),
    ),
    responses((status = 204, description = "Detached.")),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn detach(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, resource_id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> Result<StatusCode, ApiError> {
    context.require_conversations()?;
    attachments::detach(&state.db, &context, SessionId(id), AttachmentId(resource_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
