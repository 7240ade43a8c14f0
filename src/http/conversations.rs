//! `/api/v1/sessions` (chat): conversations, their messages, and posting a message (a turn), streamed
//! as SSE when the client accepts `text/event-stream`; editing a question and regenerating an answer
//! (`/api/v1/messages/{id}/edit`, `/regenerate`), each a turn on a branch of its own, answered the same
//! way; and choosing which branch a conversation shows (`/api/v1/sessions/{id}/active-leaf`).

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
use crate::conversations::{self, NewSession, Role, SessionFilter, SessionPatch, SessionType};
use crate::engine::{Branch, TurnRequest};
use crate::idempotency::IdempotencyKey;
use crate::ids::{MessageId, SessionId};
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

/// What a listing of messages may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Include {
    /// Each message's versions by id (`siblings.ids`), to switch to another.
    Siblings,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// `siblings`: list each message's versions by id.
    include: Option<Include>,
}

/// A conversation's active branch, oldest first: from its first message to its active leaf, each message
/// with `parent_message_id` and which of its versions it is (`siblings`).
#[utoipa::path(
    get, path = "/sessions/{id}/messages", operation_id = "list_messages",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id."), MessagesQuery),
    responses((status = 200, description = "The conversation's active branch.", body = MessageList)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn messages(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<MessagesQuery>,
) -> Result<axum::Json<MessageList>, ApiError> {
    context.require_conversations()?;
    let messages = conversations::messages(&state.db, &context, SessionId(id)).await?;
    Ok(axum::Json(MessageList::new(&messages, query.include == Some(Include::Siblings))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseBranch {
    /// A message of the conversation: the branch through it becomes the active one, continuing down its
    /// most recent messages to a leaf.
    message_id: uuid::Uuid,
}

/// Switches the conversation to another branch (another version of a message) and returns that branch,
/// each message with its versions' ids.
#[utoipa::path(
    post, path = "/sessions/{id}/active-leaf", operation_id = "choose_branch",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The conversation's id.")),
    request_body = ChooseBranch,
    responses((status = 200, description = "The conversation's new active branch.", body = MessageList)),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn choose_branch(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Json(body): Json<ChooseBranch>,
) -> Result<axum::Json<MessageList>, ApiError> {
    context.require_conversations()?;
    let branch = conversations::switch_branch(&state.db, &context, SessionId(id), MessageId(body.message_id)).await?;
    Ok(axum::Json(MessageList::new(&branch, true)))
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
    let request = TurnRequest::parse(body.content, body.model)?.in_collections(body.collections);
    Box::pin(start_and_answer(&state, &context, SessionId(id), request, slot, &headers)).await
}

/// Starts the turn (once per `Idempotency-Key`) and answers it as JSON or as its event stream (`slot`).
async fn start_and_answer(
    state: &AppState,
    context: &crate::auth::context::TenantContext,
    session_id: SessionId,
    request: TurnRequest,
    slot: Option<streams::StreamSlot>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let key = extract::idempotency_key(headers)?.as_deref().map(IdempotencyKey::parse).transpose()?;
    let admission =
        rate_limits::admit(state, context, &Demand { prompt: &[&request.content], ..Demand::default() }).await?;
    let request = request.with_rate_reservation(admission.reservation);
    let started = Box::pin(state.engine.start_turn_once(context, session_id, request, key.as_ref())).await?;
    let answer = state.engine.answer(context, started.run.id, streams::delivery(slot.as_ref())).await?;
    answer::respond(answer, slot, |outcome| TurnAnswer::new(outcome, &started.user_message))
}

/// Options of a regenerated answer; `{}` for none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    /// A model other than the tenant's default.
    #[schema(min_length = 1, max_length = 200)]
    model: Option<String>,
    /// Search only these collections (by name) for this answer.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
}

/// Answers an answer's question again: the new answer is a sibling of this one (another version of it)
/// and the conversation's active branch moves to it. Answered like posting a message: JSON, or (with
/// `Accept: text/event-stream`) the run's events; `user_message` is the question answered again.
#[utoipa::path(
    post, path = "/messages/{id}/regenerate", operation_id = "regenerate_answer",
    tag = "chat",
    params(
        ("id" = uuid::Uuid, Path, description = "The assistant message (the answer) to regenerate."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200,
            description = "Makes a retry safe: a second request with the key answers the first one's run."),
    ),
    request_body = Regenerate,
    responses(
        (status = 200, description = "The new answer, as JSON or as the run's events (see `post_message`).",
            content((TurnAnswer = "application/json"), (RunEvent = "text/event-stream"))),
        (status = 202, description = "The run waits for a person to approve a tool call.", body = TurnAnswer),
    ),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn regenerate(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    open_streams: OpenStreams,
    headers: HeaderMap,
    Json(body): Json<Regenerate>,
) -> Result<Response, ApiError> {
    context.require_conversations()?;
    let slot = open_streams.reserve_if(sse::wants_event_stream(&headers), &context)?;
    let question = conversations::branch_point(&state.db, &context, MessageId(id), Role::Assistant).await?;
    let request = TurnRequest::parse(question.content, body.model)?
        .in_collections(body.collections)
        .on_branch(Branch::Regenerate(question.id));
    Box::pin(start_and_answer(&state, &context, question.session_id, request, slot, &headers)).await
}

/// Edits a user's message: a new message with `content` beside it (the same parent), on a branch of its
/// own that becomes the active one, answered like a posted message. The earlier version and its branch
/// stay.
#[utoipa::path(
    post, path = "/messages/{id}/edit", operation_id = "edit_message",
    tag = "chat",
    params(
        ("id" = uuid::Uuid, Path, description = "The user's message to edit."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200,
            description = "Makes a retry safe: a second request with the key answers the first one's run."),
    ),
    request_body = PostMessage,
    responses(
        (status = 200, description = "The answer to the edited message, as JSON or as the run's events (see \
            `post_message`).", content((TurnAnswer = "application/json"), (RunEvent = "text/event-stream"))),
        (status = 202, description = "The run waits for a person to approve a tool call.", body = TurnAnswer),
    ),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn edit(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    open_streams: OpenStreams,
    headers: HeaderMap,
    Json(body): Json<PostMessage>,
) -> Result<Response, ApiError> {
    context.require_conversations()?;
    let slot = open_streams.reserve_if(sse::wants_event_stream(&headers), &context)?;
    let request = TurnRequest::parse(body.content, body.model)?.in_collections(body.collections);
    let edited = conversations::branch_point(&state.db, &context, MessageId(id), Role::User).await?;
    let request = request.on_branch(Branch::Edit(edited.id));
    Box::pin(start_and_answer(&state, &context, edited.session_id, request, slot, &headers)).await
}
