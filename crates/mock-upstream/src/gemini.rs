//! Gemini (`POST /v1beta/models/{model}:streamGenerateContent?alt=sse` and `:generateContent`): CRLF-framed
//! `data: {GenerateContentResponse}` chunks that end by closing the stream, and `{"error":{code,message,status}}`.
//! The embedding methods on the same path are answered by `gemini_embeddings`.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::script::{self, Request, Turn, fresh_id, text_words};
use crate::wire::{Script, Step, json};

fn query(uri: &Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri).map(|Query(query)| query).unwrap_or_default()
}

/// The `x-goog-api-key` header, else the `key` query parameter.
pub(crate) fn api_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let header = headers.get("x-goog-api-key").and_then(|value| value.to_str().ok()).map(str::trim);
    let key = header.map(str::to_owned).or_else(|| query(uri).remove("key"))?;
    (!key.is_empty()).then_some(key)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
}

pub(crate) fn error_body(status: StatusCode, message: &str) -> String {
    let name = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500.. => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    };
    json(&ErrorBody { error: ErrorDetail { code: status.as_u16(), message, status: name } })
}

/// Why a Gemini request was refused, with the status Google uses for it.
pub(crate) type Refusal = (StatusCode, String);

/// The model and the method after the colon in `/v1beta/models/MODEL:METHOD`, which the route cannot split itself.
pub(crate) fn target(uri: &Uri) -> Option<(String, String)> {
    let rest = uri.path().strip_prefix("/v1beta/models/")?.replace("%3A", ":").replace("%3a", ":");
    let (model, method) = rest.rsplit_once(':')?;
    Some((model.to_owned(), method.to_owned()))
}

/// Reads the model and a content-generation method from the path, checks the body, counts the prompt's words
/// (system instruction included).
pub(crate) fn parse(uri: &Uri, body: &Value) -> Result<Request, Refusal> {
    let not_found = || (StatusCode::NOT_FOUND, format!("Method not found: {}", uri.path()));
    let (model, method) = target(uri).ok_or_else(not_found)?;
    let stream = match method.as_str() {
        "streamGenerateContent" => true,
        "generateContent" => false,
        _ => return Err(not_found()),
    };
    if stream && query(uri).get("alt").map(String::as_str) != Some("sse") {
        // Without alt=sse Google streams one JSON array instead; the service's clients always ask for SSE.
        return Err((StatusCode::BAD_REQUEST, "mock-upstream serves streamGenerateContent only with alt=sse".into()));
    }
    let contents = body.get("contents").and_then(Value::as_array).ok_or_else(|| {
        (StatusCode::BAD_REQUEST, "* GenerateContentRequest.contents: contents is not specified".into())
    })?;
    let parts_words = |content: &Value| content.get("parts").map_or(0, text_words);
    let system_words = body.get("systemInstruction").map_or(0, parts_words);
    let content_words: u32 = contents.iter().map(parts_words).sum();
    let max_output_tokens =
        body.pointer("/generationConfig/maxOutputTokens").and_then(Value::as_u64).map(script::saturate_u64);
    Ok(Request {
        model,
        stream,
        include_usage: false,
        prompt_words: system_words.saturating_add(content_words),
        max_output_tokens,
    })
}

/// Gemini has no tool-call ids on the wire; the generated ones only keep [`Turn`] uniform.
pub(crate) fn turn(reply: crate::Reply, request: &Request) -> Turn {
    Turn::new(reply, request, "call_", 24)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    candidates: [Candidate<'a>; 1],
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a> {
    Text {
        text: &'a str,
    },
    FunctionCall {
        #[serde(rename = "functionCall")]
        function_call: FunctionCall<'a>,
    },
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a Value,
}

/// `promptTokenCount` includes the cached tokens; `candidatesTokenCount` excludes the thoughts, which
/// `totalTokenCount` adds. Like Google's JSON, which leaves out zero counts, the cache and thought counts appear
/// only when a scripted [`crate::UsageDetails`] makes them more than 0.
#[derive(Serialize)]
#[expect(clippy::struct_field_names, reason = "the field names are the provider's wire format")]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u32,
    candidates_token_count: u32,
    total_token_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u32>,
}

/// Builds chunks for one response: the same `responseId`, `modelVersion` and prompt counts on each.
struct Chunks<'a> {
    model: &'a str,
    response_id: String,
    prompt_tokens: u32,
    cached_tokens: Option<u32>,
    /// The thinking comes before the answer, so every chunk reports all of it.
    thoughts_tokens: Option<u32>,
}

