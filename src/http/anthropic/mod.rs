//! The Anthropic-compatible door: `POST /v1/messages` and `POST /v1/messages/count_tokens`, in Anthropic's
//! Messages formats exactly, over the same engine. `model` is one of the tenant's models, given the
//! client's own conversation and tools (pass-through, as on `/v1/chat/completions`); every call is
//! recorded as a turn of a new `integration` conversation. Keys come in `x-api-key`, as Anthropic's
//! clients send them, or as a bearer token.

mod errors;
mod reply;
mod wire;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;
use serde_json::json;
use utoipa::ToSchema;

pub use errors::{anthropic_errors, is_anthropic_path};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, KeyHeaderTenant};
use super::rate_limits;
use super::sse;
use super::streams::{self, OpenStreams, StreamSlot};
use crate::auth::context::{Scope, TenantContext};
use crate::background;
use crate::engine::{Answer, Ended, EventStream, GivenConversation, RunFailure};
use crate::ids::{MessageId, RunId};
use crate::integration::{self, whole::WholeConversation};
use crate::providers::FinishReason;
use crate::rate_limits::{Demand, Standings};
use crate::runs::events::EventKind;
use reply::{AnthropicEventStream, ErrorDetail, Message, Reply, StreamEvent, ToolUse, Usage};
use wire::{CountTokensRequest, MessagesRequest, Parsed};

/// How often an idle stream sends a `ping`.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// `POST /v1/messages`. Every answer to a request the rate limits admitted carries Anthropic's
/// `anthropic-ratelimit-*` headers (a refused one carries them already).
#[utoipa::path(
    post, path = "/messages", tag = "anthropic", operation_id = "create_message",
    summary = "Answers a conversation, in Anthropic's Messages format",
    description = "The conversation goes to the model named, as given (pass-through, with the client's tools), and \
                   is recorded as a turn of a new `integration` conversation. The key comes in `x-api-key`, as \
                   Anthropic's SDKs send it, or as a bearer token. `anthropic-version` is not checked; \
                   `anthropic-beta` is refused (400): this API offers no beta features. A run that fails before \
                   its first text is an error with its status, even when streamed; a run waiting for a person to \
                   approve a tool call is 409.",
    request_body = MessagesRequest,
    responses(
        (status = 200, description = "The assistant's message, or with `stream` true, its events.",
            content(
                (Message = "application/json"),
                (AnthropicEventStream = "text/event-stream"),
            )),
    ),
    security(("anthropic_key" = ["chat"]), ("tenant_key" = ["chat"])),
)]
pub async fn messages(
    state: State<AppState>,
    tenant: KeyHeaderTenant,
    open_streams: OpenStreams,
    headers: HeaderMap,
    body: Json<MessagesRequest>,
) -> Response {
    let mut standings = None;
    let mut response = create(state, tenant, open_streams, &headers, body, &mut standings).await.into_response();
    if let Some(standings) = standings {
        response.headers_mut().extend(rate_limits::anthropic_headers(&standings));
    }
    response
}

/// The message; `standings` receives the rate limits' standing once the request is admitted.
async fn create(
    State(state): State<AppState>,
    KeyHeaderTenant(context): KeyHeaderTenant,
    open_streams: OpenStreams,
    headers: &HeaderMap,
    Json(body): Json<MessagesRequest>,
    standings: &mut Option<Standings>,
) -> Result<Response, ApiError> {
    check_headers(headers)?;
    context.require(Scope::Chat)?;
    let model = body.model.clone();
    let Parsed { conversation, options, max_output_tokens, stream: streamed } = body.parse().map_err(invalid)?;
    let slot = open_streams.reserve_if(streamed, &context)?;
    let prompt = conversation.prompt_texts();
    let demand = Demand { prompt: &prompt, max_output_tokens: Some(max_output_tokens), end_user: None };
    let reservation = match rate_limits::admit_anthropic(&state, &context, &demand).await {
        Ok(admission) => {
            *standings = Some(admission.standings);
            admission.reservation
        }
        Err(refused) => return Ok(refused),
    };
    // Only a stream needs it (its `message_start` comes before the provider's count).
    let estimated_input_tokens =
        if streamed { u32::try_from(conversation.estimated_input_tokens()).unwrap_or(u32::MAX) } else { 0 };
    let given = GivenConversation {
        system: conversation.system,
        messages: conversation.messages,
        tools: conversation.tools,
        max_output_tokens: Some(max_output_tokens),
        options,
    };
    let whole = WholeConversation::PassThrough {
        model: model.clone(),
        question: conversation.question,
        given: Box::new(given),
    };
    let started = integration::whole::start(&state.engine, &context, whole, reservation, None).await?;
    let run_id = started.run.id;
    let reply = Reply { id: format!("msg_{}", run_id.0.simple()), model };
    match state.engine.answer(&context, run_id, streams::delivery(slot.as_ref())).await? {
        Answer::Stream(events, ended) => {
            let slot = streams::required(slot)?;
            let opened = Opened { reply, run_id, ended, estimated_input_tokens };
            stream(state, context, opened, events, slot).await
        }
        Answer::Failed(failure) => Err(run_failed(failure)),
        Answer::AwaitingApproval(outcome) => Err(awaiting_approval(outcome.run.id)),
        Answer::Finished(outcome) => {
            let message =
                outcome.message.ok_or_else(|| ApiError::conflict("run_cancelled", "the run was cancelled"))?;
            Ok(axum::Json(reply.message(&message, Usage::from(&outcome.totals))).into_response())
        }
    }
}

