//! The OpenAI-compatible door: `POST /v1/chat/completions` and `GET /v1/models`, in OpenAI's formats
//! exactly, over the same engine. A model name is one of the tenant's models, given the caller's own
//! conversation and tools (pass-through); `switchboard-assistant` is Switchboard's assistant (retrieval,
//! the tenant's tools). Every call is recorded as a turn of a new `integration` conversation.

mod errors;
mod wire;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};

pub use errors::openai_errors;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use crate::api_keys::Scope;
use crate::auth::TenantContext;
use crate::conversations::{self, Message, NewSession, SessionType};
use crate::engine::events::EventKind;
use crate::engine::{EventStream, GivenConversation, TurnMode, TurnRequest};
use crate::ids::RunId;
use crate::runs::RunStatus;
use wire::{ASSISTANT_MODEL, CompletionRequest};

pub async fn models(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Chat)?;
    let config = crate::tenants::config(&state.db, &context).await?;
    let mut names = vec![ASSISTANT_MODEL.to_owned(), config.default_model.clone()];
    names.extend(config.fallback_model.clone());
    names.dedup();
    let created = config.updated_at.timestamp();
    let data: Vec<Value> = names
        .iter()
        .map(|name| json!({ "id": name, "object": "model", "created": created, "owned_by": config.default_provider }))
        .collect();
    Ok(axum::Json(json!({ "object": "list", "data": data })))
}

pub async fn completions(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CompletionRequest>,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    let parsed = body.parse().map_err(|message| ApiError::bad_request("invalid_request", message))?;
    let assistant = body.model == ASSISTANT_MODEL;
    if assistant && !parsed.tools.is_empty() {
        let message = "tools are not accepted with switchboard-assistant, which uses the tenant's own tools";
        return Err(ApiError::bad_request("invalid_request", message));
    }
    let session = NewSession::parse(Some(SessionType::Integration), None, None)?;
    let session = conversations::create(&state.db, &context, &session).await?;
    let request = if assistant {
        conversations::seed(&state.db, &context, session.id, &parsed.history).await?;
        TurnRequest::parse(parsed.question, None)?
    } else {
        let given = GivenConversation {
            system: parsed.system,
            messages: parsed.messages,
            tools: parsed.tools,
            max_output_tokens: body.max_output_tokens(),
        };
        TurnRequest::parse(parsed.question, Some(body.model.clone()))?.with_mode(TurnMode::PassThrough(Arc::new(given)))
    };
    let started = state.engine.start_turn(&context, session.id, request).await?;
    let reply = Reply {
        id: format!("chatcmpl-{}", started.run.id.0.simple()),
        created: started.run.created_at.timestamp(),
        model: body.model.clone(),
    };
    if body.stream {
        let events = state.engine.follow(&context, started.run.id, 0).await?;
        return stream(state, context, reply, started.run.id, events, body.include_usage()).await;
    }
    let outcome = state.engine.wait(&context, started.run.id).await?;
    if let Some(code) = outcome.run.error_code.as_deref() {
        let message = outcome.run.error_message.as_deref().unwrap_or_default();
        return Err(ApiError::from_failed_run(code, message, outcome.run.id));
    }
    if outcome.run.status == RunStatus::AwaitingApproval {
        return Err(awaiting_approval(outcome.run.id));
    }
    let message = outcome.message.ok_or_else(|| ApiError::conflict("run_cancelled", "the run was cancelled"))?;
    Ok(axum::Json(reply.completion(&message)).into_response())
}

fn awaiting_approval(run_id: RunId) -> ApiError {
    let message = format!("run {run_id} waits for a person to approve a tool call; follow it on /api/v1/runs/{run_id}");
    ApiError::conflict("awaiting_approval", message)
}

/// What every object of one answer shares.
struct Reply {
    id: String,
    created: i64,
    model: String,
}

impl Reply {
    fn completion(&self, message: &Message) -> Value {
        let calls = stored_tool_calls(message);
        let content =
            if message.content.is_empty() && !calls.is_empty() { Value::Null } else { json!(message.content) };
        let mut said = json!({ "role": "assistant", "content": content, "refusal": null });
        if !calls.is_empty() {
            said["tool_calls"] = Value::Array(
                calls.iter().enumerate().map(|(i, call)| without_index(wire::tool_call(i, call))).collect(),
            );
        }
        let input = message.input_tokens.and_then(|tokens| u32::try_from(tokens).ok()).unwrap_or(0);
        let output = message.output_tokens.and_then(|tokens| u32::try_from(tokens).ok()).unwrap_or(0);
        json!({
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "system_fingerprint": null,
            "choices": [{ "index": 0, "message": said, "logprobs": null, "finish_reason": finish_reason(&calls) }],
            "usage": wire::usage(input, output),
        })
    }

