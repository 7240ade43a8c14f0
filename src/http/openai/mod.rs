//! The OpenAI-compatible door: `POST /v1/chat/completions` and `GET /v1/models`, in OpenAI's formats
//! exactly, over the same engine. A model name is one of the tenant's models, given the caller's own
//! conversation and tools (pass-through); `switchboard-assistant` is Switchboard's assistant (retrieval,
//! the tenant's tools). Every call is recorded as a turn of a new `integration` conversation.

mod embeddings;
mod errors;
mod models;
mod reply;
mod responses;
pub(super) mod schema;
mod wire;

use std::convert::Infallible;

use async_openai::types::chat::FinishReason as WireFinishReason;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;
use serde_json::json;

pub use embeddings::{__path_embeddings, embeddings};
pub use errors::no_route;
pub use errors::openai_errors;
pub use models::{__path_list_models, __path_retrieve_model, list_models, retrieve_model};
pub use responses::{
    __path_cancel as __path_cancel_response, __path_create as __path_create_response,
    __path_delete as __path_delete_response, __path_input_items as __path_response_input_items,
    __path_retrieve as __path_retrieve_response, cancel as cancel_response, create as create_response,
    delete as delete_response, input_items as response_input_items, retrieve as retrieve_response,
};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use super::rate_limits;
use super::sse;
use super::streams::{self, OpenStreams, StreamSlot};
use crate::auth::context::Scope;
use crate::auth::context::TenantContext;
use crate::engine::{Answer, Ended, EventStream, GivenConversation, RunFailure};
use crate::ids::RunId;
use crate::integration::{self, whole::WholeConversation};
use crate::rate_limits::{Demand, Standings};
use crate::runs::events::EventKind;
use reply::{Reply, StoredCall, UsageCounts};
use wire::{ASSISTANT_MODEL, CompletionRequest};

/// `POST /v1/chat/completions`. Every answer to a request the rate limits admitted carries OpenAI's
/// `x-ratelimit-*` headers (a refused one carries them already).
#[utoipa::path(
    post, path = "/chat/completions", tag = "openai", operation_id = "create_chat_completion",
    summary = "Answers a conversation, in OpenAI's Chat Completions format",
    description = "The conversation goes to the model named, as given (pass-through, with the caller's tools), or \
                   to `switchboard-assistant`, which answers from the tenant's documents with the tenant's tools. \
                   Each call is recorded as a turn of a new `integration` conversation. A run that fails before \
                   its first text is an error with its status, even when streamed; a run waiting for a person to \
                   approve a tool call is 409 `awaiting_approval`.",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The answer: a `chat.completion`, or with `stream` true, server-sent \
                                      `chat.completion.chunk`s.",
            content(
                (reply::schemas::ChatCompletion = "application/json"),
                (reply::schemas::ChatCompletionStream = "text/event-stream"),
            )),
    ),
    security(("tenant_key" = ["chat"])),
)]
pub async fn completions(
    state: State<AppState>,
    tenant: Tenant,
    open_streams: OpenStreams,
    body: Json<CompletionRequest>,
) -> Response {
    let mut standings = None;
    let mut response = complete(state, tenant, open_streams, body, &mut standings).await.into_response();
    if let Some(standings) = standings {
        response.headers_mut().extend(rate_limits::openai_headers(&standings));
    }
    response
}

