//! OpenAI chat completions, and any OpenAI-compatible server (Ollama, vLLM, Groq, Azure…) by base URL.
//!
//! Spoken over reqwest rather than async-openai: async-openai's error type keeps the status but drops the
//! response headers, so `Retry-After` could not be honoured, and it retries on its own, which would
//! multiply with the engine's retry policy.

use eventsource_stream::Event;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::decode::{self, Decoder};
use super::http::{self, HttpClient};
use super::options::{ResponseFormat, ToolChoice};
use super::{ChatChunk, ChatRequest, ChunkStream, Credentials, FinishReason, ProviderError};
use crate::tokens::TokenUsage;

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    pub http: HttpClient,
    pub credentials: Credentials,
    /// OpenAI itself takes `max_completion_tokens`; compatible servers mostly know only `max_tokens`.
    pub compatible: bool,
}

impl OpenAiProvider {
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let mut body = json!({
            "model": request.model,
            "messages": messages(request),
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        apply_options(&mut body, request);
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| {
                    json!({ "type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.parameters,
                    }})
                })
                .collect();
            if !request.tool_calls_allowed {
                body["tool_choice"] = json!("none");
            }
        }
        if let Some(limit) = request.max_output_tokens {
            let limit_field = if self.compatible { "max_tokens" } else { "max_completion_tokens" };
            body[limit_field] = json!(limit);
        }
        let url = format!("{}/chat/completions", self.credentials.base_url.trim_end_matches('/'));
        let key = self.credentials.api_key.expose_secret();
        let response = self.http.send(self.http.client.post(url).bearer_auth(key).json(&body), key).await?;
        let decoder = OpenAiDecoder { done: false, secret: key.to_owned() };
        Ok(decode::decode_stream(response, decoder, self.http.settings.idle_timeout))
    }
}

/// The caller's options in OpenAI's own fields (the caller spoke OpenAI's format: they pass as given).
fn apply_options(body: &mut Value, request: &ChatRequest) {
    let options = &request.options;
    let fields = [
        ("temperature", options.temperature.map(|value| json!(value))),
        ("top_p", options.top_p.map(|value| json!(value))),
        ("seed", options.seed.map(|value| json!(value))),
        ("stop", (!options.stop.is_empty()).then(|| json!(options.stop))),
        ("parallel_tool_calls", options.parallel_tool_calls.map(Value::Bool)),
        ("user", options.user.as_ref().map(|user| json!(user))),
        (
            "response_format",
            options.response_format.as_ref().map(|format| match format {
                ResponseFormat::Text => json!({ "type": "text" }),
                ResponseFormat::JsonObject => json!({ "type": "json_object" }),
                ResponseFormat::JsonSchema { given, .. } => given.clone(),
            }),
        ),
        (
            "tool_choice",
            options.tool_choice.as_ref().map(|choice| match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => json!({ "type": "function", "function": { "name": name } }),
            }),
        ),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            body[field] = value;
        }
    }
}