    fn chunk(&self, delta: &Value, finish_reason: Option<&str>, include_usage: bool) -> Event {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": null,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        Event::default().data(chunk.to_string())
    }

    fn usage_chunk(&self, input: u32, output: u32) -> Event {
        let chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": null, "choices": [], "usage": wire::usage(input, output),
        });
        Event::default().data(chunk.to_string())
    }
}

/// Non-streaming tool calls carry no `index`.
fn without_index(mut call: Value) -> Value {
    if let Some(object) = call.as_object_mut() {
        object.remove("index");
    }
    call
}

fn stored_tool_calls(message: &Message) -> Vec<Value> {
    message.tool_calls.0.as_array().cloned().unwrap_or_default()
}

fn finish_reason(calls: &[Value]) -> &'static str {
    if calls.is_empty() { "stop" } else { "tool_calls" }
}

/// Streams the run as `chat.completion.chunk`s. Until the first text arrives the answer is still an
/// ordinary HTTP response, so a run that fails before answering gets OpenAI's error with its status.
async fn stream(
    state: AppState,
    context: TenantContext,
    reply: Reply,
    run_id: RunId,
    mut events: EventStream,
    include_usage: bool,
) -> Result<Response, ApiError> {
    let mut first_text = None;
    let mut early = Vec::new();
    while let Some(event) = events.next().await {
        match event.kind {
            EventKind::MessageDelta { text } => {
                first_text = Some(text);
                break;
            }
            EventKind::RunFailed { code, message, .. } => {
                return Err(ApiError::from_failed_run(&code, &message, run_id));
            }
            EventKind::RunAwaitingApproval { .. } => return Err(awaiting_approval(run_id)),
            kind if kind.ends_stream() => {
                early.push(kind);
                break;
            }
            kind => early.push(kind),
        }
    }
    let (sender, receiver) = futures::channel::mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let send = |event: Event| {
            let mut sender = sender.clone();
            async move { sender.send(Ok(event)).await.is_ok() }
        };
        if !send(reply.chunk(&json!({ "role": "assistant", "content": "" }), None, include_usage)).await {
            return;
        }
        if let Some(text) = first_text
            && !send(reply.chunk(&json!({ "content": text }), None, include_usage)).await
        {
            return;
        }
        let mut usage = None;
        let mut rest = futures::stream::iter(early).chain(events.map(|event| event.kind));
        while let Some(kind) = rest.next().await {
            let chunk = match kind {
                EventKind::MessageDelta { text } => reply.chunk(&json!({ "content": text }), None, include_usage),
                EventKind::Usage { input_tokens, output_tokens, .. } => {
                    usage = Some((input_tokens, output_tokens));
                    continue;
                }
                EventKind::RunCompleted { message_id } => {
                    let message = conversations::message(&state.db, &context, message_id).await.ok().flatten();
                    let calls = message.as_ref().map(stored_tool_calls).unwrap_or_default();
                    if !calls.is_empty() {
                        let calls: Vec<Value> =
                            calls.iter().enumerate().map(|(i, call)| wire::tool_call(i, call)).collect();
                        if !send(reply.chunk(&json!({ "tool_calls": calls }), None, include_usage)).await {
                            return;
                        }
                    }
                    reply.chunk(&json!({}), Some(finish_reason(&calls)), include_usage)
                }
                EventKind::RunFailed { code, message, .. } => {
                    // Mid-answer, the status is sent: OpenAI reports such failures as an error event.
                    let error =
                        json!({ "error": { "message": message, "type": "server_error", "param": null, "code": code } });
                    Event::default().data(error.to_string())
                }
                EventKind::RunCancelled { .. } => reply.chunk(&json!({}), Some("stop"), include_usage),
                _ => continue,
            };
            if !send(chunk).await {
                return;
            }
        }
        if include_usage
            && let Some((input, output)) = usage
            && !send(reply.usage_chunk(input, output)).await
        {
            return;
        }
        send(Event::default().data("[DONE]")).await;
    });
    Ok(Sse::new(receiver).keep_alive(KeepAlive::default()).into_response())
}