impl<'a> Chunks<'a> {
    fn new(request: &'a Request, turn: &Turn) -> Chunks<'a> {
        let positive = |count: u32| (count > 0).then_some(count);
        Chunks {
            model: &request.model,
            response_id: fresh_id("", 23),
            prompt_tokens: turn.input_tokens,
            cached_tokens: turn.details.and_then(|details| positive(details.cache_read)),
            thoughts_tokens: turn.details.and_then(|details| positive(details.reasoning)),
        }
    }

    fn chunk(&self, parts: Vec<Part<'_>>, finish_reason: Option<&'static str>, answer_tokens: u32) -> String {
        json(&Chunk {
            candidates: [Candidate { content: Content { parts, role: "model" }, finish_reason, index: 0 }],
            usage_metadata: UsageMetadata {
                prompt_token_count: self.prompt_tokens,
                candidates_token_count: answer_tokens,
                total_token_count: self
                    .prompt_tokens
                    .saturating_add(answer_tokens)
                    .saturating_add(self.thoughts_tokens.unwrap_or(0)),
                cached_content_token_count: self.cached_tokens,
                thoughts_token_count: self.thoughts_tokens,
            },
            model_version: self.model,
            response_id: &self.response_id,
        })
    }
}

fn sse(chunk: &str) -> Bytes {
    Bytes::from(format!("data: {chunk}\r\n\r\n"))
}

fn function_calls(turn: &Turn) -> impl Iterator<Item = Part<'_>> {
    turn.tool_calls
        .iter()
        .map(|call| Part::FunctionCall { function_call: FunctionCall { name: &call.name, args: &call.arguments } })
}

/// One chunk per text piece, one per function call (whole), then a closing chunk with an empty text part,
/// `finishReason` (`STOP`, or `MAX_TOKENS` when cut) and the final usage; the stream then simply ends.
fn stream_script(request: &Request, turn: &Turn) -> Script {
    let chunks = Chunks::new(request, turn);
    let mut steps = Vec::new();
    for (sent, piece) in turn.pieces.iter().enumerate() {
        let chunk = chunks.chunk(vec![Part::Text { text: piece }], None, turn.answer_so_far(sent + 1));
        steps.push(Step::Content(sse(&chunk)));
    }
    for part in function_calls(turn) {
        steps.push(Step::Content(sse(&chunks.chunk(vec![part], None, turn.answer_so_far(turn.pieces.len())))));
    }
    let last = chunks.chunk(vec![Part::Text { text: "" }], Some(finish_reason(turn)), turn.answer_tokens());
    steps.push(Step::Closing(sse(&last)));
    Script { content_type: "text/event-stream", steps, malformed: "data: {\"candidates\": [\r\n\r\n" }
}

/// Gemini has no finish reason for function calls: they end with `STOP` too.
fn finish_reason(turn: &Turn) -> &'static str {
    if turn.cut { "MAX_TOKENS" } else { "STOP" }
}

/// The non-streaming `generateContent` response: all text in one part, then the function calls.
fn response_script(request: &Request, turn: &Turn) -> Script {
    let chunks = Chunks::new(request, turn);
    let text = turn.text();
    let mut parts = Vec::new();
    if !text.is_empty() || turn.tool_calls.is_empty() {
        parts.push(Part::Text { text: &text });
    }
    parts.extend(function_calls(turn));
    let body = chunks.chunk(parts, Some(finish_reason(turn)), turn.answer_tokens());
    Script {
        content_type: "application/json",
        steps: vec![Step::Closing(Bytes::from(body))],
        malformed: "{\"candidates\": [",
    }
}

pub(crate) fn respond(request: &Request, turn: &Turn) -> Response {
    let script = if request.stream { stream_script(request, turn) } else { response_script(request, turn) };
    script.into_response(turn)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::payloads;
    use crate::{Reply, UsageDetails};

    fn request(stream: bool) -> Request {
        let model = "gemini-2.5-flash".into();
        Request { model, stream, include_usage: false, prompt_words: 3, max_output_tokens: None }
    }

    fn reply(details: Option<UsageDetails>) -> Reply {
        Reply { text: "Hello big world".into(), usage: Some((100, 20)), details, ..Reply::default() }
    }

    #[test]
    fn cached_tokens_are_inside_the_prompt_and_thoughts_outside_the_candidates() {
        let details = UsageDetails { cache_read: 60, cache_write: 10, reasoning: 5 };
        let request = request(true);
        let chunks = payloads(stream_script(&request, &turn(reply(Some(details)), &request)));
        assert_eq!(chunks.len(), 4, "three pieces and the closing chunk");
        for (chunk, candidates) in chunks.iter().zip([1, 2, 3, 15]) {
            assert_eq!(
                chunk["usageMetadata"],
                json!({"promptTokenCount": 100, "candidatesTokenCount": candidates,
                       "totalTokenCount": 105 + candidates, "cachedContentTokenCount": 60, "thoughtsTokenCount": 5})
            );
        }
        let request = self::request(false);
        let body = payloads(response_script(&request, &turn(reply(Some(details)), &request))).pop().unwrap();
        assert_eq!(
            body["usageMetadata"],
            json!({"promptTokenCount": 100, "candidatesTokenCount": 15, "totalTokenCount": 120,
                   "cachedContentTokenCount": 60, "thoughtsTokenCount": 5})
        );
    }

    #[test]
    fn zero_counts_are_left_out_as_google_leaves_them_out() {
        let request = request(false);
        for details in [None, Some(UsageDetails::default())] {
            let body = payloads(response_script(&request, &turn(reply(details), &request))).pop().unwrap();
            let expected = json!({"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120});
            assert_eq!(body["usageMetadata"], expected, "{details:?}");
        }
    }
}
