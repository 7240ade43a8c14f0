//! A response streamed: the run's events translated into the Responses API's typed events as the client
//! reads them, numbered from 0. A live answer and one replayed from the run's event log go through the
//! same translation, so a `sequence_number` names the same event in both and `starting_after` can resume
//! either.

use std::convert::Infallible;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;

use super::super::reply::UsageCounts;
use super::reply::{self, FunctionCall, Head, Outcome, StreamEvent};
use super::wire::{Part, StoredRequest};
use crate::auth::context::TenantContext;
use crate::conversations::Message;
use crate::engine::{Ended, EventStream, RunFailure};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::sse;
use crate::http::streams::StreamSlot;
use crate::ids::{MessageId, RunId};
use crate::providers::FinishReason;
use crate::runs::events::EventKind;

/// What a stream's events share.
pub struct Opened {
    pub state: AppState,
    pub context: TenantContext,
    pub head: Head,
    pub request: Arc<StoredRequest>,
    pub run_id: RunId,
    /// The run's recorded end.
    pub ended: Ended,
}

/// Streams a run just started. Until its first text the answer is still an ordinary HTTP response, so a
/// run that fails before answering gets OpenAI's error with its status (a run that only calls functions
/// streams from its end).
pub async fn live(opened: Opened, mut events: EventStream, slot: StreamSlot) -> Result<Response, ApiError> {
    let mut early = Vec::new();
    while let Some(event) = events.next().await {
        match event.kind {
            EventKind::RunFailed { code, message, .. } => {
                return Err(RunFailure { run_id: opened.run_id, code, message }.into());
            }
            EventKind::RunAwaitingApproval { .. } => return Err(super::awaiting_approval(opened.run_id)),
            kind @ EventKind::MessageDelta { .. } => {
                early.push(kind);
                break;
            }
            kind if kind.ends_stream() => {
                early.push(kind);
                break;
            }
            kind => early.push(kind),
        }
    }
    let rest = futures::stream::iter(early).chain(events.map(|event| event.kind)).boxed();
    Ok(respond(opened, rest, None, slot))
}

/// Streams a run's events from its first again (a `GET` with `stream=true`), sending only the events
/// numbered after `starting_after`.
pub fn replay(opened: Opened, events: EventStream, starting_after: Option<u64>, slot: StreamSlot) -> Response {
    respond(opened, events.map(|event| event.kind).boxed(), starting_after, slot)
}

fn respond(
    opened: Opened,
    rest: futures::stream::BoxStream<'static, EventKind>,
    starting_after: Option<u64>,
    slot: StreamSlot,
) -> Response {
    let translation = Translation {
        opened,
        rest,
        next_sequence_number: 0,
        starting_after,
        usage: None,
        text: None,
        started: false,
        finished: false,
    };
    // No task of its own: the events are made as the client reads them, and a client that leaves drops
    // the stream (the run goes on; it is the engine's).
    let frames = futures::stream::unfold(translation, Translation::next_events)
        .flat_map(futures::stream::iter)
        .map(Ok::<_, Infallible>);
    Sse::new(sse::holding(frames, slot)).keep_alive(KeepAlive::default()).into_response()
}

/// The rest of a run's events, translated as the client reads them.
struct Translation {
    opened: Opened,
    rest: futures::stream::BoxStream<'static, EventKind>,
    next_sequence_number: u64,
    starting_after: Option<u64>,
    usage: Option<UsageCounts>,
    /// The text so far, once the message item (always output 0) is open.
    text: Option<String>,
    started: bool,
    finished: bool,
}

impl Translation {
    /// The events of the next engine event that makes any; after the run's end, nothing.
    async fn next_events(mut self) -> Option<(Vec<Event>, Self)> {
        if !self.started {
            self.started = true;
            let response = self.response(&Outcome::InProgress, Vec::new(), None);
            let opening = vec![
                StreamEvent::Created { response: Box::new(response.clone()) },
                StreamEvent::InProgress { response: Box::new(response) },
            ];
            return Some((self.number(opening), self));
        }
        while !self.finished {
            let Some(kind) = self.rest.next().await else {
                // The run's events stopped before its end: said, so the answer never looks complete.
                self.finished = true;
                let error = StreamEvent::Error {
                    code: "stream_ended".to_owned(),
                    message: "the answer ended early".to_owned(),
                    param: None,
                };
                return Some((self.number(vec![error]), self));
            };
            let events = self.events_of(kind).await;
            let numbered = self.number(events);
            if !numbered.is_empty() {
                return Some((numbered, self));
            }
        }
        None
    }

    /// Numbers the events in order, keeping those after `starting_after`.
    fn number(&mut self, events: Vec<StreamEvent>) -> Vec<Event> {
        events
            .into_iter()
            .filter_map(|event| {
                let sequence_number = self.next_sequence_number;
                self.next_sequence_number += 1;
                self.starting_after.is_none_or(|after| sequence_number > after).then(|| event.sse(sequence_number))
            })
            .collect()
    }

    fn response(
        &self,
        outcome: &Outcome,
        output: Vec<super::wire::Item>,
        usage: Option<&UsageCounts>,
    ) -> reply::ResponseObject {
        reply::response(&self.opened.head, &self.opened.request, outcome, output, usage)
    }

