//! OpenAI Chat Completions (`POST /v1/chat/completions`): `data: {chunk}` lines ending with `data: [DONE]` when
//! streaming, one `chat.completion` object otherwise, and `{"error":{…}}` bodies.
//!
//! The structs below are declared in the field order of the real API so the bytes read like OpenAI's own.

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::script::{self, Request, Turn, fresh_id, text_words};
use crate::wire::{Script, Step, json};

/// `Authorization: Bearer X` -> X.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

pub(crate) fn error_body(status: StatusCode, message: &str) -> String {
    let (kind, code) = match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        429 => ("rate_limit_exceeded", Some("rate_limit_exceeded")),
        500.. => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    json(&ErrorBody { error: ErrorDetail { message, kind, param: None, code } })
}

/// Checks the fields the real API requires and counts the prompt's words.
pub(crate) fn parse(body: &Value) -> Result<Request, String> {
    let model = body.get("model").and_then(Value::as_str).ok_or("you must provide a model parameter")?;
    let messages = body.get("messages").and_then(Value::as_array).ok_or("Missing required parameter: 'messages'.")?;
    Ok(Request {
        model: model.to_owned(),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false),
        prompt_words: messages.iter().filter_map(|message| message.get("content")).map(text_words).sum(),
        max_output_tokens: ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|field| body.get(*field).and_then(Value::as_u64))
            .map(script::saturate_u64),
    })
}

/// Generated tool-call ids look like OpenAI's `call_` + 24 characters.
pub(crate) fn turn(reply: crate::Reply, request: &Request) -> Turn {
    Turn::new(reply, request, "call_", 24)
}

/// The usage object; the details come only with a scripted [`crate::UsageDetails`], so a reply without one
/// reports the three counts alone.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<CompletionDetails>,
}

/// Parts of `prompt_tokens`: `cached_tokens` were read from the cache.
#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u32,
    audio_tokens: u32,
}

/// Parts of `completion_tokens`: `reasoning_tokens` were spent thinking.
#[derive(Serialize)]
#[expect(clippy::struct_field_names, reason = "the field names are the provider's wire format")]
struct CompletionDetails {
    reasoning_tokens: u32,
    audio_tokens: u32,
    accepted_prediction_tokens: u32,
    rejected_prediction_tokens: u32,
}

impl Usage {
    fn of(turn: &Turn) -> Usage {
        Usage {
            prompt_tokens: turn.input_tokens,
            completion_tokens: turn.output_tokens,
            total_tokens: turn.input_tokens.saturating_add(turn.output_tokens),
            prompt_tokens_details: turn
                .details
                .map(|details| PromptDetails { cached_tokens: details.cache_read, audio_tokens: 0 }),
            completion_tokens_details: turn.details.map(|details| CompletionDetails {
                reasoning_tokens: details.reasoning,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            }),
        }
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: Option<&'a str>,
    choices: Vec<ChunkChoice<'a>>,
    #[expect(clippy::option_option, reason = "absent, null and an object are three distinct states on the wire")]
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

fn finish_reason(turn: &Turn) -> &'static str {
    match (turn.cut, turn.tool_calls.is_empty()) {
        (true, _) => "length",
        (false, true) => "stop",
        (false, false) => "tool_calls",
    }
}

/// Role chunk, one chunk per text piece, each tool call as a header chunk plus argument fragments, the finish chunk,
/// the usage chunk when asked for, then `[DONE]`.
fn stream_script(request: &Request, turn: &Turn) -> Script {
    let id = fresh_id("chatcmpl-", 29);
    let created = script::unix_now();
    let chunk = |delta: Delta, finish_reason: Option<&str>| {
        let chunk = Chunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &request.model,
            system_fingerprint: None,
            choices: vec![ChunkChoice { index: 0, delta, logprobs: None, finish_reason }],
            // With include_usage every chunk but the last carries `"usage":null`; without it there is no field.
            usage: request.include_usage.then_some(None),
        };
        Bytes::from(format!("data: {}\n\n", json(&chunk)))
    };