/// The prompt's tokens.
#[derive(ToSchema)]
#[schema(as = AnthropicTokenCount)]
#[allow(dead_code)] // A schema: the body is built with `json!`.
pub struct TokenCount {
    /// By Switchboard's own count: an estimate for any model's tokenizer.
    input_tokens: usize,
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}` by Switchboard's own count (tiktoken's
/// o200k_base, an estimate for any other model's tokenizer). It calls no model, so it is not rate
/// limited, and the model named is not looked up.
#[utoipa::path(
    post, path = "/messages/count_tokens", tag = "anthropic", operation_id = "count_message_tokens",
    summary = "Counts a conversation's tokens, in Anthropic's format",
    description = "By Switchboard's own count (tiktoken's o200k_base, the per-message overhead OpenAI documents, and \
                   the tools): an estimate for any other model's tokenizer. It calls no model, so it is not rate \
                   limited, and the model named is not looked up. `anthropic-beta` is refused (400).",
    request_body = CountTokensRequest,
    responses((status = 200, description = "The prompt's tokens.", body = TokenCount)),
    security(("anthropic_key" = ["chat"]), ("tenant_key" = ["chat"])),
)]
pub async fn count_tokens(
    KeyHeaderTenant(context): KeyHeaderTenant,
    headers: HeaderMap,
    Json(body): Json<CountTokensRequest>,
) -> Result<Response, ApiError> {
    check_headers(&headers)?;
    context.require(Scope::Chat)?;
    let conversation = body.parse().map_err(invalid)?;
    // A body of the largest size takes long enough to count to stall an async worker.
    let input_tokens = background::cpu_bound(move || conversation.estimated_input_tokens())
        .await
        .map_err(|error| ApiError::internal(&error))?;
    Ok(axum::Json(json!({ "input_tokens": input_tokens })).into_response())
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// `anthropic-version` is not checked: Anthropic's SDKs always send one (the current Python SDK a newer
/// date than 2023-06-01, whose formats this door speaks and which they all read), a hand-written client
/// may send none. Beta features are refused: this door offers none of them.
fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(beta) = headers.get("anthropic-beta") {
        let shown = String::from_utf8_lossy(beta.as_bytes());
        return Err(invalid(format!("anthropic-beta: {shown:?} is not supported; this API offers no beta features")));
    }
    Ok(())
}

/// A failed run as an error; an option the provider refused is named as this door names it.
fn run_failed(failure: RunFailure) -> ApiError {
    let mut error = ApiError::from(failure);
    if error.code == "unsupported_parameter" {
        error.message = wire::in_anthropic_terms(&error.message);
    }
    error
}

fn awaiting_approval(run_id: RunId) -> ApiError {
    let message = format!("run {run_id} waits for a person to approve a tool call; follow it on /api/v1/runs/{run_id}");
    ApiError::conflict("awaiting_approval", message)
}

/// An error once the stream has started: Anthropic's `error` event, then the stream ends.
fn error_event(error: &ApiError) -> Event {
    let (_, kind) = errors::status_and_type(error.status);
    StreamEvent::Error { error: ErrorDetail { kind, message: error.message.clone() } }.sse()
}

/// What a stream's events share.
struct Opened {
    reply: Reply,
    run_id: RunId,
    ended: Ended,
    estimated_input_tokens: u32,
}

/// Streams the run as Anthropic's events. Until the first text arrives the answer is still an ordinary
/// HTTP response, so a run that fails before answering gets Anthropic's error with its status.
async fn stream(
    state: AppState,
    context: TenantContext,
    opened: Opened,
    mut events: EventStream,
    slot: StreamSlot,
) -> Result<Response, ApiError> {
    let Opened { reply, run_id, ended, estimated_input_tokens } = opened;
    let mut first_text = None;
    let mut early = Vec::new();
    while let Some(event) = events.next().await {
        match event.kind {
            EventKind::MessageDelta { text } => {
                first_text = Some(text);
                break;
            }
            EventKind::RunFailed { code, message, .. } => return Err(run_failed(RunFailure { run_id, code, message })),
            EventKind::RunAwaitingApproval { .. } => return Err(awaiting_approval(run_id)),
            kind if kind.ends_stream() => {
                early.push(kind);
                break;
            }
            kind => early.push(kind),
        }
    }
    let mut head = vec![reply.start(estimated_input_tokens).sse()];
    let text_block_open = first_text.is_some();
    if let Some(text) = first_text {
        head.push(StreamEvent::text_start(0).sse());
        head.push(StreamEvent::text(0, text).sse());
    }
    let rest = futures::stream::iter(early).chain(events.map(|event| event.kind)).boxed();
    let translation =
        Translation { state, context, reply, run_id, ended, rest, usage: None, text_block_open, finished: false };
    // No task of its own: the events are made as the client reads them, and a client that leaves drops
    // the stream (the run goes on; it is the engine's).
    let frames = futures::stream::iter(head)
        .chain(futures::stream::unfold(translation, Translation::next_events).flat_map(futures::stream::iter))
        .map(Ok::<_, Infallible>);
    let keep_alive = KeepAlive::new().interval(PING_INTERVAL).event(reply::ping());
    Ok(Sse::new(sse::holding(frames, slot)).keep_alive(keep_alive).into_response())
}

/// The rest of a run's events, translated into Anthropic's as the client reads them.
struct Translation {
    state: AppState,
    context: TenantContext,
    reply: Reply,
    run_id: RunId,
    ended: Ended,
    rest: futures::stream::BoxStream<'static, EventKind>,
    usage: Option<Usage>,
    /// Whether the text block (always the first, index 0) was started.
    text_block_open: bool,
    finished: bool,
}

impl Translation {
    /// The events of the next engine event that makes any; nothing after the run's end.
    async fn next_events(mut self) -> Option<(Vec<Event>, Self)> {
        if self.finished {
            return None;
        }
        while let Some(kind) = self.rest.next().await {
            let events = self.events_of(kind).await;
            if !events.is_empty() {
                return Some((events, self));
            }
        }
        // The run's events stopped before its end: said, so the answer never looks complete.
        self.finished = true;
        let error = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "stream_ended", "the answer ended early");
        Some((vec![error_event(&error)], self))
    }

    async fn events_of(&mut self, kind: EventKind) -> Vec<Event> {
        match kind {
            EventKind::MessageDelta { text } => {
                let mut events = Vec::new();
                if !self.text_block_open {
                    self.text_block_open = true;
                    events.push(StreamEvent::text_start(0).sse());
                }
                events.push(StreamEvent::text(0, text).sse());
                events
            }
            EventKind::Usage { input_tokens, output_tokens, cached_tokens, .. } => {
                self.usage = Some(Usage::of(input_tokens, output_tokens, cached_tokens));
                Vec::new()
            }
            EventKind::RunCompleted { message_id, finish_reason } => {
                self.finished = true;
                self.completion(message_id, finish_reason).await
            }
            EventKind::RunFailed { code, message, .. } => {
                self.finished = true;
                vec![error_event(&run_failed(RunFailure { run_id: self.run_id, code, message }))]
            }
            EventKind::RunCancelled { .. } => {
                // Anthropic has no stop reason for it: an answer cut short must not read as finished.
                self.finished = true;
                vec![error_event(&ApiError::conflict("run_cancelled", "the run was cancelled"))]
            }
            EventKind::RunAwaitingApproval { .. } => {
                self.finished = true;
                vec![error_event(&awaiting_approval(self.run_id))]
            }
            _ => Vec::new(),
        }
    }

    /// The end of the message: the text block closed (or an empty one, when there is nothing else), one
    /// `tool_use` block per call the model made, each with its whole input in one `input_json_delta`,
    /// then `message_delta` with the stop reason and usage, and `message_stop`.
    async fn completion(&mut self, message_id: MessageId, recorded: Option<FinishReason>) -> Vec<Event> {
        let message = match self.ended.answer(&self.state.db, &self.context, message_id).await {
            Ok(Some(message)) => message,
            Ok(None) => return vec![error_event(&ApiError::not_found("the run's answer is not recorded"))],
            Err(error) => return vec![error_event(&ApiError::from(error))],
        };
        let calls = ToolUse::all_of(&message, &self.reply);
        let mut events = Vec::new();
        if !self.text_block_open && calls.is_empty() {
            events.push(StreamEvent::text_start(0).sse());
            self.text_block_open = true;
        }
        if self.text_block_open {
            events.push(StreamEvent::ContentBlockStop { index: 0 }.sse());
        }
        for (index, call) in (usize::from(self.text_block_open)..).zip(&calls) {
            events.push(StreamEvent::ContentBlockStart { index, content_block: call.opening_block() }.sse());
            events.push(StreamEvent::input_json(index, call.input_text()).sse());
            events.push(StreamEvent::ContentBlockStop { index }.sse());
        }
        // No usage event: the run used no tokens.
        let usage = self.usage.unwrap_or_else(|| Usage::of(0, 0, 0));
        let stop_reason = reply::stop_reason(recorded.or(message.finish_reason), &calls);
        events.push(StreamEvent::finish(stop_reason, usage).sse());
        events.push(StreamEvent::MessageStop.sse());
        events
    }
}
