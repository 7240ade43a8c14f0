//! The engine's answer as OpenAI's Responses objects: the `response` (as made, polled and finished, one
//! shape), its output items, and the stream's typed events, each named by its `type` and numbered.

use axum::response::sse::Event;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use super::super::reply::UsageCounts;
use super::super::schema::{AlwaysNull, constant, json_data, reference, register, sse_event};
use super::wire::{Item, Part, ResponseTextFormat, ResponseToolChoice, StoredRequest};
use crate::conversations::{Message, MessageStatus};
use crate::providers::FinishReason;
use crate::runs::{Run, RunStatus};

/// What every object of one response shares: its id (`resp_` and the run's), and its output items' ids
/// (made from the run's, so that a stream and a later `GET` name them alike).
#[derive(Debug, Clone)]
pub struct Head {
    pub id: String,
    run_hex: String,
    pub created_at: i64,
}

impl Head {
    pub fn of(run: &Run) -> Self {
        let run_hex = run.id.0.simple().to_string();
        Self { id: format!("resp_{run_hex}"), run_hex, created_at: run.created_at.timestamp() }
    }

    pub fn message_id(&self) -> String {
        format!("msg_{}", self.run_hex)
    }

    fn call_item_id(&self, index: usize) -> String {
        format!("fc_{}_{index}", self.run_hex)
    }
}

/// Where a response stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    InProgress,
    /// The model finished; `length` (cut at `max_output_tokens`) and `content_filter` make it incomplete.
    Completed {
        finish: Option<FinishReason>,
        completed_at: i64,
    },
    Failed {
        code: String,
        message: String,
    },
    Cancelled,
}

impl Outcome {
    pub fn of_run(run: &Run, answer: Option<&Message>) -> Self {
        match run.status {
            RunStatus::Queued => Self::Queued,
            RunStatus::Running | RunStatus::AwaitingApproval => Self::InProgress,
            RunStatus::Succeeded => Self::Completed {
                finish: run.finish_reason.or_else(|| answer.and_then(|answer| answer.finish_reason)),
                completed_at: run.finished_at.map_or(run.created_at.timestamp(), |at| at.timestamp()),
            },
            RunStatus::Failed => Self::Failed {
                code: run.error_code.clone().unwrap_or_else(|| "run_failed".to_owned()),
                message: run.error_message.clone().unwrap_or_default(),
            },
            RunStatus::Cancelled => Self::Cancelled,
        }
    }

    fn status(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed { .. } if self.incomplete_reason().is_some() => "incomplete",
            Self::Completed { .. } => "completed",
            Self::Failed { .. } => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn incomplete_reason(&self) -> Option<&'static str> {
        match self {
            Self::Completed { finish: Some(FinishReason::Length), .. } => Some("max_output_tokens"),
            Self::Completed { finish: Some(FinishReason::ContentFilter), .. } => Some("content_filter"),
            _ => None,
        }
    }

    pub fn is_incomplete(&self) -> bool {
        self.incomplete_reason().is_some()
    }
}

/// A response: the request as it was kept, where it stands, its output and usage. The same object whether
/// made, polled, cancelled or streamed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseObject {
    /// `resp_` and the run's id.
    id: String,
    #[schema(inline, value_type = ResponseObjectType)]
    object: &'static str,
    created_at: i64,
    #[schema(value_type = ResponseStatus)]
    status: &'static str,
    background: bool,
    /// Set when `completed` or `incomplete`.
    #[schema(required = true)]
    completed_at: Option<i64>,
    /// Set when `failed`.
    #[schema(required = true)]
    error: Option<ErrorObject>,
    /// Set when `incomplete`.
    #[schema(required = true)]
    incomplete_details: Option<IncompleteDetails>,
    #[schema(required = true)]
    instructions: Option<String>,
    #[schema(required = true)]
    max_output_tokens: Option<u32>,
    #[schema(value_type = HashMap<String, String>)]
    metadata: serde_json::Map<String, Value>,
    model: String,
    /// The answer's message (when it has text, or nothing else), then the function calls the model made.
    output: Vec<Item>,
    parallel_tool_calls: bool,
    #[schema(required = true)]
    previous_response_id: Option<String>,
    #[schema(value_type = ResponseReasoning)]
    reasoning: Value,
    store: bool,
    #[schema(required = true)]
    temperature: Option<f64>,
    #[schema(value_type = ResponseTextConfig)]
    text: Value,
    #[schema(value_type = ResponseToolChoice)]
    tool_choice: Value,
    tools: Vec<super::wire::Tool>,
    #[schema(required = true)]
    top_p: Option<f64>,
    #[schema(inline, value_type = TruncationDisabled)]
    truncation: &'static str,
    /// Set once the response has ended.
    #[schema(required = true)]
    usage: Option<Usage>,
    #[schema(required = true)]
    user: Option<String>,
}

