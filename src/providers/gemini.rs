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
use crate::tokens::TokenUsage;

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
            // The cached part is inside the prompt count; thinking is billed as output but counted apart.
            let thoughts = decode::tokens(&usage["thoughtsTokenCount"]);
            chunks.push(ChatChunk::Usage(TokenUsage {
                input: decode::tokens(&usage["promptTokenCount"]),
                output: decode::tokens(&usage["candidatesTokenCount"]) + thoughts,
                cached_input: decode::tokens(&usage["cachedContentTokenCount"]),
                cache_write: 0,
                reasoning: thoughts,
            }));
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
            [ChatChunk::Text("Hel".into()), ChatChunk::Usage(TokenUsage::new(7, 1))]
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
                ChatChunk::Usage(TokenUsage::new(7, 4)),
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

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::providers::decode::testing;

        fn decoder() -> GeminiDecoder {
            GeminiDecoder { calls: 0, done: false, secret: "gemini-test-key".into() }
        }

        /// A part of a candidate's content: text, or a function call with its arguments.
        #[derive(Debug, Clone)]
        enum Part {
            Text(String),
            Call { name: String, args: Value },
        }

        /// One partial response: its parts and, perhaps, its usage.
        type Response = (Vec<Part>, Option<(u32, u32)>);

        fn part() -> impl Strategy<Value = Part> {
            let argument = prop_oneof![
                "(?s).{0,12}".prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
                Just(Value::Null),
            ];
            let args = prop::collection::btree_map("[a-z_]{1,8}", argument, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect()));
            prop_oneof![
                "(?s).{1,24}".prop_map(Part::Text),
                ("[a-z_]{1,16}", args).prop_map(|(name, args)| Part::Call { name, args }),
            ]
        }

        fn response() -> impl Strategy<Value = Response> {
            (prop::collection::vec(part(), 0..4), proptest::option::of((any::<u32>(), any::<u32>())))
        }

        fn data((parts, usage): &Response, finish: Option<&str>) -> Value {
            let parts: Vec<Value> = parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => json!({ "text": text }),
                    Part::Call { name, args } => json!({ "functionCall": { "name": name, "args": args } }),
                })
                .collect();
            let mut data = json!({"candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}]});
            if let Some(reason) = finish {
                data["candidates"][0]["finishReason"] = json!(reason);
            }
            if let Some((prompt, candidates)) = usage {
                data["usageMetadata"] = json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                                               "totalTokenCount": 0});
            }
            data
        }

        /// The chunks the responses must give: calls numbered in order, the finish a tool call if any was made.
        fn expected(responses: &[Response], finish: &str) -> Vec<ChatChunk> {
            let mut chunks = Vec::new();
            let mut calls = 0;
            for (parts, usage) in responses {
                for part in parts {
                    chunks.push(match part.clone() {
                        Part::Text(text) => ChatChunk::Text(text),
                        Part::Call { name, args } => {
                            calls += 1;
                            ChatChunk::ToolCall {
                                index: calls - 1,
                                id: Some(format!("call_{}", calls - 1)),
                                name: Some(name),
                                arguments: args.to_string(),
                            }
                        }
                    });
                }
                chunks.extend(usage.map(|(input_tokens, output_tokens)| {
                    ChatChunk::Usage(TokenUsage::new(u64::from(input_tokens), u64::from(output_tokens)))
                }));
            }
            let finish = match finish {
                "MAX_TOKENS" => FinishReason::Length,
                "STOP" | "OTHER" if calls > 0 => FinishReason::ToolCalls,
                "STOP" | "OTHER" => FinishReason::Stop,
                _ => FinishReason::ContentFilter,
            };
            chunks.push(ChatChunk::Finish(finish));
            chunks
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

            /// A stream of partial responses decodes to exactly their chunks, however its bytes are cut and
            /// framed, and nothing after the response with `finishReason` is read.
            #[test]
            fn a_valid_stream_decodes_to_its_chunks_however_it_is_cut(
                mut responses in prop::collection::vec(response(), 1..8),
                finish in prop::sample::select(vec!["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"]),
                framing in testing::framing(),
                trailer in testing::garbage(),
                cuts in testing::cuts(),
            ) {
                let last = responses.pop().expect("at least one");
                let mut frames: Vec<testing::Frame> =
                    responses.iter().map(|response| (None, vec![data(response, None).to_string()])).collect();
                frames.push((None, vec![data(&last, Some(finish)).to_string()]));
                responses.push(last);
                let body = testing::body(&framing, &frames, &trailer);
                let whole = testing::outcome(testing::decode_chunks(vec![body.clone()], decoder()));
                prop_assert_eq!(&whole, &Ok(expected(&responses, finish)));
                prop_assert_eq!(testing::outcome(testing::decode_chunks(testing::split(&body, &cuts), decoder())), whole);
            }

            /// Garbage ends in one clear error unless it held a finish, the same however it is cut.
            #[test]
            fn garbage_ends_in_one_clear_error(body in testing::garbage(), cuts in testing::cuts()) {
                let decoded = testing::decode_chunks(vec![body.clone()], decoder());
                testing::assert_ends_clearly(&decoded, &body, "finishReason");
                let cut = testing::decode_chunks(testing::split(&body, &cuts), decoder());
                prop_assert_eq!(testing::outcome(cut), testing::outcome(decoded));
            }

            /// Any JSON is chunks, or (exactly when it carries `error`) an error; no empty text; a finish ends it.
            #[test]
            fn any_json_event_decodes_or_is_the_error_it_reports(
                data in testing::json(&["candidates", "content", "parts", "text", "functionCall", "name", "args",
                                        "usageMetadata", "promptTokenCount", "candidatesTokenCount",
                                        "finishReason", "STOP", "error", "status", "message"]),
            ) {
                let mut decoder = decoder();
                let event = Event { event: "message".to_owned(), data: data.to_string(), id: String::new(), retry: None };
                match decoder.decode(&event) {
                    Ok(chunks) => {
                        prop_assert!(data.get("error").is_none());
                        prop_assert!(!chunks.contains(&ChatChunk::Text(String::new())));
                        let finished = chunks.iter().any(|chunk| matches!(chunk, ChatChunk::Finish(_)));
                        prop_assert_eq!(decoder.finished(), finished);
                    }
                    Err(error) => {
                        prop_assert!(data.get("error").is_some());
                        prop_assert!(!error.message.is_empty() && !error.message.contains("gemini-test-key"));
                    }
                }
            }
        }
    }
}
