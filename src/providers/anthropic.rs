//! Anthropic's Messages API, streaming: named SSE events from `message_start` to `message_stop`.

use eventsource_stream::Event;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::decode::{self, Decoder};
use super::http::{self, HttpClient};
use super::options::{ResponseFormat, ToolChoice, unsupported};
use super::{ChatChunk, ChatMessage, ChatRequest, ChunkStream, Credentials, FinishReason, ProviderError};

const API_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    pub http: HttpClient,
    pub credentials: Credentials,
}

impl AnthropicProvider {
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let messages: Vec<Value> = request.messages.iter().map(message).collect();
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_output_tokens.unwrap_or_else(|| max_output_tokens(&request.model)),
            "stream": true,
        });
        if !request.system.is_empty() {
            body["system"] = json!(request.system);
        }
        apply_options(&mut body, request)?;
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| json!({ "name": tool.name, "description": tool.description, "input_schema": tool.parameters }))
                .collect();
            if !request.tool_calls_allowed {
                body["tool_choice"] = json!({ "type": "none" });
            }
        }
        let url = format!("{}/v1/messages", self.credentials.base_url.trim_end_matches('/'));
        let key = self.credentials.api_key.expose_secret();
        let builder =
            self.http.client.post(url).header("x-api-key", key).header("anthropic-version", API_VERSION).json(&body);
        let response = self.http.send(builder, key).await?;
        let decoder = AnthropicDecoder { input_tokens: 0, done: false, secret: key.to_owned() };
        Ok(decode::decode_stream(response, decoder, self.http.settings.idle_timeout))
    }
}

/// The caller's options in Anthropic's fields; what Anthropic has no field for is refused.
fn apply_options(body: &mut Value, request: &ChatRequest) -> Result<(), ProviderError> {
    let options = &request.options;
    if options.seed.is_some() {
        return Err(unsupported("anthropic", "seed"));
    }
    if matches!(options.response_format, Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })) {
        return Err(unsupported("anthropic", "response_format"));
    }
    if let Some(temperature) = options.temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(top_p) = options.top_p {
        body["top_p"] = json!(top_p);
    }
    if !options.stop.is_empty() {
        body["stop_sequences"] = json!(options.stop);
    }
    if let Some(user) = &options.user {
        body["metadata"] = json!({ "user_id": user });
    }
    let mut choice = match &options.tool_choice {
        None if options.parallel_tool_calls == Some(false) => Some(json!({ "type": "auto" })),
        None => None,
        Some(ToolChoice::Auto) => Some(json!({ "type": "auto" })),
        Some(ToolChoice::None) => Some(json!({ "type": "none" })),
        Some(ToolChoice::Required) => Some(json!({ "type": "any" })),
        Some(ToolChoice::Function(name)) => Some(json!({ "type": "tool", "name": name })),
    };
    if let Some(choice) = choice.as_mut().filter(|_| options.parallel_tool_calls == Some(false)) {
        choice["disable_parallel_tool_use"] = Value::Bool(true);
    }
    if let Some(choice) = choice {
        body["tool_choice"] = choice;
    }
    Ok(())
}

/// One message in Messages form: plain text, or content blocks when tools are involved (`tool_use` on
/// the assistant's side, `tool_result` on the user's).
fn message(message: &ChatMessage) -> Value {
    if message.tool_calls.is_empty() && message.tool_results.is_empty() {
        return json!({ "role": message.role, "content": message.content });
    }
    let mut blocks: Vec<Value> = message
        .tool_results
        .iter()
        .map(|result| {
            json!({ "type": "tool_result", "tool_use_id": result.call_id, "content": result.content,
                    "is_error": result.is_error })
        })
        .collect();
    if !message.content.is_empty() {
        blocks.push(json!({ "type": "text", "text": message.content }));
    }
    blocks.extend(
        message.tool_calls.iter().map(
            |call| json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments_object() }),
        ),
    );
    json!({ "role": message.role, "content": blocks })
}