/// The completion; `standings` receives the rate limits' standing once the request is admitted.
async fn complete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    open_streams: OpenStreams,
    Json(body): Json<CompletionRequest>,
    standings: &mut Option<Standings>,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    let parsed = body.parse().map_err(|message| ApiError::bad_request("invalid_request", message))?;
    let assistant = body.model == ASSISTANT_MODEL;
    if let Some(option) = parsed.options.first_set().filter(|_| assistant) {
        let message =
            format!("`{option}` is not accepted with switchboard-assistant, which answers as the tenant set it up");
        return Err(ApiError::bad_request("invalid_request", message));
    }
    if assistant && !parsed.tools.is_empty() {
        let message = "tools are not accepted with switchboard-assistant, which uses the tenant's own tools";
        return Err(ApiError::bad_request("invalid_request", message));
    }
    let conversation = if assistant {
        WholeConversation::Assistant { history: parsed.history, question: parsed.question }
    } else {
        let given = GivenConversation {
            system: parsed.system,
            messages: parsed.messages,
            tools: parsed.tools,
            max_output_tokens: body.max_output_tokens(),
            options: parsed.options,
        };
        WholeConversation::PassThrough { model: body.model.clone(), question: parsed.question, given: Box::new(given) }
    };
    let slot = open_streams.reserve_if(body.stream, &context)?;
    let prompt = prompt_of(&conversation);
    let demand = Demand { prompt: &prompt, max_output_tokens: body.max_output_tokens(), end_user: None };
    let reservation = match rate_limits::admit_openai(&state, &context, &demand).await {
        Ok(admission) => {
            *standings = Some(admission.standings);
            admission.reservation
        }
        Err(refused) => return Ok(refused),
    };
    let started = integration::whole::start(&state.engine, &context, conversation, reservation, None).await?;
    let reply = Reply {
        id: format!("chatcmpl-{}", started.run.id.0.simple()),
        created: u32::try_from(started.run.created_at.timestamp()).unwrap_or(u32::MAX),
        model: body.model.clone(),
    };
    match state.engine.answer(&context, started.run.id, streams::delivery(slot.as_ref())).await? {
        Answer::Stream(events, ended) => {
            let slot = streams::required(slot)?;
            let opened = Opened { reply, run_id: started.run.id, ended, include_usage: body.include_usage() };
            stream(state, context, opened, events, slot).await
        }
        Answer::Failed(failure) => Err(failure.into()),
        Answer::AwaitingApproval(outcome) => Err(awaiting_approval(outcome.run.id)),
        Answer::Finished(outcome) => {
            let message =
                outcome.message.ok_or_else(|| ApiError::conflict("run_cancelled", "the run was cancelled"))?;
            Ok(axum::Json(reply.completion(&message, &UsageCounts::from(&outcome.totals))).into_response())
        }
    }
}

/// The prompt as the caller sent it, for the rate limits' token estimate.
fn prompt_of(conversation: &WholeConversation) -> Vec<&str> {
    match conversation {
        WholeConversation::Assistant { history, question } => {
            history.iter().map(|(_, text)| text.as_str()).chain([question.as_str()]).collect()
        }
        WholeConversation::PassThrough { given, .. } => [given.system.as_str()]
            .into_iter()
            .filter(|system| !system.is_empty())
            .chain(given.messages.iter().map(|message| message.content.as_str()))
            .collect(),
    }
}

fn awaiting_approval(run_id: RunId) -> ApiError {
    let message = format!("run {run_id} waits for a person to approve a tool call; follow it on /api/v1/runs/{run_id}");
    ApiError::conflict("awaiting_approval", message)
}

/// A chunk as an SSE event: its JSON is the whole `data`.
fn event(chunk: &impl serde::Serialize) -> Event {
    Event::default().json_data(chunk).unwrap_or_else(|_| Event::default().comment("unserialisable chunk"))
}

/// A streamed completion as it opens: its reply's head, its run and the run's recorded end.
struct Opened {
    reply: Reply,
    run_id: RunId,
    ended: Ended,
    include_usage: bool,
}

