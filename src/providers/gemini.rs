//! Google Gemini's `streamGenerateContent` with `alt=sse`: each event a partial response; the last one
//! carries `finishReason`, and the stream then simply closes.

use eventsource_stream::Event;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::decode::{self, Decoder};
use super::http::{self, HttpClient};
use super::{
    ChatChunk, ChatMessage, ChatRequest, ChatRole, ChunkStream, Credentials, ProviderError, ProviderErrorKind,
};

#[derive(Debug, Clone)]
pub struct GeminiProvider {
    pub http: HttpClient,
    pub credentials: Credentials,
}

impl GeminiProvider {
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        if !request.model.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_')) {
            return Err(ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                "the model name is not a Gemini model name",
            ));
        }
        let contents: Vec<Value> = request.messages.iter().map(content).collect();
        let mut body = json!({
            "contents": contents,
            "systemInstruction": { "parts": [{ "text": request.system }] },
            "generationConfig": { "maxOutputTokens": request.max_output_tokens },
        });
        if !request.tools.is_empty() {
            // `parametersJsonSchema` takes JSON Schema as MCP servers write it (`parameters` takes only
            // Gemini's OpenAPI subset).
            let declarations: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| {
                    json!({ "name": tool.name, "description": tool.description, "parametersJsonSchema": tool.parameters })
                })
                .collect();
            body["tools"] = json!([{ "functionDeclarations": declarations }]);
            if !request.tool_calls_allowed {
                body["toolConfig"] = json!({ "functionCallingConfig": { "mode": "NONE" } });
            }
        }
        let url = format!(
            "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
            self.credentials.base_url.trim_end_matches('/'),
            request.model
        );
        let key = self.credentials.api_key.expose_secret();
        let response =
            self.http.send(self.http.client.post(url).header("x-goog-api-key", key).json(&body), key).await?;
        let decoder = GeminiDecoder { calls: 0, done: false, secret: key.to_owned() };
        Ok(decode::decode_stream(response, decoder, self.http.settings.idle_timeout))
    }
}

/// One message as Gemini content: text parts, `functionCall` parts from the model, `functionResponse`
/// parts (whose `response` must be an object) from the user's side.
fn content(message: &ChatMessage) -> Value {
    let role = match message.role {
        ChatRole::User => "user",
        ChatRole::Assistant => "model",
    };
    let mut parts: Vec<Value> = message
        .tool_results
        .iter()
        .map(|result| {
            let response = match &result.content {
                Value::Object(_) if !result.is_error => result.content.clone(),
                _ if result.is_error => json!({ "error": result.text() }),
                other => json!({ "result": other }),
            };
            json!({ "functionResponse": { "name": result.name, "response": response } })
        })
        .collect();
    if !message.content.is_empty() || (parts.is_empty() && message.tool_calls.is_empty()) {
        parts.push(json!({ "text": message.content }));
    }
    parts.extend(
        message.tool_calls.iter().map(|call| json!({ "functionCall": { "name": call.name, "args": call.arguments } })),
    );
    json!({ "role": role, "parts": parts })
}

struct GeminiDecoder {
    /// Gemini sends each function call whole and without an index; calls are numbered in order.
    calls: u32,
    done: bool,
    secret: String,
}

impl Decoder for GeminiDecoder {
    fn decode(&mut self, event: &Event) -> Result<Vec<ChatChunk>, ProviderError> {
        let data = http::parse_json(&event.data)?;
        if let Some(error) = data.get("error") {
            return Err(http::in_stream_error(error, &self.secret));
        }
        let mut chunks = Vec::new();
        let candidate = &data["candidates"][0];
        for part in candidate["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str().filter(|text| !text.is_empty()) {
                chunks.push(ChatChunk::Text(text.to_owned()));
            }
            if let Some(call) = part.get("functionCall") {
                chunks.push(ChatChunk::ToolCall {
                    index: self.calls,
                    id: Some(format!("call_{}", self.calls)),
                    name: call["name"].as_str().map(str::to_owned),
                    arguments: call.get("args").map_or_else(|| "{}".to_owned(), Value::to_string),
                });
                self.calls += 1;
            }
        }
        let usage = &data["usageMetadata"];
        if usage.is_object() {
            chunks.push(ChatChunk::Usage {
                input_tokens: decode::count(&usage["promptTokenCount"]),
                output_tokens: decode::count(&usage["candidatesTokenCount"]),
            });
        }
        if candidate.get("finishReason").is_some_and(Value::is_string) {
            self.done = true;
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

    fn event(data: &Value) -> Event {
        Event { event: "message".to_owned(), data: data.to_string(), id: String::new(), retry: None }
    }

    #[test]
    fn decodes_text_function_calls_usage_and_the_finish() {
        let mut decoder = GeminiDecoder { calls: 0, done: false, secret: "k".into() };
        let first = json!({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
                           "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1, "totalTokenCount": 8}});
        assert_eq!(
            decoder.decode(&event(&first)).unwrap(),
            [ChatChunk::Text("Hel".into()), ChatChunk::Usage { input_tokens: 7, output_tokens: 1 }]
        );
        assert!(!decoder.finished());
        let last = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "crm_lookup", "args": {"id": 1}}}], "role": "model"},
                                          "finishReason": "STOP", "index": 0}],
                          "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 4, "totalTokenCount": 11}});
        assert_eq!(
            decoder.decode(&event(&last)).unwrap(),
            [
                ChatChunk::ToolCall {
                    index: 0,
                    id: Some("call_0".into()),
                    name: Some("crm_lookup".into()),
                    arguments: "{\"id\":1}".into()
                },
                ChatChunk::Usage { input_tokens: 7, output_tokens: 4 },
            ]
        );
        assert!(decoder.finished());
    }
}
