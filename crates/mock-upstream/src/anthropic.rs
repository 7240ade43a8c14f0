//! Anthropic Messages (`POST /v1/messages`): named SSE events (`message_start` … `message_stop`) when streaming,
//! one `message` object otherwise, and `{"type":"error","error":{…}}` bodies.
//!
//! Events are an internally tagged enum so `"type"` comes first, as in Anthropic's own bytes.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::script::{self, Request, Turn, fresh_id, text_words};
use crate::wire::{Script, Step, json};

/// The `x-api-key` header.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    let key = headers.get("x-api-key")?.to_str().ok()?.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

pub(crate) fn error_body(status: StatusCode, message: &str) -> String {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    };
    json(&ErrorBody { kind: "error", error: ErrorDetail { kind, message } })
}

/// Checks the header and fields the real API requires and counts the prompt's words (system included).
pub(crate) fn parse(headers: &HeaderMap, body: &Value) -> Result<Request, String> {
    if !headers.contains_key("anthropic-version") {
        return Err("anthropic-version: header is required".to_owned());
    }
    let model = body.get("model").and_then(Value::as_str).ok_or("model: Field required")?;
    let messages = body.get("messages").and_then(Value::as_array).ok_or("messages: Field required")?;
    if !body.get("max_tokens").is_some_and(Value::is_u64) {
        return Err("max_tokens: Field required".to_owned());
    }
    let system_words = body.get("system").map_or(0, text_words);
    let message_words: u32 = messages.iter().filter_map(|message| message.get("content")).map(text_words).sum();
    Ok(Request {
        model: model.to_owned(),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: false,
        prompt_words: system_words.saturating_add(message_words),
        max_output_tokens: body.get("max_tokens").and_then(Value::as_u64).map(script::saturate_u64),
    })
}

/// Generated tool-use ids look like Anthropic's `toolu_01` + 22 characters.
pub(crate) fn turn(reply: crate::Reply, request: &Request) -> Turn {
    Turn::new(reply, request, "toolu_01", 22)
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart { message: Message<'a> },
    ContentBlockStart { index: usize, content_block: Block<'a> },
    Ping,
    ContentBlockDelta { index: usize, delta: Delta<'a> },
    ContentBlockStop { index: usize },
    MessageDelta { delta: StopDelta<'a>, usage: DeltaUsage },
    MessageStop,
}

impl Event<'_> {
    /// The SSE event name, which Anthropic sets equal to the data's `type`.
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }

    fn frame(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.name(), json(self)))
    }
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: Vec<Block<'a>>,
    model: &'a str,
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: &'a Value },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
}

/// A message's usage. The cache fields come only with a scripted [`crate::UsageDetails`]: `input_tokens` then
/// counts only the prompt tokens neither read from nor written to the cache.
#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u32>,
    /// The cache writes by lifetime; the mock's are all of the default five minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation: Option<CacheCreation>,
    output_tokens: u32,
}

#[derive(Serialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: u32,
    ephemeral_1h_input_tokens: u32,
}

impl Usage {
    fn of(turn: &Turn, output_tokens: u32) -> Usage {
        Usage {
            input_tokens: turn.fresh_input_tokens(),
            cache_creation_input_tokens: turn.details.map(|details| details.cache_write),
            cache_read_input_tokens: turn.details.map(|details| details.cache_read),
            cache_creation: turn.details.map(|details| CacheCreation {
                ephemeral_5m_input_tokens: details.cache_write,
                ephemeral_1h_input_tokens: 0,
            }),
            output_tokens,
        }
    }
}

/// `message_delta`'s cumulative usage: the output alone, or with a scripted [`crate::UsageDetails`] the
/// prompt's counts again too, as the current API sends them.
#[derive(Serialize)]
#[expect(clippy::struct_field_names, reason = "the field names are the provider's wire format")]
struct DeltaUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u32>,
    output_tokens: u32,
}

impl DeltaUsage {
    fn of(turn: &Turn) -> DeltaUsage {
        DeltaUsage {
            input_tokens: turn.details.map(|_| turn.fresh_input_tokens()),
            cache_creation_input_tokens: turn.details.map(|details| details.cache_write),
            cache_read_input_tokens: turn.details.map(|details| details.cache_read),
            output_tokens: turn.output_tokens,
        }
    }
}

fn stop_reason(turn: &Turn) -> &'static str {
    match (turn.cut, turn.tool_calls.is_empty()) {
        (true, _) => "max_tokens",
        (false, true) => "end_turn",
        (false, false) => "tool_use",
    }
}

/// A text block is sent when there is text, or when there is nothing else (Claude always answers with some block).
fn has_text_block(turn: &Turn) -> bool {
    !turn.pieces.is_empty() || turn.tool_calls.is_empty()
}

