//! `POST /api/v1/integration/chat` (chat): one message from an external system, answered as JSON or, when
//! asked, as the run's event stream. `Idempotency-Key` makes retries safe.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::answer;
use super::error::ApiError;
use super::extract::{self, Json, Tenant};
use super::rate_limits;
use super::sse;
use super::streams::{self, OpenStreams};
use super::views::integration::IntegrationAnswer;
use crate::auth::context::Scope;
use crate::ids::SessionId;
use crate::integration::{self, IntegrationRequest};
use crate::rate_limits::Demand;
use crate::runs::events::RunEvent;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// The user's message.
    #[schema(min_length = 1, max_length = 100_000)]
    message: String,
    /// The conversation to continue; without it, the `external_user_id`'s conversation, else a new one.
    #[schema(value_type = Option<uuid::Uuid>)]
    session_id: Option<SessionId>,
    /// The external system's id for its user, whose conversation is kept for it.
    #[schema(min_length = 1, max_length = 200)]
    external_user_id: Option<String>,
    /// Answer as the run's event stream (as `Accept: text/event-stream` does).
    #[serde(default)]
    stream: bool,
    /// Kept with the posted message (a JSON object of at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Search only these collections (by name), among those the key may search. A conversation this
    /// request starts keeps them for every later message; in an existing one they narrow this answer.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
}

/// Sends one message from an external system and answers it, as JSON or as its event stream.
///
/// The stream when asked for (`stream: true`, or `Accept: text/event-stream`); else JSON once the run
/// ends, or pauses for an approval (202).
#[utoipa::path(
    post, path = "/integration/chat", operation_id = "integration_chat",
    tag = "integration",
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200,
            description = "Makes a retry safe: a second request with the key answers the first one's run \
                (`replayed: true`)."),
    ),
    request_body = ChatBody,
    responses(
        (status = 200, description = "The answer. As JSON: the run ended (a failed run answers its error \
            instead). As `text/event-stream` (when `stream` is true or the request's `Accept` names it): the \
            run's events as they happen, each frame with `id` (the event's `seq`), `event` (its `type`) and \
            `data` (the event as JSON, the schema here); the stream ends with the run, or when it pauses for \
            an approval.",
            content((IntegrationAnswer = "application/json"), (RunEvent = "text/event-stream"))),
        (status = 202, description = "The run waits for a person to approve a tool call (`status` is \
            `awaiting_approval`); decide on `/tool-calls/{id}/approve` or `/deny`, then follow \
            `/runs/{id}/events`.", body = IntegrationAnswer),
    ),
    security(("tenant_key" = ["chat"])),
)]
pub async fn chat(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    open_streams: OpenStreams,
    headers: HeaderMap,
    Json(body): Json<ChatBody>,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    let slot = open_streams.reserve_if(body.stream || sse::wants_event_stream(&headers), &context)?;
    let key = extract::idempotency_key(&headers)?;
    let mut request =
        IntegrationRequest::parse(body.message, body.session_id, body.external_user_id, body.metadata, key.as_deref())?;
    let end_user = request.external_user_id.as_deref();
    let demand = Demand { prompt: &[&request.turn.content], max_output_tokens: None, end_user };
    let admission = rate_limits::admit(&state, &context, &demand).await?;
    request.turn.rate_reservation = Some(admission.reservation);
    request.turn.collections = body.collections;
    let accepted = Box::pin(integration::start(&state.db, &state.engine, &context, request)).await?;
    let answer = state.engine.answer(&context, accepted.run_id, streams::delivery(slot.as_ref())).await?;
    answer::respond(answer, slot, |outcome| IntegrationAnswer::new(&accepted, outcome))
}
