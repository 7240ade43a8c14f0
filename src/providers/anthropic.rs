//! Anthropic's Messages API, streaming: named SSE events from `message_start` to `message_stop`.

use eventsource_stream::Event;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::decode::{self, Decoder};
use super::http::{self, HttpClient};
use super::options::{ResponseFormat, ToolChoice, unsupported};
use super::{ChatChunk, ChatMessage, ChatRequest, ChunkStream, Credentials, FinishReason, ProviderError};
use crate::tokens::TokenUsage;

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
        let decoder = AnthropicDecoder { usage: TokenUsage::default(), done: false, secret: key.to_owned() };
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

/// The prompt's tokens as Anthropic reports them: `input_tokens` counts only what was neither read from
/// nor written to the cache, so the total adds both.
fn prompt_usage(usage: &Value) -> TokenUsage {
    let (fresh, read, written) = (
        decode::tokens(&usage["input_tokens"]),
        decode::tokens(&usage["cache_read_input_tokens"]),
        decode::tokens(&usage["cache_creation_input_tokens"]),
    );
    TokenUsage { input: fresh + read + written, cached_input: read, cache_write: written, ..TokenUsage::default() }
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
    /// The prompt's tokens from `message_start`, completed by each `message_delta`.
    usage: TokenUsage,
    done: bool,
    secret: String,
}

