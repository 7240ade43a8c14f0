//! `/api/v1/sessions` (chat): conversations, their messages, and posting a message (a turn), streamed
//! as SSE when the client accepts `text/event-stream`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    session_type: Option<SessionType>,
    workspace_id: Option<uuid::Uuid>,
    title: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateSession>,
) -> Result<(StatusCode, axum::Json<SessionView>), ApiError> {
    context.require_conversations()?;
    let new_session = NewSession::parse(body.session_type, body.workspace_id, body.title)?;
    let session = conversations::create(&state.db, &context, &new_session).await?;
    Ok((StatusCode::CREATED, axum::Json(SessionView::from(&session))))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    session_type: Option<SessionType>,
    workspace_id: Option<uuid::Uuid>,
    archived: Option<bool>,
    limit: Option<i64>,
    before: Option<uuid::Uuid>,
}

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

pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<SessionView>, ApiError> {
    context.require_conversations()?;
    Ok(axum::Json(SessionView::from(&conversations::get(&state.db, &context, SessionId(id)).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    title: Option<String>,
    archived: Option<bool>,
}

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

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require_conversations()?;
    conversations::delete(&state.db, &context, SessionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn messages(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<MessageList>, ApiError> {
    context.require_conversations()?;
    let messages = conversations::messages(&state.db, &context, SessionId(id)).await?;
    Ok(axum::Json(MessageList::new(&messages)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    content: String,
    model: Option<String>,
}

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
    let request = TurnRequest::parse(body.content, body.model)?;
    let admission =
        rate_limits::admit(&state, &context, &Demand { prompt: &[&request.content], ..Demand::default() }).await?;
    let request = request.with_rate_reservation(admission.reservation);
    let started = state.engine.start_turn_once(&context, SessionId(id), request, key.as_ref()).await?;
    let answer = state.engine.answer(&context, started.run.id, streams::delivery(slot.as_ref())).await?;
    answer::respond(answer, slot, |outcome| TurnAnswer::new(outcome, &started.user_message))
}
