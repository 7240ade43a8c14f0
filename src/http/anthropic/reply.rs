//! The engine's answer in Anthropic's shapes: a `message` object, or the stream's named events from
//! `message_start` to `message_stop` (and `error`). Events are internally tagged so that `type` comes
//! first, as in Anthropic's own bytes, and each SSE event's name is its `type`.

use axum::response::sse::Event;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::conversations::Message as StoredMessage;
use crate::http::openai::schema::{AlwaysNull, constant, json_data, reference, register, sse_event};
use crate::providers::FinishReason;

/// What every object of one answer shares.
#[derive(Debug)]
pub struct Reply {
    /// `msg_` and the run's id.
    pub id: String,
    pub model: String,
}

/// The assistant's message: whole (`stream` false), or as `message_start` opens a stream (no content yet,
/// `stop_reason` null, and the prompt's tokens by Switchboard's estimate).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AnthropicMessage)]
pub struct Message<'a> {
    /// `msg_` and the run's id.
    id: &'a str,
    #[serde(rename = "type")]
    #[schema(inline, value_type = MessageType)]
    kind: &'static str,
    #[schema(inline, value_type = AssistantRole)]
    role: &'static str,
    /// As the request named it.
    model: &'a str,
    /// The text (when there is text, or nothing else), then one `tool_use` block per call.
    content: Vec<Block>,
    /// Set in a whole message; null in `message_start`.
    #[schema(required = true, value_type = Option<AnthropicStopReason>)]
    stop_reason: Option<&'static str>,
    /// Always null: the engine records a stop sequence's end as a natural one (`end_turn`), not which
    /// sequence it was.
    #[schema(value_type = AlwaysNull)]
    stop_sequence: Option<String>,
    usage: Usage,
}

constant!(MessageType = "message");
constant!(AssistantRole = "assistant");

/// `end_turn` (also at a stop sequence), `max_tokens`, `tool_use`, or `refusal` (a content filter).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // A schema of what `stop_reason` says.
pub enum AnthropicStopReason {
    EndTurn,
    MaxTokens,
    ToolUse,
    Refusal,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicContentBlock)]
pub enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        /// The arguments' text as the model wrote them, never parsed and written again.
        #[schema(value_type = Object)]
        input: Box<RawValue>,
    },
}

/// Anthropic's usage: `input_tokens` counts only the prompt tokens not read from the cache.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[expect(clippy::struct_field_names, reason = "the field names are Anthropic's wire format")]
#[schema(as = AnthropicUsage)]
pub struct Usage {
    input_tokens: u32,
    output_tokens: u32,
    cache_read_input_tokens: u32,
    /// Always null: Switchboard does not keep cache writes apart, so they are inside `input_tokens`.
    #[schema(value_type = AlwaysNull)]
    cache_creation_input_tokens: Option<u32>,
}

impl Usage {
    /// From the engine's counts, whose input includes the cached tokens.
    pub fn of(input: u32, output: u32, cached: u32) -> Self {
        Self {
            input_tokens: input.saturating_sub(cached),
            output_tokens: output,
            cache_read_input_tokens: cached,
            cache_creation_input_tokens: None,
        }
    }
}

impl From<&crate::usage::RunTotals> for Usage {
    fn from(totals: &crate::usage::RunTotals) -> Self {
        let narrow = |count: i64| u32::try_from(count).unwrap_or(u32::MAX);
        Self::of(narrow(totals.input_tokens), narrow(totals.output_tokens), narrow(totals.cached_tokens))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicContentBlockDelta)]
pub enum Delta {
    TextDelta {
        text: String,
    },
    /// A `tool_use` block's whole input, in one delta.
    InputJsonDelta {
        partial_json: String,
    },
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AnthropicMessageDeltaStop)]
pub struct StopDelta {
    #[schema(value_type = AnthropicStopReason)]
    stop_reason: &'static str,
    /// Always null.
    #[schema(value_type = AlwaysNull)]
    stop_sequence: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AnthropicStreamError)]
pub struct ErrorDetail {
    /// As in `AnthropicErrorDetail`: `api_error`, `overloaded_error`, `conflict_error`, …
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub message: String,
}

/// One event of a streamed message, as its `data` (its `type` is also the SSE event's name).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicStreamEvent)]
pub enum StreamEvent<'a> {
    MessageStart { message: Message<'a> },
    ContentBlockStart { index: usize, content_block: Block },
    ContentBlockDelta { index: usize, delta: Delta },
    ContentBlockStop { index: usize },
    MessageDelta { delta: StopDelta, usage: Usage },
    MessageStop,
    Error { error: ErrorDetail },
}

