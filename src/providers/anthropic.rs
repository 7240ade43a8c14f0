//! Anthropic's Messages API, streaming: named SSE events from `message_start` to `message_stop`.

use eventsource_stream::Event;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::decode::{self, Decoder};
use super::http::{self, HttpClient};
use super::{ChatChunk, ChatMessage, ChatRequest, ChunkStream, Credentials, ProviderError};

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
            "system": request.system,
            "messages": messages,
            "max_tokens": request.max_output_tokens,
            "stream": true,
        });
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
            json!({ "type": "tool_result", "tool_use_id": result.call_id, "content": result.text(),
                    "is_error": result.is_error })
        })
        .collect();
    if !message.content.is_empty() {
        blocks.push(json!({ "type": "text", "text": message.content }));
    }
    blocks.extend(
        message
            .tool_calls
            .iter()
            .map(|call| json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments })),
    );
    json!({ "role": message.role, "content": blocks })
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
            "message_delta" => chunks.push(ChatChunk::Usage {
                input_tokens: self.input_tokens,
                output_tokens: decode::count(&data["usage"]["output_tokens"]),
            }),
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
            ]
        );
        assert!(decoder.finished());
    }

    #[test]
    fn an_error_event_is_an_error() {
        let mut decoder = AnthropicDecoder { input_tokens: 0, done: false, secret: "k".into() };
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(decoder.decode(&event("error", &error)).unwrap_err().code(), "upstream_unavailable");
    }
}