    async fn events_of(&mut self, kind: EventKind) -> Vec<StreamEvent> {
        let head = &self.opened.head;
        match kind {
            EventKind::MessageDelta { text } => {
                let mut events = Vec::new();
                let so_far = match &mut self.text {
                    Some(so_far) => so_far,
                    None => {
                        events.push(StreamEvent::OutputItemAdded {
                            output_index: 0,
                            item: reply::opening_message_item(head),
                        });
                        events.push(StreamEvent::text_part_added(head, 0));
                        self.text.insert(String::new())
                    }
                };
                so_far.push_str(&text);
                events.push(StreamEvent::text_delta(head, 0, text));
                events
            }
            EventKind::Usage { input_tokens, output_tokens, cached_tokens, reasoning_tokens, .. } => {
                self.usage = Some(UsageCounts {
                    input: input_tokens,
                    output: output_tokens,
                    cached: cached_tokens,
                    reasoning: reasoning_tokens,
                });
                Vec::new()
            }
            EventKind::RunCompleted { message_id, finish_reason } => {
                self.finished = true;
                self.completion(message_id, finish_reason).await
            }
            EventKind::RunFailed { code, message, .. } => {
                self.finished = true;
                vec![self.ended(&Outcome::Failed { code, message })]
            }
            EventKind::RunCancelled { .. } => {
                // The Responses API has no event of its own for it: the response fails, its status saying why.
                self.finished = true;
                vec![self.ended(&Outcome::Cancelled)]
            }
            EventKind::RunAwaitingApproval { .. } => {
                self.finished = true;
                let error = super::awaiting_approval(self.opened.run_id);
                vec![self.ended(&Outcome::Failed { code: error.code.into_owned(), message: error.message })]
            }
            _ => Vec::new(),
        }
    }

    /// `response.failed`, with the text streamed so far as an incomplete message.
    fn ended(&self, outcome: &Outcome) -> StreamEvent {
        let output = self
            .text
            .as_ref()
            .map(|text| reply::message_item(&self.opened.head, text.clone(), false))
            .into_iter()
            .collect();
        StreamEvent::Failed { response: Box::new(self.response(outcome, output, self.usage.as_ref())) }
    }

    /// The end of the answer: the message closed (or an empty one, when there is nothing else), each
    /// function call as an item with its whole arguments in one delta, then `response.completed` (or
    /// `response.incomplete`, when the answer was cut at its limit) with the whole response.
    async fn completion(&mut self, message_id: MessageId, recorded: Option<FinishReason>) -> Vec<StreamEvent> {
        let Opened { state, context, head, run_id, ended, .. } = &self.opened;
        let answer = match ended.answer(&state.db, context, message_id).await {
            Ok(Some(answer)) => answer,
            Ok(None) => return vec![error_event(&ApiError::not_found("the run's answer is not recorded"))],
            Err(error) => return vec![error_event(&ApiError::from(error))],
        };
        let calls = FunctionCall::all_of(head, &answer);
        let mut events = Vec::new();
        let mut output = Vec::new();
        if self.text.is_some() || reply::has_message(&answer.content, &calls) {
            if self.text.is_none() {
                events.push(StreamEvent::OutputItemAdded { output_index: 0, item: reply::opening_message_item(head) });
                events.push(StreamEvent::text_part_added(head, 0));
            }
            events.extend(text_done(head, &answer));
            output.push(reply::message_item(head, answer.content.clone(), reply::is_complete(&answer)));
        }
        for (output_index, call) in (output.len()..).zip(&calls) {
            let item_id = call.item_id.clone();
            events.push(StreamEvent::OutputItemAdded { output_index, item: call.item("in_progress") });
            let delta = call.arguments.clone();
            events.push(StreamEvent::FunctionCallArgumentsDelta { item_id: item_id.clone(), output_index, delta });
            let arguments = call.arguments.clone();
            events.push(StreamEvent::FunctionCallArgumentsDone {
                item_id,
                output_index,
                name: call.name.clone(),
                arguments,
            });
            events.push(StreamEvent::OutputItemDone { output_index, item: call.item("completed") });
            output.push(call.item("completed"));
        }
        // The run as recorded (its end is written before its last event is published), for its finish time.
        let outcome = match state.engine.run(context, *run_id).await {
            Ok(run) if run.status.is_terminal() => Outcome::of_run(&run, Some(&answer)),
            _ => Outcome::Completed {
                finish: recorded.or(answer.finish_reason),
                completed_at: chrono::Utc::now().timestamp(),
            },
        };
        let usage = match self.usage {
            Some(usage) => usage,
            None => crate::usage::of_run(&state.db, context, *run_id)
                .await
                .map(|totals| UsageCounts::from(&totals))
                .unwrap_or_default(),
        };
        let response = Box::new(self.response(&outcome, output, Some(&usage)));
        events.push(if outcome.is_incomplete() {
            StreamEvent::Incomplete { response }
        } else {
            StreamEvent::Completed { response }
        });
        events
    }
}

/// The message's text closed: its text, its part and its item done.
fn text_done(head: &Head, answer: &Message) -> [StreamEvent; 3] {
    let text = answer.content.clone();
    [
        StreamEvent::OutputTextDone {
            item_id: head.message_id(),
            output_index: 0,
            content_index: 0,
            text: text.clone(),
            logprobs: Vec::new(),
        },
        StreamEvent::ContentPartDone {
            item_id: head.message_id(),
            output_index: 0,
            content_index: 0,
            part: Part::output_text(text.clone()),
        },
        StreamEvent::OutputItemDone {
            output_index: 0,
            item: reply::message_item(head, text, reply::is_complete(answer)),
        },
    ]
}

/// An error once the stream has started: OpenAI's `error` event, then the stream ends.
fn error_event(error: &ApiError) -> StreamEvent {
    let code = if error.status == StatusCode::INTERNAL_SERVER_ERROR {
        "server_error".to_owned()
    } else {
        error.code.to_string()
    };
    StreamEvent::Error { code, message: error.message.clone(), param: None }
}