/// The conversation in Chat Completions form: a tool call rides on its assistant message, and each
/// result is a `tool` message of its own.
fn messages(request: &ChatRequest) -> Vec<Value> {
    // A caller that sent no system message gets none added.
    let mut messages: Vec<Value> = (!request.system.is_empty())
        .then(|| json!({ "role": "system", "content": request.system }))
        .into_iter()
        .collect();
    for message in &request.messages {
        for result in &message.tool_results {
            messages.push(json!({ "role": "tool", "tool_call_id": result.call_id, "content": result.content }));
        }
        if message.tool_calls.is_empty() {
            if !message.content.is_empty() || message.tool_results.is_empty() {
                messages.push(json!({ "role": message.role, "content": message.content }));
            }
            continue;
        }
        let calls: Vec<Value> = message
            .tool_calls
            .iter()
            .map(|call| {
                json!({ "id": call.id, "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments } })
            })
            .collect();
        let content = if message.content.is_empty() { Value::Null } else { json!(message.content) };
        messages.push(json!({ "role": "assistant", "content": content, "tool_calls": calls }));
    }
    messages
}

struct OpenAiDecoder {
    done: bool,
    secret: String,
}

impl Decoder for OpenAiDecoder {
    fn decode(&mut self, event: &Event) -> Result<Vec<ChatChunk>, ProviderError> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let chunk = http::parse_json(&event.data)?;
        decode_chunk(&chunk, &self.secret)
    }

    fn finished(&self) -> bool {
        self.done
    }
}

fn decode_chunk(chunk: &Value, secret: &str) -> Result<Vec<ChatChunk>, ProviderError> {
    if let Some(error) = chunk.get("error") {
        return Err(http::in_stream_error(error, secret));
    }
    let mut chunks = Vec::new();
    let delta = &chunk["choices"][0]["delta"];
    if let Some(text) = delta["content"].as_str().filter(|text| !text.is_empty()) {
        chunks.push(ChatChunk::Text(text.to_owned()));
    }
    for call in delta["tool_calls"].as_array().into_iter().flatten() {
        chunks.push(ChatChunk::ToolCall {
            index: decode::count(&call["index"]),
            id: call["id"].as_str().map(str::to_owned),
            name: call["function"]["name"].as_str().map(str::to_owned),
            arguments: call["function"]["arguments"].as_str().unwrap_or_default().to_owned(),
        });
    }
    if let Some(reason) = chunk["choices"][0]["finish_reason"].as_str() {
        chunks.push(ChatChunk::Finish(finish_reason(reason)));
    }
    let usage = &chunk["usage"];
    if usage.is_object() {
        // Cached prompt tokens and reasoning tokens are parts of the two totals.
        chunks.push(ChatChunk::Usage(TokenUsage {
            input: decode::tokens(&usage["prompt_tokens"]),
            output: decode::tokens(&usage["completion_tokens"]),
            cached_input: decode::tokens(&usage["prompt_tokens_details"]["cached_tokens"]),
            cache_write: 0,
            reasoning: decode::tokens(&usage["completion_tokens_details"]["reasoning_tokens"]),
        }));
    }
    Ok(chunks)
}

/// OpenAI's reasons, and what compatible servers send beside them (`eos`, `abort`…) as a plain stop.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_text_tool_call_fragments_and_usage() {
        let text =
            json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}], "usage": null});
        assert_eq!(decode_chunk(&text, "k").unwrap(), [ChatChunk::Text("Hel".into())]);
        let call = json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "crm.lookup", "arguments": ""}}
        ]}}]});
        assert_eq!(
            decode_chunk(&call, "k").unwrap(),
            [ChatChunk::ToolCall {
                index: 0,
                id: Some("call_1".into()),
                name: Some("crm.lookup".into()),
                arguments: String::new()
            }]
        );
        let fragment = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"id\""}}]}}]});
        assert_eq!(
            decode_chunk(&fragment, "k").unwrap(),
            [ChatChunk::ToolCall { index: 0, id: None, name: None, arguments: "{\"id\"".into() }]
        );
        let usage = json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}});
        assert_eq!(decode_chunk(&usage, "k").unwrap(), [ChatChunk::Usage(TokenUsage::new(12, 5))]);
        for (reason, expected) in [
            ("stop", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("tool_calls", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("eos", FinishReason::Stop),
        ] {
            let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]});
            assert_eq!(decode_chunk(&last, "k").unwrap(), [ChatChunk::Finish(expected)], "{reason}");
        }
    }

    #[test]
    fn an_error_object_in_the_stream_is_an_error() {
        let error = json!({"error": {"message": "overloaded", "type": "server_error"}});
        assert!(decode_chunk(&error, "k").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::providers::decode::testing;

        fn decoder() -> OpenAiDecoder {
            OpenAiDecoder { done: false, secret: "sk-test-key".into() }
        }

        /// One chunk of a Chat Completions stream, and what it decodes to.
        fn piece() -> impl Strategy<Value = (Value, Vec<ChatChunk>)> {
            let choice = |delta: Value, finish: Value| json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            let reasons = vec![
                ("stop", FinishReason::Stop),
                ("length", FinishReason::Length),
                ("tool_calls", FinishReason::ToolCalls),
                ("function_call", FinishReason::ToolCalls),
                ("content_filter", FinishReason::ContentFilter),
                ("eos", FinishReason::Stop),
            ];
            prop_oneof![
                "(?s).{1,24}".prop_map(move |text| {
                    (choice(json!({"content": text}), Value::Null), vec![ChatChunk::Text(text)])
                }),
                (
                    0..4u32,
                    proptest::option::of("call_[A-Za-z0-9]{1,12}"),
                    proptest::option::of("[a-z_.]{1,16}"),
                    "(?s).{0,24}"
                )
                    .prop_map(move |(index, id, name, arguments)| {
                        let call = json!({"index": index, "id": id, "type": "function",
                                          "function": {"name": name, "arguments": arguments}});
                        let chunk = ChatChunk::ToolCall { index, id, name, arguments };
                        (choice(json!({"tool_calls": [call]}), Value::Null), vec![chunk])
                    }),
                prop::sample::select(reasons).prop_map(move |(reason, finish)| {
                    (choice(json!({}), json!(reason)), vec![ChatChunk::Finish(finish)])
                }),
                (any::<u32>(), any::<u32>()).prop_map(|(input_tokens, output_tokens)| {
                    let usage = json!({"choices": [], "usage": {"prompt_tokens": input_tokens,
                                       "completion_tokens": output_tokens, "total_tokens": 0}});
                    (usage, vec![ChatChunk::Usage(TokenUsage::new(u64::from(input_tokens), u64::from(output_tokens)))])
                }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

            /// A stream of text, tool call fragments, usage and a finish decodes to exactly those chunks, however
            /// its bytes are cut and framed, and nothing after `[DONE]` is read.
            #[test]
            fn a_valid_stream_decodes_to_its_chunks_however_it_is_cut(
                pieces in prop::collection::vec(piece(), 0..12),
                framing in testing::framing(),
                trailer in testing::garbage(),
                cuts in testing::cuts(),
            ) {
                let mut frames: Vec<testing::Frame> =
                    pieces.iter().map(|(data, _)| (None, vec![data.to_string()])).collect();
                frames.push((None, vec!["[DONE]".to_owned()]));
                let body = testing::body(&framing, &frames, &trailer);
                let want: Vec<ChatChunk> = pieces.into_iter().flat_map(|(_, chunks)| chunks).collect();
                let whole = testing::outcome(testing::decode_chunks(vec![body.clone()], decoder()));
                prop_assert_eq!(&whole, &Ok(want));
                prop_assert_eq!(testing::outcome(testing::decode_chunks(testing::split(&body, &cuts), decoder())), whole);
            }

            /// Garbage ends in one clear error unless it held `[DONE]`, the same however it is cut.
            #[test]
            fn garbage_ends_in_one_clear_error(body in testing::garbage(), cuts in testing::cuts()) {
                let decoded = testing::decode_chunks(vec![body.clone()], decoder());
                testing::assert_ends_clearly(&decoded, &body, "[DONE]");
                let cut = testing::decode_chunks(testing::split(&body, &cuts), decoder());
                prop_assert_eq!(testing::outcome(cut), testing::outcome(decoded));
            }

            /// Any JSON in an event is chunks or, exactly when it carries `error`, an error; no chunk is empty text.
            #[test]
            fn any_json_event_decodes_or_is_the_error_it_reports(
                chunk in testing::json(&["choices", "delta", "content", "tool_calls", "index", "id", "function",
                                         "name", "arguments", "finish_reason", "usage", "prompt_tokens",
                                         "completion_tokens", "error", "message", "type"]),
            ) {
                match decode_chunk(&chunk, "sk-test-key") {
                    Ok(chunks) => {
                        prop_assert!(chunk.get("error").is_none());
                        prop_assert!(!chunks.contains(&ChatChunk::Text(String::new())));
                    }
                    Err(error) => {
                        prop_assert!(chunk.get("error").is_some());
                        prop_assert!(!error.message.is_empty() && !error.message.contains("sk-test-key"));
                    }
                }
            }
        }
    }
}