    let mut steps =
        vec![Step::Framing(chunk(Delta { role: Some("assistant"), content: Some(""), ..Delta::default() }, None))];
    for piece in &turn.pieces {
        steps.push(Step::Content(chunk(Delta { content: Some(piece), ..Delta::default() }, None)));
    }
    for (index, call) in turn.tool_calls.iter().enumerate() {
        let header = ToolCallDelta {
            index,
            id: Some(&call.id),
            kind: Some("function"),
            function: FunctionDelta { name: Some(&call.name), arguments: "" },
        };
        steps.push(Step::Content(chunk(Delta { tool_calls: Some([header]), ..Delta::default() }, None)));
        for fragment in script::fragments(&call.arguments) {
            let delta = ToolCallDelta {
                index,
                id: None,
                kind: None,
                function: FunctionDelta { name: None, arguments: &fragment },
            };
            steps.push(Step::Content(chunk(Delta { tool_calls: Some([delta]), ..Delta::default() }, None)));
        }
    }
    steps.push(Step::Closing(chunk(Delta::default(), Some(finish_reason(turn)))));
    if request.include_usage {
        let usage_chunk = Chunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &request.model,
            system_fingerprint: None,
            choices: Vec::new(),
            usage: Some(Some(Usage::of(turn))),
        };
        steps.push(Step::Closing(Bytes::from(format!("data: {}\n\n", json(&usage_chunk)))));
    }
    steps.push(Step::Closing(Bytes::from_static(b"data: [DONE]\n\n")));
    Script { content_type: "text/event-stream", steps, malformed: "data: {\"choices\": [\n\n" }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: Usage,
    system_fingerprint: Option<&'a str>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<FullToolCall<'a>>,
}

#[derive(Serialize)]
struct FullToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FullFunction<'a>,
}

#[derive(Serialize)]
struct FullFunction<'a> {
    name: &'a str,
    arguments: String,
}

/// The non-streaming `chat.completion` object; `content` is null when the model only calls tools, as OpenAI does.
fn completion_script(request: &Request, turn: &Turn) -> Script {
    let text = turn.text();
    let tool_calls = turn
        .tool_calls
        .iter()
        .map(|call| FullToolCall {
            id: &call.id,
            kind: "function",
            function: FullFunction { name: &call.name, arguments: call.arguments.to_string() },
        })
        .collect::<Vec<_>>();
    let content = if text.is_empty() && !tool_calls.is_empty() { None } else { Some(text) };
    let completion = Completion {
        id: fresh_id("chatcmpl-", 29),
        object: "chat.completion",
        created: script::unix_now(),
        model: &request.model,
        choices: [CompletionChoice {
            index: 0,
            message: Message { role: "assistant", content, refusal: None, tool_calls },
            logprobs: None,
            finish_reason: finish_reason(turn),
        }],
        usage: Usage::of(turn),
        system_fingerprint: None,
    };
    Script {
        content_type: "application/json",
        steps: vec![Step::Closing(Bytes::from(json(&completion)))],
        malformed: "{\"id\": \"chatcmpl-",
    }
}

pub(crate) fn respond(request: &Request, turn: &Turn) -> Response {
    let script = if request.stream { stream_script(request, turn) } else { completion_script(request, turn) };
    script.into_response(turn)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::payloads;
    use crate::{Reply, UsageDetails};

    fn request(stream: bool) -> Request {
        Request { model: "gpt-4o-mini".into(), stream, include_usage: true, prompt_words: 3, max_output_tokens: None }
    }

    fn reply(details: Option<UsageDetails>) -> Reply {
        Reply { text: "Hello big world".into(), usage: Some((100, 20)), details, ..Reply::default() }
    }

    #[test]
    fn cached_and_reasoning_tokens_are_parts_of_the_totals_streamed_and_not() {
        let details = UsageDetails { cache_read: 60, cache_write: 10, reasoning: 5 };
        let expected = json!({
            "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 60, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        });
        for stream in [true, false] {
            let request = request(stream);
            let turn = turn(reply(Some(details)), &request);
            let script = if stream { stream_script(&request, &turn) } else { completion_script(&request, &turn) };
            let last = payloads(script).pop().unwrap();
            assert_eq!(last["usage"], expected, "stream: {stream}");
        }
    }

    #[test]
    fn without_details_the_usage_has_only_the_three_counts() {
        let request = request(false);
        let turn = turn(reply(None), &request);
        let body = payloads(completion_script(&request, &turn)).pop().unwrap();
        assert_eq!(body["usage"], json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}));
    }
}