/// Streams the run as `chat.completion.chunk`s. Until the first text arrives the answer is still an
/// ordinary HTTP response, so a run that fails before answering gets OpenAI's error with its status.
async fn stream(
    state: AppState,
    context: TenantContext,
    opened: Opened,
    mut events: EventStream,
    slot: StreamSlot,
) -> Result<Response, ApiError> {
    let Opened { reply, run_id, ended, include_usage } = opened;
    let mut first_text = None;
    let mut early = Vec::new();
    while let Some(event) = events.next().await {
        match event.kind {
            EventKind::MessageDelta { text } => {
                first_text = Some(text);
                break;
            }
            EventKind::RunFailed { code, message, .. } => return Err(RunFailure { run_id, code, message }.into()),
            EventKind::RunAwaitingApproval { .. } => return Err(awaiting_approval(run_id)),
            kind if kind.ends_stream() => {
                early.push(kind);
                break;
            }
            kind => early.push(kind),
        }
    }
    let mut head = vec![event(&reply.opening())];
    if let Some(text) = first_text {
        head.push(event(&reply.text(text)));
    }
    let rest = futures::stream::iter(early).chain(events.map(|event| event.kind)).boxed();
    let translation = Translation { state, context, reply, ended, include_usage, rest, usage: None, finished: false };
    // No task of its own: the chunks are made as the client reads them, and a client that leaves drops
    // the stream (the run goes on; it is the engine's).
    let chunks = futures::stream::iter(head)
        .chain(futures::stream::unfold(translation, Translation::next_chunks).flat_map(futures::stream::iter))
        .map(Ok::<_, Infallible>);
    Ok(Sse::new(sse::holding(chunks, slot)).keep_alive(KeepAlive::default()).into_response())
}

/// The rest of a run's events, translated into `chat.completion.chunk`s as the client reads them.
struct Translation {
    state: AppState,
    context: TenantContext,
    reply: Reply,
    ended: Ended,
    include_usage: bool,
    rest: futures::stream::BoxStream<'static, EventKind>,
    usage: Option<UsageCounts>,
    finished: bool,
}

impl Translation {
    /// The chunks of the next event that makes any; after the last event, the usage chunk (when asked
    /// for) and `[DONE]`.
    async fn next_chunks(mut self) -> Option<(Vec<Event>, Self)> {
        if self.finished {
            return None;
        }
        while let Some(kind) = self.rest.next().await {
            let chunks = self.chunks_of(kind).await;
            if !chunks.is_empty() {
                return Some((chunks, self));
            }
        }
        self.finished = true;
        let mut last = Vec::new();
        if self.include_usage
            && let Some(counts) = self.usage
        {
            last.push(event(&self.reply.usage(&counts)));
        }
        last.push(Event::default().data("[DONE]"));
        Some((last, self))
    }

    async fn chunks_of(&mut self, kind: EventKind) -> Vec<Event> {
        let reply = &self.reply;
        match kind {
            EventKind::MessageDelta { text } => vec![event(&reply.text(text))],
            EventKind::Usage { input_tokens, output_tokens, cached_tokens, reasoning_tokens, .. } => {
                let counts = UsageCounts {
                    input: input_tokens,
                    output: output_tokens,
                    cached: cached_tokens,
                    reasoning: reasoning_tokens,
                };
                self.usage = Some(counts);
                Vec::new()
            }
            EventKind::RunCompleted { message_id, finish_reason: recorded } => {
                let message = self.ended.answer(&self.state.db, &self.context, message_id).await.ok().flatten();
                let calls = message.as_ref().map(StoredCall::all_of).unwrap_or_default();
                let mut chunks = Vec::new();
                if !calls.is_empty() {
                    chunks.push(event(&reply.tool_calls(&calls)));
                }
                chunks.push(event(&reply.finish(reply::finish_reason(recorded, &calls))));
                chunks
            }
            EventKind::RunFailed { code, message, .. } => {
                // Mid-answer, the status is sent: OpenAI reports such failures as an error event.
                let error =
                    json!({ "error": { "message": message, "type": "server_error", "param": null, "code": code } });
                vec![Event::default().data(error.to_string())]
            }
            EventKind::RunCancelled { .. } => vec![event(&reply.finish(WireFinishReason::Stop))],
            _ => Vec::new(),
        }
    }
}