constant!(ResponseObjectType = "response");
constant!(TruncationDisabled = "disabled");

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Schemas of what `Outcome::status` and `incomplete_reason` say.
pub enum ResponseStatus {
    Queued,
    InProgress,
    Completed,
    /// Cut at `max_output_tokens`, or by a content filter.
    Incomplete,
    Failed,
    Cancelled,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ResponseIncompleteReason {
    MaxOutputTokens,
    ContentFilter,
}

/// Always `{"effort": null, "summary": null}`: Switchboard asks models for no reasoning.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResponseReasoning {
    #[schema(inline)]
    effort: AlwaysNull,
    #[schema(inline)]
    summary: AlwaysNull,
}

/// The text format the request asked for (`{"type": "text"}` when none).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResponseTextConfig {
    format: ResponseTextFormat,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ResponseError)]
struct ErrorObject {
    code: String,
    message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ResponseIncompleteDetails)]
struct IncompleteDetails {
    #[schema(value_type = ResponseIncompleteReason)]
    reason: &'static str,
}

/// The response's tokens; `cached_tokens` are among `input_tokens`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ResponseUsage)]
pub struct Usage {
    input_tokens: u32,
    input_tokens_details: InputTokensDetails,
    output_tokens: u32,
    output_tokens_details: OutputTokensDetails,
    total_tokens: u32,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ResponseInputTokensDetails)]
struct InputTokensDetails {
    cached_tokens: u32,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ResponseOutputTokensDetails)]
struct OutputTokensDetails {
    reasoning_tokens: u32,
}

impl From<&UsageCounts> for Usage {
    fn from(counts: &UsageCounts) -> Self {
        Self {
            input_tokens: counts.input,
            input_tokens_details: InputTokensDetails { cached_tokens: counts.cached },
            output_tokens: counts.output,
            output_tokens_details: OutputTokensDetails { reasoning_tokens: counts.reasoning },
            total_tokens: counts.input.saturating_add(counts.output),
        }
    }
}

/// The response object: the request as it was kept, where it stands, its output and usage.
pub fn response(
    head: &Head,
    request: &StoredRequest,
    outcome: &Outcome,
    output: Vec<Item>,
    usage: Option<&UsageCounts>,
) -> ResponseObject {
    let (completed_at, error) = match outcome {
        Outcome::Completed { completed_at, .. } => (Some(*completed_at), None),
        Outcome::Failed { code, message } => (None, Some(ErrorObject { code: code.clone(), message: message.clone() })),
        _ => (None, None),
    };
    ResponseObject {
        id: head.id.clone(),
        object: "response",
        created_at: head.created_at,
        status: outcome.status(),
        background: request.background,
        completed_at,
        error,
        incomplete_details: outcome.incomplete_reason().map(|reason| IncompleteDetails { reason }),
        instructions: request.instructions.clone(),
        max_output_tokens: request.max_output_tokens,
        metadata: request.metadata.clone(),
        model: request.model.clone(),
        output,
        parallel_tool_calls: request.parallel_tool_calls,
        previous_response_id: request.previous_response_id.clone(),
        reasoning: json!({ "effort": null, "summary": null }),
        store: request.store,
        temperature: request.temperature,
        text: request.text.clone(),
        tool_choice: request.tool_choice.clone(),
        tools: request.tools.clone(),
        top_p: request.top_p,
        truncation: "disabled",
        usage: usage.map(Usage::from),
        user: request.user.clone(),
    }
}