/// Anthropic requires `max_tokens`. When the caller set none, the model's own ceiling is sent, so the
/// answer is as long as the model can make it (an older model refuses a larger value).
fn max_output_tokens(model: &str) -> u32 {
    const CEILINGS: &[(&str, u32)] = &[
        ("claude-3-haiku", 4_096),
        ("claude-3-opus", 4_096),
        ("claude-3-sonnet", 4_096),
        ("claude-3-5-", 8_192),
        ("claude-3-7-", 64_000),
        ("claude-opus-4-0", 32_000),
        ("claude-opus-4-1", 32_000),
        ("claude-opus-4-2", 32_000),
        ("claude-opus-4", 64_000),
        ("claude-sonnet-4", 64_000),
        ("claude-haiku-4", 64_000),
    ];
    CEILINGS.iter().find(|(prefix, _)| model.starts_with(prefix)).map_or(8_192, |(_, ceiling)| *ceiling)
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

struct AnthropicDecoder {
    input_tokens: u32,
    done: bool,
    secret: String,
}

impl Decoder for AnthropicDecoder {
    fn decode(&mut self, event: &Event) -> Result<Vec<ChatChunk>, ProviderError> {
        let data = http::parse_json(&event.data)?;
        let mut chunks = Vec::new();
        match data["type"].as_str().unwrap_or(event.event.as_str()) {
            "message_start" => self.input_tokens = decode::count(&data["message"]["usage"]["input_tokens"]),
            "content_block_start" if data["content_block"]["type"] == "tool_use" => {
                chunks.push(ChatChunk::ToolCall {
                    index: decode::count(&data["index"]),
                    id: data["content_block"]["id"].as_str().map(str::to_owned),
                    name: data["content_block"]["name"].as_str().map(str::to_owned),
                    arguments: String::new(),
                });
            }
            "content_block_delta" => match data["delta"]["type"].as_str() {
                Some("text_delta") => {
                    let text = data["delta"]["text"].as_str().unwrap_or_default();
                    if !text.is_empty() {
                        chunks.push(ChatChunk::Text(text.to_owned()));
                    }
                }
                Some("input_json_delta") => chunks.push(ChatChunk::ToolCall {
                    index: decode::count(&data["index"]),
                    id: None,
                    name: None,
                    arguments: data["delta"]["partial_json"].as_str().unwrap_or_default().to_owned(),
                }),
                _ => {}
            },
            "message_delta" => {
                chunks.push(ChatChunk::Usage {
                    input_tokens: self.input_tokens,
                    output_tokens: decode::count(&data["usage"]["output_tokens"]),
                });
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    chunks.push(ChatChunk::Finish(stop_reason(reason)));
                }
            }
            "message_stop" => self.done = true,
            "error" => return Err(http::in_stream_error(&data["error"], &self.secret)),
            _ => {}
        }
        Ok(chunks)
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &Value) -> Event {
        Event { event: name.to_owned(), data: data.to_string(), id: String::new(), retry: None }
    }

    #[test]
    fn decodes_a_message_with_text_a_tool_call_and_usage() {
        let mut decoder = AnthropicDecoder { input_tokens: 0, done: false, secret: "k".into() };
        let sequence = [
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 25, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            ),
            ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "crm_lookup", "input": {}}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"id\": 1}"}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ];
        let chunks: Vec<ChatChunk> =
            sequence.iter().flat_map(|(name, data)| decoder.decode(&event(name, data)).unwrap()).collect();
        assert_eq!(
            chunks,
            [
                ChatChunk::Text("Hi".into()),
                ChatChunk::ToolCall {
                    index: 1,
                    id: Some("toolu_1".into()),
                    name: Some("crm_lookup".into()),
                    arguments: String::new()
                },
                ChatChunk::ToolCall { index: 1, id: None, name: None, arguments: "{\"id\": 1}".into() },
                ChatChunk::Usage { input_tokens: 25, output_tokens: 9 },
                ChatChunk::Finish(FinishReason::ToolCalls),
            ]
        );
        assert!(decoder.finished());
    }

    #[test]
    fn every_stop_reason_has_its_finish_and_every_model_a_ceiling() {
        for (reason, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("model_context_window_exceeded", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
        ] {
            assert_eq!(stop_reason(reason), expected, "{reason}");
        }
        for (model, ceiling) in [
            ("claude-3-haiku-20240307", 4_096),
            ("claude-3-5-sonnet-latest", 8_192),
            ("claude-3-7-sonnet-20250219", 64_000),
            ("claude-opus-4-1-20250805", 32_000),
            ("claude-opus-4-5", 64_000),
            ("claude-sonnet-4-5", 64_000),
            ("claude-haiku-4-5", 64_000),
            ("someone-elses-model", 8_192),
        ] {
            assert_eq!(max_output_tokens(model), ceiling, "{model}");
        }
    }

    #[test]
    fn an_error_event_is_an_error() {
        let mut decoder = AnthropicDecoder { input_tokens: 0, done: false, secret: "k".into() };
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(decoder.decode(&event("error", &error)).unwrap_err().code(), "upstream_unavailable");
    }
}
