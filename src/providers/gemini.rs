//! Google Gemini's `streamGenerateContent` with `alt=sse`: each event a partial response; the last one
//! carries `finishReason`, and the stream then simply closes.

use eventsource_stream::Event;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::decode::{self, Decoder};
use super::http::{self, HttpClient};
use super::options::{GenerationOptions, ResponseFormat, ToolChoice, unsupported};
use super::{
    ChatChunk, ChatMessage, ChatRequest, ChatRole, ChunkStream, Credentials, FinishReason, ProviderError,
    ProviderErrorKind,
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
        });
        if !request.system.is_empty() {
            body["systemInstruction"] = json!({ "parts": [{ "text": request.system }] });
        }
        let mut generation = generation_config(&request.options)?;
        if let Some(limit) = request.max_output_tokens {
            generation.insert("maxOutputTokens".to_owned(), json!(limit));
        }
        if !generation.is_empty() {
            body["generationConfig"] = Value::Object(generation);
        }
        if let Some(choice) = &request.options.tool_choice {
            let (mode, only) = match choice {
                ToolChoice::Auto => ("AUTO", None),
                ToolChoice::None => ("NONE", None),
                ToolChoice::Required => ("ANY", None),
                ToolChoice::Function(name) => ("ANY", Some(name)),
            };
            let mut config = json!({ "mode": mode });
            if let Some(name) = only {
                config["allowedFunctionNames"] = json!([name]);
            }
            body["toolConfig"] = json!({ "functionCallingConfig": config });
        }
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
/// The caller's options in Gemini's `generationConfig`; what Gemini has no field for is refused.
fn generation_config(options: &GenerationOptions) -> Result<serde_json::Map<String, Value>, ProviderError> {
    if options.parallel_tool_calls == Some(false) {
        return Err(unsupported("gemini", "parallel_tool_calls"));
    }
    if options.user.is_some() {
        return Err(unsupported("gemini", "user"));
    }
    let mut config = serde_json::Map::new();
    let mut set = |field: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(field.to_owned(), value);
        }
    };
    set("temperature", options.temperature.map(|value| json!(value)));
    set("topP", options.top_p.map(|value| json!(value)));
    set("seed", options.seed.map(|value| json!(value)));
    set("stopSequences", (!options.stop.is_empty()).then(|| json!(options.stop)));
    match &options.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => set("responseMimeType", Some(json!("application/json"))),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            set("responseMimeType", Some(json!("application/json")));
            set("responseJsonSchema", Some(schema.clone()));
        }
    }
    Ok(config)
}

fn content(message: &ChatMessage) -> Value {
    let role = match message.role {
        ChatRole::User => "user",
        ChatRole::Assistant => "model",
    };
    let mut parts: Vec<Value> = message
        .tool_results
        .iter()
        .map(|result| {
            // Gemini takes an object: a JSON object as it is, anything else wrapped.
            let parsed = serde_json::from_str::<Value>(&result.content).ok();
            let response = match parsed {
                _ if result.is_error => json!({ "error": result.content }),
                Some(Value::Object(object)) => Value::Object(object),
                Some(other) => json!({ "result": other }),
                None => json!({ "result": result.content }),
            };
            json!({ "functionResponse": { "name": result.name, "response": response } })
        })
        .collect();
    if !message.content.is_empty() || (parts.is_empty() && message.tool_calls.is_empty()) {
        parts.push(json!({ "text": message.content }));
    }
    parts.extend(
        message
            .tool_calls
            .iter()
            .map(|call| json!({ "functionCall": { "name": call.name, "args": call.arguments_object() } })),
    );
    json!({ "role": role, "parts": parts })
}

struct GeminiDecoder {
    /// Gemini sends each function call whole and without an index; calls are numbered in order.
    calls: u32,
    done: bool,
    secret: String,
}

/// Gemini has no reason of its own for function calls (they end with `STOP`); most others are its
/// safety and recitation filters.
fn finish_reason(reason: &str, called: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "STOP" | "FINISH_REASON_UNSPECIFIED" | "OTHER" | "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => {
            if called { FinishReason::ToolCalls } else { FinishReason::Stop }
        }
        _ => FinishReason::ContentFilter,
    }
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
        if let Some(reason) = candidate["finishReason"].as_str() {
            chunks.push(ChatChunk::Finish(finish_reason(reason, self.calls > 0)));
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
                ChatChunk::Finish(FinishReason::ToolCalls),
            ]
        );
        assert!(decoder.finished());
    }

    #[test]
    fn every_finish_reason_is_named_as_openai_names_it() {
        for (reason, called, expected) in [
            ("STOP", false, FinishReason::Stop),
            ("STOP", true, FinishReason::ToolCalls),
            ("MAX_TOKENS", false, FinishReason::Length),
            ("SAFETY", false, FinishReason::ContentFilter),
            ("RECITATION", false, FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", false, FinishReason::ContentFilter),
            ("OTHER", false, FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason, called), expected, "{reason}");
        }
    }
}