impl StreamEvent<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Error { .. } => "error",
        }
    }

    /// The event as SSE: `event:` its type, `data:` its JSON.
    pub fn sse(&self) -> Event {
        Event::default()
            .event(self.name())
            .json_data(self)
            .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
    }
}

/// A streamed message (`stream` true): one of its events.
pub struct AnthropicEventStream;

impl PartialSchema for AnthropicEventStream {
    fn schema() -> RefOr<Schema> {
        let ping = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["ping"])))
            .required("type");
        sse_event(
            "Server-sent events, each with `event:` its type and `data:` an `AnthropicStreamEvent` as JSON: \
             `message_start`, then for each content block `content_block_start`, its `content_block_delta`s \
             and `content_block_stop`, then `message_delta` (the stop reason and usage) and `message_stop`. A \
             run that fails, or is cancelled, once the stream has begun ends it with an `error` event instead. \
             While idle, a `ping` event (`data: {\"type\":\"ping\"}`) every 15 seconds.",
            false,
            json_data(OneOfBuilder::new().item(reference::<StreamEvent<'static>>()).item(ping)),
        )
    }
}

impl ToSchema for AnthropicEventStream {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register::<StreamEvent<'static>>(schemas);
    }
}

/// Anthropic's keep-alive: a `ping` event, which its clients expect and skip.
pub fn ping() -> Event {
    Event::default().event("ping").data(r#"{"type":"ping"}"#)
}

/// A tool call as the assistant's message stores it, ready for a `tool_use` block.
#[derive(Debug)]
pub struct ToolUse {
    id: String,
    name: String,
    input: Box<RawValue>,
}

impl ToolUse {
    pub fn all_of(message: &StoredMessage, reply: &Reply) -> Vec<Self> {
        let calls = message.tool_calls.0.as_array().map(Vec::as_slice).unwrap_or_default();
        calls
            .iter()
            .enumerate()
            .map(|(index, call)| Self {
                // A provider that sent no id still gets one the client can answer.
                id: call["id"]
                    .as_str()
                    .map_or_else(|| format!("toolu_{}_{index}", reply.id.trim_start_matches("msg_")), str::to_owned),
                name: call["name"].as_str().unwrap_or_default().to_owned(),
                input: input_of(call["arguments"].as_str().unwrap_or_default()),
            })
            .collect()
    }

    pub fn block(&self) -> Block {
        Block::ToolUse { id: self.id.clone(), name: self.name.clone(), input: self.input.clone() }
    }

    /// The `content_block_start` form: the input follows in `input_json_delta`s.
    pub fn opening_block(&self) -> Block {
        Block::ToolUse { id: self.id.clone(), name: self.name.clone(), input: empty_object() }
    }

    pub fn input_text(&self) -> String {
        self.input.get().to_owned()
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is JSON")
}

/// The arguments when they are a JSON object; `{}` when they are not (a call the model cut off), since
/// a `tool_use` block's input must be an object.
fn input_of(arguments: &str) -> Box<RawValue> {
    serde_json::from_str::<Box<RawValue>>(arguments)
        .ok()
        .filter(|input| input.get().starts_with('{'))
        .unwrap_or_else(empty_object)
}

/// The reason the run recorded, in Anthropic's words; for runs recorded before reasons were kept, what
/// the answer shows. A stop sequence is recorded as a natural end, so it reads `end_turn`.
pub fn stop_reason(recorded: Option<FinishReason>, calls: &[ToolUse]) -> &'static str {
    let inferred = if calls.is_empty() { FinishReason::Stop } else { FinishReason::ToolCalls };
    match recorded.unwrap_or(inferred) {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// A text block when there is text or nothing else: Claude always answers with at least one block.
pub fn has_text_block(text: &str, calls: &[ToolUse]) -> bool {
    !text.is_empty() || calls.is_empty()
}

impl Reply {
    pub fn message(&self, stored: &StoredMessage, usage: Usage) -> Message<'_> {
        let calls = ToolUse::all_of(stored, self);
        let mut content = Vec::new();
        if has_text_block(&stored.content, &calls) {
            content.push(Block::Text { text: stored.content.clone() });
        }
        content.extend(calls.iter().map(ToolUse::block));
        Message { stop_reason: Some(stop_reason(stored.finish_reason, &calls)), ..self.shell(content, usage) }
    }

    fn shell(&self, content: Vec<Block>, usage: Usage) -> Message<'_> {
        Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content,
            stop_reason: None,
            stop_sequence: None,
            usage,
        }
    }

    /// `message_start`: no content yet, and the prompt's tokens by Switchboard's estimate (the
    /// provider's count comes in `message_delta`).
    pub fn start(&self, estimated_input_tokens: u32) -> StreamEvent<'_> {
        StreamEvent::MessageStart { message: self.shell(Vec::new(), Usage::of(estimated_input_tokens, 0, 0)) }
    }
}