impl Decoder for AnthropicDecoder {
    fn decode(&mut self, event: &Event) -> Result<Vec<ChatChunk>, ProviderError> {
        let data = http::parse_json(&event.data)?;
        let mut chunks = Vec::new();
        match data["type"].as_str().unwrap_or(event.event.as_str()) {
            "message_start" => self.usage = prompt_usage(&data["message"]["usage"]),
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
                // The totals so far; a delta that repeats the prompt's counts has the last word on them.
                let usage = &data["usage"];
                if usage.get("input_tokens").is_some() {
                    self.usage = prompt_usage(usage);
                }
                self.usage.output = decode::tokens(&usage["output_tokens"]);
                chunks.push(ChatChunk::Usage(self.usage));
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
        let mut decoder = AnthropicDecoder { usage: TokenUsage::default(), done: false, secret: "k".into() };
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
                ChatChunk::Usage(TokenUsage::new(25, 9)),
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
        let mut decoder = AnthropicDecoder { usage: TokenUsage::default(), done: false, secret: "k".into() };
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(decoder.decode(&event("error", &error)).unwrap_err().code(), "upstream_unavailable");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::providers::decode::testing;

        fn decoder() -> AnthropicDecoder {
            AnthropicDecoder { usage: TokenUsage::default(), done: false, secret: "sk-ant-test".into() }
        }

        /// One event of a Messages stream.
        #[derive(Debug, Clone)]
        enum Piece {
            MessageStart { input_tokens: u32 },
            ToolStart { index: u32, id: String, name: String },
            TextStart { index: u32 },
            Text { index: u32, text: String },
            Json { index: u32, partial: String },
            Ping,
            BlockStop { index: u32 },
            MessageDelta { stop: Option<(&'static str, FinishReason)>, output_tokens: u32 },
        }

        fn piece() -> impl Strategy<Value = Piece> {
            let stops = vec![
                ("end_turn", FinishReason::Stop),
                ("stop_sequence", FinishReason::Stop),
                ("max_tokens", FinishReason::Length),
                ("tool_use", FinishReason::ToolCalls),
                ("refusal", FinishReason::ContentFilter),
            ];
            prop_oneof![
                any::<u32>().prop_map(|input_tokens| Piece::MessageStart { input_tokens }),
                (0..4u32, "toolu_[A-Za-z0-9]{1,12}", "[a-z_]{1,16}").prop_map(|(index, id, name)| Piece::ToolStart {
                    index,
                    id,
                    name
                }),
                (0..4u32).prop_map(|index| Piece::TextStart { index }),
                (0..4u32, "(?s).{1,24}").prop_map(|(index, text)| Piece::Text { index, text }),
                (0..4u32, "(?s).{0,24}").prop_map(|(index, partial)| Piece::Json { index, partial }),
                Just(Piece::Ping),
                (0..4u32).prop_map(|index| Piece::BlockStop { index }),
                (proptest::option::of(prop::sample::select(stops)), any::<u32>())
                    .prop_map(|(stop, output_tokens)| Piece::MessageDelta { stop, output_tokens }),
            ]
        }

        impl Piece {
            /// The event's name and data, as Anthropic sends them.
            fn event(&self) -> (&'static str, Value) {
                match self {
                    Self::MessageStart { input_tokens } => (
                        "message_start",
                        json!({"type": "message_start", "message": {"id": "msg_1", "role": "assistant",
                               "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
                    ),
                    Self::ToolStart { index, id, name } => (
                        "content_block_start",
                        json!({"type": "content_block_start", "index": index,
                               "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                    ),
                    Self::TextStart { index } => (
                        "content_block_start",
                        json!({"type": "content_block_start", "index": index,
                               "content_block": {"type": "text", "text": ""}}),
                    ),
                    Self::Text { index, text } => (
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": text}}),
                    ),
                    Self::Json { index, partial } => (
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": partial}}),
                    ),
                    Self::Ping => ("ping", json!({"type": "ping"})),
                    Self::BlockStop { index } => {
                        ("content_block_stop", json!({"type": "content_block_stop", "index": index}))
                    }
                    Self::MessageDelta { stop, output_tokens } => (
                        "message_delta",
                        json!({"type": "message_delta", "delta": {"stop_reason": stop.map(|(reason, _)| reason)},
                               "usage": {"output_tokens": output_tokens}}),
                    ),
                }
            }
        }

        /// The chunks a stream of `pieces` must give: usage reports the input of the last `message_start`.
        fn expected(pieces: &[Piece]) -> Vec<ChatChunk> {
            let mut input = 0;
            let mut chunks = Vec::new();
            for piece in pieces {
                match piece.clone() {
                    Piece::MessageStart { input_tokens } => input = input_tokens,
                    Piece::ToolStart { index, id, name } => chunks.push(ChatChunk::ToolCall {
                        index,
                        id: Some(id),
                        name: Some(name),
                        arguments: String::new(),
                    }),
                    Piece::Text { text, .. } => chunks.push(ChatChunk::Text(text)),
                    Piece::Json { index, partial } => {
                        chunks.push(ChatChunk::ToolCall { index, id: None, name: None, arguments: partial });
                    }
                    Piece::MessageDelta { stop, output_tokens } => {
                        chunks.push(ChatChunk::Usage(TokenUsage::new(u64::from(input), u64::from(output_tokens))));
                        chunks.extend(stop.map(|(_, finish)| ChatChunk::Finish(finish)));
                    }
                    Piece::TextStart { .. } | Piece::Ping | Piece::BlockStop { .. } => {}
                }
            }
            chunks
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

            /// A Messages stream decodes to exactly its chunks, however its bytes are cut and framed, and nothing
            /// after `message_stop` is read.
            #[test]
            fn a_valid_stream_decodes_to_its_chunks_however_it_is_cut(
                pieces in prop::collection::vec(piece(), 0..12),
                framing in testing::framing(),
                trailer in testing::garbage(),
                cuts in testing::cuts(),
            ) {
                let mut frames: Vec<testing::Frame> = pieces
                    .iter()
                    .map(Piece::event)
                    .map(|(name, data)| (Some(name.to_owned()), vec![data.to_string()]))
                    .collect();
                frames.push((Some("message_stop".to_owned()), vec![json!({"type": "message_stop"}).to_string()]));
                let body = testing::body(&framing, &frames, &trailer);
                let whole = testing::outcome(testing::decode_chunks(vec![body.clone()], decoder()));
                prop_assert_eq!(&whole, &Ok(expected(&pieces)));
                prop_assert_eq!(testing::outcome(testing::decode_chunks(testing::split(&body, &cuts), decoder())), whole);
            }

            /// Garbage ends in one clear error unless it held `message_stop`, the same however it is cut.
            #[test]
            fn garbage_ends_in_one_clear_error(body in testing::garbage(), cuts in testing::cuts()) {
                let decoded = testing::decode_chunks(vec![body.clone()], decoder());
                testing::assert_ends_clearly(&decoded, &body, "message_stop");
                let cut = testing::decode_chunks(testing::split(&body, &cuts), decoder());
                prop_assert_eq!(testing::outcome(cut), testing::outcome(decoded));
            }

            /// Any JSON under any event name is chunks, or an error only for an `error` event; no empty text.
            #[test]
            fn any_json_event_decodes_or_is_the_error_it_reports(
                name in prop::sample::select(vec!["message", "error", "message_delta", "content_block_delta"]),
                data in testing::json(&["type", "message", "usage", "input_tokens", "output_tokens", "index",
                                        "content_block", "tool_use", "id", "name", "delta", "text_delta", "text",
                                        "input_json_delta", "partial_json", "stop_reason", "message_start",
                                        "content_block_start", "content_block_delta", "message_delta",
                                        "message_stop", "error"]),
            ) {
                let mut decoder = decoder();
                let event = Event { event: name.to_owned(), data: data.to_string(), id: String::new(), retry: None };
                let reports_error = data["type"].as_str().unwrap_or(name) == "error";
                match decoder.decode(&event) {
                    Ok(chunks) => {
                        prop_assert!(!reports_error);
                        prop_assert!(!chunks.contains(&ChatChunk::Text(String::new())));
                    }
                    Err(error) => {
                        prop_assert!(reports_error);
                        prop_assert!(!error.message.is_empty() && !error.message.contains("sk-ant-test"));
                    }
                }
            }
        }
    }
}
