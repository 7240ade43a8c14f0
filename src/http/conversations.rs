//! `/api/v1/sessions` (chat): conversations, their messages, and posting a message (a turn), streamed
//! as SSE when the client accepts `text/event-stream`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::answer;
use super::error::ApiError;
use super::extract::{self, Json, Path, Query, Tenant, next_before, page_limit};
use super::rate_limits;
use super::sse;
use super::streams::{self, OpenStreams};
use super::views::conversations::{MessageList, SessionList, SessionView};
use super::views::turns::TurnAnswer;
use crate::conversations::{self, NewSession, SessionFilter, SessionPatch, SessionType};
use crate::engine::TurnRequest;
use crate::idempotency::IdempotencyKey;
use crate::ids::SessionId;
use crate::rate_limits::Demand;
use crate::runs::events::RunEvent;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// `chat` unless given; a `workspace` conversation needs a `workspace_id`.
    session_type: Option<SessionType>,
    workspace_id: Option<uuid::Uuid>,
    title: Option<String>,
    /// The collections (by name) its turns may search, among those the credentials may; absent: all of
    /// them.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
}

/// Starts a conversation (a widget token's is its end user's).
#[utoipa::path(
    post, path = "/sessions", operation_id = "create_session",
    tag = "chat",
    request_body = CreateSession,
    responses((status = 201, description = "The new conversation.", body = SessionView)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateSession>,
) -> Result<(StatusCode, axum::Json<SessionView>), ApiError> {
    context.require_conversations()?;
    let new_session =
        NewSession::parse(body.session_type, body.workspace_id, body.title)?.in_collections(body.collections);
    let session = conversations::create(&state.db, &context, &new_session).await?;
    Ok((StatusCode::CREATED, axum::Json(SessionView::from(&session))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only conversations of this type.
    session_type: Option<SessionType>,
    /// Only the conversations of this workspace.
    workspace_id: Option<uuid::Uuid>,
    /// Only archived (`true`) or only active (`false`) conversations.
    archived: Option<bool>,
    /// The page's size (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The previous page's `next_before`.
    before: Option<uuid::Uuid>,
}

/// The conversations (a widget token's: its end user's), most recently updated first, a page at a time.
#[utoipa::path(
    get, path = "/sessions", operation_id = "list_sessions",
    tag = "chat",
    params(ListQuery),
    responses((status = 200, description = "A page of conversations.", body = SessionList)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<SessionList>, ApiError> {
    context.require_conversations()?;
    let limit = page_limit(query.limit, 50, 200)?;
    let filter = SessionFilter {
        session_type: query.session_type,
        workspace_id: query.workspace_id,
        archived: query.archived,
        limit,
        before: query.before.map(SessionId),
    };
    let sessions = conversations::list(&state.db, &context, &filter).await?;
    let next_before = next_before(&sessions, limit, |session| session.id);
    Ok(axum::Json(SessionList::new(&sessions, next_before)))
}

/// A conversation.
#[utoipa::path(
    get, path = "/sessions/{id}", operation_id = "get_session",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    responses((status = 200, description = "The conversation.", body = SessionView)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<SessionView>, ApiError> {
    context.require_conversations()?;
    Ok(axum::Json(SessionView::from(&conversations::get(&state.db, &context, SessionId(id)).await?)))
}

/// At least one of `title` and `archived`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    title: Option<String>,
    archived: Option<bool>,
}

/// Renames a conversation, or archives or restores it.
#[utoipa::path(
    patch, path = "/sessions/{id}", operation_id = "update_session",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    request_body = UpdateSession,
    responses((status = 200, description = "The conversation as changed.", body = SessionView)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Json(body): Json<UpdateSession>,
) -> Result<axum::Json<SessionView>, ApiError> {
    context.require_conversations()?;
    let patch = SessionPatch::parse(body.title, body.archived)?;
    Ok(axum::Json(SessionView::from(&conversations::update(&state.db, &context, SessionId(id), &patch).await?)))
}

/// Deletes a conversation and its messages.
#[utoipa::path(
    delete, path = "/sessions/{id}", operation_id = "delete_session",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    responses((status = 204, description = "Deleted.")),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require_conversations()?;
    conversations::delete(&state.db, &context, SessionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A conversation's messages, oldest first.
#[utoipa::path(
    get, path = "/sessions/{id}/messages", operation_id = "list_messages",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    responses((status = 200, description = "The conversation's messages.", body = MessageList)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn messages(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<MessageList>, ApiError> {
    context.require_conversations()?;
    let messages = conversations::messages(&state.db, &context, SessionId(id)).await?;
    Ok(axum::Json(MessageList::new(&messages)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    #[schema(min_length = 1, max_length = 100_000)]
    content: String,
    /// A model other than the tenant's default.
    #[schema(min_length = 1, max_length = 200)]
    model: Option<String>,
    /// Search only these collections (by name) for this answer, among those the credentials and the
    /// conversation may search.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
}

/// Posts a message and answers it, as JSON or (with `Accept: text/event-stream`) as its event stream.
///
/// The JSON answer comes once the run ends, or pauses for an approval (202).
#[utoipa::path(
    post, path = "/sessions/{id}/messages", operation_id = "post_message",
    tag = "chat",
    params(
        ("id" = uuid::Uuid, Path, description = "The conversation's id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200,
            description = "Makes a retry safe: a second request with the key answers the first one's run."),
    ),
    request_body = PostMessage,
    responses(
        (status = 200, description = "The answer. As JSON: the run ended (a failed run answers its error \
            instead). As `text/event-stream` (when the request's `Accept` names it): the run's events as they \
            happen, each frame with `id` (the event's `seq`), `event` (its `type`) and `data` (the event as \
            JSON, the schema here); the stream ends with the run, or when it pauses for an approval.",
            content((TurnAnswer = "application/json"), (RunEvent = "text/event-stream"))),
        (status = 202, description = "The run waits for a person to approve a tool call (`run.status` is \
            `awaiting_approval`); decide on `/tool-calls/{id}/approve` or `/deny`, then follow \
            `/runs/{id}/events`.", body = TurnAnswer),
    ),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn post_message(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    open_streams: OpenStreams,
    headers: HeaderMap,
    Json(body): Json<PostMessage>,
) -> Result<Response, ApiError> {
    context.require_conversations()?;
    let slot = open_streams.reserve_if(sse::wants_event_stream(&headers), &context)?;
    let key = extract::idempotency_key(&headers)?.as_deref().map(IdempotencyKey::parse).transpose()?;
    let request = TurnRequest::parse(body.content, body.model)?.in_collections(body.collections);
    let admission =
        rate_limits::admit(&state, &context, &Demand { prompt: &[&request.content], ..Demand::default() }).await?;
    let request = request.with_rate_reservation(admission.reservation);
    let started = state.engine.start_turn_once(&context, SessionId(id), request, key.as_ref()).await?;
    let answer = state.engine.answer(&context, started.run.id, streams::delivery(slot.as_ref())).await?;
    answer::respond(answer, slot, |outcome| TurnAnswer::new(outcome, &started.user_message))
}