impl StreamEvent<'_> {
    pub fn text_start(index: usize) -> Self {
        Self::ContentBlockStart { index, content_block: Block::Text { text: String::new() } }
    }

    pub fn text(index: usize, text: String) -> Self {
        Self::ContentBlockDelta { index, delta: Delta::TextDelta { text } }
    }

    pub fn input_json(index: usize, partial_json: String) -> Self {
        Self::ContentBlockDelta { index, delta: Delta::InputJsonDelta { partial_json } }
    }

    pub fn finish(stop_reason: &'static str, usage: Usage) -> Self {
        Self::MessageDelta { delta: StopDelta { stop_reason, stop_sequence: None }, usage }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn events_are_anthropics_bytes() {
        let to_json = |event: &StreamEvent<'_>| serde_json::to_value(event).unwrap();
        let reply = Reply { id: "msg_1".into(), model: "claude-sonnet-4-5".into() };
        let start = serde_json::to_string(&reply.start(12)).unwrap();
        assert!(start.starts_with(r#"{"type":"message_start","message":{"id":"msg_1","type":"message""#), "{start}");
        assert_eq!(
            to_json(&reply.start(12))["message"]["usage"],
            json!({"input_tokens": 12, "output_tokens": 0, "cache_read_input_tokens": 0,
                   "cache_creation_input_tokens": null})
        );
        assert_eq!(
            to_json(&StreamEvent::text(0, "Hi".into())),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
        );
        assert_eq!(
            to_json(&StreamEvent::finish("tool_use", Usage::of(10, 3, 4))),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"input_tokens": 6, "output_tokens": 3, "cache_read_input_tokens": 4,
                             "cache_creation_input_tokens": null}})
        );
        assert_eq!(to_json(&StreamEvent::MessageStop), json!({"type": "message_stop"}));
    }

    #[test]
    fn what_is_sent_is_what_the_document_says() {
        use crate::http::openai::schema::conformance::{assert_conforms, stored_message};
        let reply = Reply { id: "msg_1".into(), model: "claude-sonnet-4-5".into() };
        let calls =
            json!([{ "id": "toolu_1", "name": "f", "arguments": "{\"a\": 1}" }, { "name": "g", "arguments": "{\"cu" }]);
        for stored in [
            stored_message("Hi", json!([]), Some(FinishReason::Stop)),
            stored_message("", calls.clone(), None),
            stored_message("Looking.", calls.clone(), Some(FinishReason::ToolCalls)),
            stored_message("", json!([]), Some(FinishReason::ContentFilter)),
            stored_message("Cut", json!([]), Some(FinishReason::Length)),
        ] {
            assert_conforms::<Message<'static>>(&reply.message(&stored, Usage::of(12, 3, 4)));
        }
        let calls = ToolUse::all_of(&stored_message("", calls, None), &reply);
        for event in [
            reply.start(12),
            StreamEvent::text_start(0),
            StreamEvent::text(0, "Hi".into()),
            StreamEvent::ContentBlockStop { index: 0 },
            StreamEvent::ContentBlockStart { index: 1, content_block: calls[1].opening_block() },
            StreamEvent::input_json(1, calls[1].input_text()),
            StreamEvent::finish(stop_reason(None, &calls), Usage::of(12, 3, 0)),
            StreamEvent::MessageStop,
            StreamEvent::Error { error: ErrorDetail { kind: "overloaded_error", message: "Busy.".into() } },
        ] {
            assert_conforms::<StreamEvent<'static>>(&event);
        }
    }

    #[test]
    fn a_tool_input_is_the_models_text_or_an_empty_object() {
        let exact = r#"{"zeta": 1, "total": 12345678901234567890123}"#;
        assert_eq!(input_of(exact).get(), exact);
        for unreadable in ["", r#"{"city": "Ly"#, "[1]", "\"text\""] {
            assert_eq!(input_of(unreadable).get(), "{}", "{unreadable}");
        }
        let block = Block::ToolUse { id: "t".into(), name: "f".into(), input: input_of(exact) };
        let text = serde_json::to_string(&block).unwrap();
        assert!(text.ends_with(&format!(r#""input":{exact}}}"#)), "{text}");
        let _: Value = serde_json::from_str(&text).unwrap();
    }

    #[test]
    fn every_finish_reason_has_its_stop_reason() {
        for (recorded, expected) in [
            (Some(FinishReason::Stop), "end_turn"),
            (Some(FinishReason::Length), "max_tokens"),
            (Some(FinishReason::ToolCalls), "tool_use"),
            (Some(FinishReason::ContentFilter), "refusal"),
            (None, "end_turn"),
        ] {
            assert_eq!(stop_reason(recorded, &[]), expected);
        }
    }
}