/// `message_start`, the text block (`content_block_start`, `ping`, one `text_delta` per piece,
/// `content_block_stop`), one `tool_use` block per call with `input_json_delta` fragments, `message_delta`,
/// `message_stop`.
fn stream_script(request: &Request, turn: &Turn) -> Script {
    let id = fresh_id("msg_01", 22);
    let empty_input = Value::Object(serde_json::Map::new());
    let start = Message {
        id: &id,
        kind: "message",
        role: "assistant",
        content: Vec::new(),
        model: &request.model,
        stop_reason: None,
        stop_sequence: None,
        // Like the real API, message_start reports the full input and a placeholder output of 1.
        usage: Usage::of(turn, 1),
    };
    let mut steps = vec![Step::Framing(Event::MessageStart { message: start }.frame())];
    let mut index = 0;
    if has_text_block(turn) {
        let block = Block::Text { text: "" };
        steps.push(Step::Framing(Event::ContentBlockStart { index, content_block: block }.frame()));
    }
    steps.push(Step::Framing(Event::Ping.frame()));
    if has_text_block(turn) {
        for piece in &turn.pieces {
            let delta = Delta::TextDelta { text: piece };
            steps.push(Step::Content(Event::ContentBlockDelta { index, delta }.frame()));
        }
        steps.push(Step::Framing(Event::ContentBlockStop { index }.frame()));
        index += 1;
    }
    for call in &turn.tool_calls {
        let block = Block::ToolUse { id: &call.id, name: &call.name, input: &empty_input };
        steps.push(Step::Framing(Event::ContentBlockStart { index, content_block: block }.frame()));
        for fragment in script::fragments(&call.arguments) {
            let delta = Delta::InputJsonDelta { partial_json: &fragment };
            steps.push(Step::Content(Event::ContentBlockDelta { index, delta }.frame()));
        }
        steps.push(Step::Framing(Event::ContentBlockStop { index }.frame()));
        index += 1;
    }
    let delta = StopDelta { stop_reason: stop_reason(turn), stop_sequence: None };
    steps.push(Step::Closing(Event::MessageDelta { delta, usage: DeltaUsage::of(turn) }.frame()));
    steps.push(Step::Closing(Event::MessageStop.frame()));
    let malformed =
        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n";
    Script { content_type: "text/event-stream", steps, malformed }
}

/// The non-streaming `message` object.
fn message_script(request: &Request, turn: &Turn) -> Script {
    let id = fresh_id("msg_01", 22);
    let text = turn.text();
    let mut content = Vec::new();
    if has_text_block(turn) {
        content.push(Block::Text { text: &text });
    }
    content.extend(turn.tool_calls.iter().map(|call| Block::ToolUse {
        id: &call.id,
        name: &call.name,
        input: &call.arguments,
    }));
    let message = Message {
        id: &id,
        kind: "message",
        role: "assistant",
        content,
        model: &request.model,
        stop_reason: Some(stop_reason(turn)),
        stop_sequence: None,
        usage: Usage::of(turn, turn.output_tokens),
    };
    Script {
        content_type: "application/json",
        steps: vec![Step::Closing(Bytes::from(json(&message)))],
        malformed: "{\"id\": \"msg_01",
    }
}

pub(crate) fn respond(request: &Request, turn: &Turn) -> Response {
    let script = if request.stream { stream_script(request, turn) } else { message_script(request, turn) };
    script.into_response(turn)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::payloads;
    use crate::{Reply, UsageDetails};

    fn request(stream: bool) -> Request {
        let model = "claude-sonnet-4-5".into();
        Request { model, stream, include_usage: false, prompt_words: 3, max_output_tokens: Some(1024) }
    }

    fn reply(details: Option<UsageDetails>) -> Reply {
        Reply { text: "Hello big world".into(), usage: Some((100, 20)), details, ..Reply::default() }
    }

    #[test]
    fn input_tokens_count_only_what_the_cache_neither_read_nor_wrote() {
        let details = UsageDetails { cache_read: 60, cache_write: 10, reasoning: 5 };
        let request = request(true);
        let events = payloads(stream_script(&request, &turn(reply(Some(details)), &request)));
        let start = &events[0]["message"]["usage"];
        let prompt = json!({"input_tokens": 30, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 60});
        assert_eq!(
            *start,
            json!({"input_tokens": 30, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 60,
                   "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0},
                   "output_tokens": 1})
        );
        let delta = events.iter().find(|event| event["type"] == "message_delta").unwrap();
        let mut cumulative = prompt.clone();
        cumulative["output_tokens"] = json!(20);
        assert_eq!(delta["usage"], cumulative, "the thinking is inside output_tokens");

        let request = self::request(false);
        let message = payloads(message_script(&request, &turn(reply(Some(details)), &request))).pop().unwrap();
        assert_eq!(message["usage"]["input_tokens"], 30);
        assert_eq!(message["usage"]["cache_read_input_tokens"], 60);
        assert_eq!(message["usage"]["cache_creation_input_tokens"], 10);
        assert_eq!(message["usage"]["output_tokens"], 20);
    }

    #[test]
    fn without_details_the_usage_has_no_cache_fields() {
        let request = request(true);
        let events = payloads(stream_script(&request, &turn(reply(None), &request)));
        assert_eq!(events[0]["message"]["usage"], json!({"input_tokens": 100, "output_tokens": 1}));
        let delta = events.iter().find(|event| event["type"] == "message_delta").unwrap();
        assert_eq!(delta["usage"], json!({"output_tokens": 20}));
    }
}