/// A function call as the assistant's message stores it (`{id, name, arguments}`), as an output item.
#[derive(Debug, Clone)]
pub struct FunctionCall {
    pub item_id: String,
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

impl FunctionCall {
    pub fn all_of(head: &Head, answer: &Message) -> Vec<Self> {
        let calls = answer.tool_calls.0.as_array().map(Vec::as_slice).unwrap_or_default();
        calls
            .iter()
            .enumerate()
            .map(|(index, call)| Self {
                item_id: head.call_item_id(index),
                // A provider that sent no id still gets one the client can answer.
                call_id: call["id"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .map_or_else(|| format!("call_{}_{index}", head.run_hex), str::to_owned),
                name: call["name"].as_str().unwrap_or_default().to_owned(),
                arguments: match &call["arguments"] {
                    Value::String(arguments) => arguments.clone(),
                    Value::Null => "{}".to_owned(),
                    other => other.to_string(),
                },
            })
            .collect()
    }

    pub fn item(&self, status: &str) -> Item {
        Item::FunctionCall {
            id: self.item_id.clone(),
            call_id: self.call_id.clone(),
            name: self.name.clone(),
            arguments: if status == "completed" { self.arguments.clone() } else { String::new() },
            status: status.to_owned(),
        }
    }
}

/// The assistant's message as an output item (status `incomplete` when it was cut short).
pub fn message_item(head: &Head, text: String, complete: bool) -> Item {
    Item::Message {
        id: head.message_id(),
        role: "assistant".to_owned(),
        content: vec![Part::output_text(text)],
        status: if complete { "completed" } else { "incomplete" }.to_owned(),
    }
}

/// A message item whose text part is still to come (`response.output_item.added`).
pub fn opening_message_item(head: &Head) -> Item {
    Item::Message {
        id: head.message_id(),
        role: "assistant".to_owned(),
        content: Vec::new(),
        status: "in_progress".to_owned(),
    }
}

/// Whether an answer shows its text as a message: when it has text, or nothing else.
pub fn has_message(text: &str, calls: &[FunctionCall]) -> bool {
    !text.is_empty() || calls.is_empty()
}

/// Whether the answer is whole: not cut short by a failure, cancellation or its token limit.
pub fn is_complete(answer: &Message) -> bool {
    answer.status == MessageStatus::Complete
        && !matches!(answer.finish_reason, Some(FinishReason::Length | FinishReason::ContentFilter))
}

/// The output of an answer: its message (if any), then the calls the model made.
pub fn output_items(head: &Head, answer: &Message) -> Vec<Item> {
    let calls = FunctionCall::all_of(head, answer);
    let mut items = Vec::new();
    if has_message(&answer.content, &calls) {
        items.push(message_item(head, answer.content.clone(), is_complete(answer)));
    }
    items.extend(calls.iter().map(|call| call.item("completed")));
    items
}

/// The stream's events; the SSE event's name is the `type`, and each carries its `sequence_number`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type")]
#[schema(as = ResponseStreamEventBody)]
pub enum StreamEvent {
    #[serde(rename = "response.created")]
    Created { response: Box<ResponseObject> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: Box<ResponseObject> },
    #[serde(rename = "response.completed")]
    Completed { response: Box<ResponseObject> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: Box<ResponseObject> },
    #[serde(rename = "response.failed")]
    Failed { response: Box<ResponseObject> },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded { output_index: usize, item: Item },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone { output_index: usize, item: Item },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded { item_id: String, output_index: usize, content_index: usize, part: Part },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone { item_id: String, output_index: usize, content_index: usize, part: Part },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta { item_id: String, output_index: usize, content_index: usize, delta: String, logprobs: Vec<Value> },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone { item_id: String, output_index: usize, content_index: usize, text: String, logprobs: Vec<Value> },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta { item_id: String, output_index: usize, delta: String },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone { item_id: String, output_index: usize, name: String, arguments: String },
    /// The stream failed after it began (`code` `server_error` for Switchboard's own faults); it ends here.
    #[serde(rename = "error")]
    Error {
        code: String,
        message: String,
        #[schema(required = true)]
        param: Option<String>,
    },
}

/// One event of a streamed response, as its `data`: the event's fields and its `sequence_number`.
#[derive(Serialize, ToSchema)]
#[schema(as = ResponseStreamEvent)]
struct Numbered<'a> {
    #[serde(flatten)]
    #[schema(value_type = StreamEvent)]
    event: &'a StreamEvent,
    /// From 0, one after the other; also the SSE event's `id`.
    sequence_number: u64,
}

/// A streamed response (`stream` true): one of its events.
pub struct ResponseEventStream;

impl PartialSchema for ResponseEventStream {
    fn schema() -> RefOr<Schema> {
        sse_event(
            "Server-sent events, each with `id:` its sequence number (from 0), `event:` its type, and `data:` a \
             `ResponseStreamEvent` as JSON: `response.created` and `response.in_progress`, then the output's \
             items and their deltas (`response.output_item.added`, `response.content_part.added`, \
             `response.output_text.delta`, `response.function_call_arguments.delta`, … `.done`), and last one of \
             `response.completed`, `response.incomplete`, `response.failed` (also for a cancelled response) or \
             `error`. Lines starting with `:` keep the connection alive.",
            true,
            json_data(reference::<Numbered<'static>>()),
        )
    }
}

impl ToSchema for ResponseEventStream {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register::<Numbered<'static>>(schemas);
    }
}

impl StreamEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "response.created",
            Self::InProgress { .. } => "response.in_progress",
            Self::Completed { .. } => "response.completed",
            Self::Incomplete { .. } => "response.incomplete",
            Self::Failed { .. } => "response.failed",
            Self::OutputItemAdded { .. } => "response.output_item.added",
            Self::OutputItemDone { .. } => "response.output_item.done",
            Self::ContentPartAdded { .. } => "response.content_part.added",
            Self::ContentPartDone { .. } => "response.content_part.done",
            Self::OutputTextDelta { .. } => "response.output_text.delta",
            Self::OutputTextDone { .. } => "response.output_text.done",
            Self::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::Error { .. } => "error",
        }
    }

    /// The event as SSE: `id:` its sequence number (so that a client reconnecting to `GET
    /// /v1/responses/{id}?stream=true` resumes with `Last-Event-ID`), `event:` its type, `data:` its JSON
    /// with its sequence number.
    pub fn sse(&self, sequence_number: u64) -> Event {
        Event::default()
            .id(sequence_number.to_string())
            .event(self.name())
            .json_data(Numbered { event: self, sequence_number })
            .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
    }

    pub fn text_delta(head: &Head, output_index: usize, delta: String) -> Self {
        Self::OutputTextDelta {
            item_id: head.message_id(),
            output_index,
            content_index: 0,
            delta,
            logprobs: Vec::new(),
        }
    }

    pub fn text_part_added(head: &Head, output_index: usize) -> Self {
        Self::ContentPartAdded {
            item_id: head.message_id(),
            output_index,
            content_index: 0,
            part: Part::output_text(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_type_its_fields_and_its_number() {
        let event = StreamEvent::OutputTextDelta {
            item_id: "msg_1".into(),
            output_index: 0,
            content_index: 0,
            delta: "Hi".into(),
            logprobs: Vec::new(),
        };
        let text = serde_json::to_string(&Numbered { event: &event, sequence_number: 4 }).unwrap();
        assert_eq!(
            text,
            r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","logprobs":[],"sequence_number":4}"#
        );
        assert_eq!(event.name(), "response.output_text.delta");
    }

    #[test]
    fn what_is_sent_is_what_the_document_says() {
        use super::super::super::schema::conformance::{assert_conforms, stored_message};
        use super::super::wire::CreateRequest;
        let head = Head { id: "resp_1".into(), run_hex: "1".into(), created_at: 1 };
        let tools = json!([{ "type": "function", "name": "f", "strict": true, "parameters": { "type": "object" } }]);
        let requests = [
            json!({ "model": "m", "input": "Hi" }),
            json!({ "model": "m", "instructions": "Be brief.", "tools": tools, "metadata": { "a": "b" },
                    "tool_choice": { "type": "function", "name": "f" }, "temperature": 0.5, "top_p": 1, "user": "u",
                    "max_output_tokens": 5, "previous_response_id": "resp_0", "background": true,
                    "text": { "format": { "type": "json_schema", "name": "x", "schema": {}, "strict": true } },
                    "input": [{ "role": "developer", "content": [{ "type": "input_text", "text": "Hi" }] },
                              { "type": "function_call", "call_id": "c", "name": "f", "arguments": "{" },
                              { "type": "function_call_output", "call_id": "c", "output": "ok" }] }),
        ];
        let calls = json!([{ "id": "call_1", "name": "f", "arguments": "{\"a\": 1}" }, { "name": "g" }]);
        let answer = stored_message("Looking.", calls, Some(FinishReason::ToolCalls));
        let counts = UsageCounts { input: 12, output: 3, cached: 4, reasoning: 1 };
        let outcomes = [
            Outcome::Queued,
            Outcome::InProgress,
            Outcome::Completed { finish: Some(FinishReason::Length), completed_at: 2 },
            Outcome::Completed { finish: None, completed_at: 2 },
            Outcome::Failed { code: "upstream_error".into(), message: "No.".into() },
            Outcome::Cancelled,
        ];
        for request in requests {
            let request = serde_json::from_value::<CreateRequest>(request).unwrap().check().unwrap().stored;
            for outcome in &outcomes {
                for usage in [None, Some(&counts)] {
                    let made = response(&head, &request, outcome, output_items(&head, &answer), usage);
                    assert_conforms::<ResponseObject>(&made);
                }
            }
            let made = Box::new(response(&head, &request, &Outcome::InProgress, Vec::new(), None));
            let call = &FunctionCall::all_of(&head, &answer)[0];
            for event in [
                StreamEvent::Created { response: made.clone() },
                StreamEvent::InProgress { response: made.clone() },
                StreamEvent::Completed { response: made.clone() },
                StreamEvent::Incomplete { response: made.clone() },
                StreamEvent::Failed { response: made },
                StreamEvent::OutputItemAdded { output_index: 0, item: opening_message_item(&head) },
                StreamEvent::text_part_added(&head, 0),
                StreamEvent::text_delta(&head, 0, "Hi".into()),
                StreamEvent::OutputTextDone {
                    item_id: head.message_id(),
                    output_index: 0,
                    content_index: 0,
                    text: "Hi".into(),
                    logprobs: Vec::new(),
                },
                StreamEvent::ContentPartDone {
                    item_id: head.message_id(),
                    output_index: 0,
                    content_index: 0,
                    part: Part::output_text("Hi".into()),
                },
                StreamEvent::OutputItemDone { output_index: 0, item: message_item(&head, "Hi".into(), false) },
                StreamEvent::OutputItemAdded { output_index: 1, item: call.item("in_progress") },
                StreamEvent::FunctionCallArgumentsDelta {
                    item_id: call.item_id.clone(),
                    output_index: 1,
                    delta: "{".into(),
                },
                StreamEvent::FunctionCallArgumentsDone {
                    item_id: call.item_id.clone(),
                    output_index: 1,
                    name: call.name.clone(),
                    arguments: "{}".into(),
                },
                StreamEvent::Error { code: "stream_ended".into(), message: "Early.".into(), param: None },
            ] {
                assert_conforms::<Numbered<'static>>(&Numbered { event: &event, sequence_number: 7 });
            }
        }
    }

    #[test]
    fn a_cut_answer_is_incomplete_for_its_token_limit() {
        let cut = Outcome::Completed { finish: Some(FinishReason::Length), completed_at: 1 };
        assert_eq!((cut.status(), cut.incomplete_reason()), ("incomplete", Some("max_output_tokens")));
        let whole = Outcome::Completed { finish: Some(FinishReason::ToolCalls), completed_at: 1 };
        assert_eq!((whole.status(), whole.incomplete_reason()), ("completed", None));
        let failed = Outcome::Failed { code: "upstream_error".into(), message: "no".into() };
        assert_eq!(failed.status(), "failed");
    }
}
