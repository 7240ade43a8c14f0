//! The engine's answer as OpenAI's objects: a `chat.completion`, or `chat.completion.chunk`s, built with
//! async-openai's types (types only) so that they are OpenAI's shape by construction.

use async_openai::types::chat::{
    ChatChoice, ChatChoiceStream, ChatCompletionMessageToolCall, ChatCompletionMessageToolCallChunk,
    ChatCompletionMessageToolCalls, ChatCompletionResponseMessage, ChatCompletionStreamResponseDelta,
    CompletionTokensDetails, CompletionUsage, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
    FinishReason as WireFinishReason, FunctionCall, FunctionCallStream, FunctionType, PromptTokensDetails, Role,
};
use serde_json::Value;

use crate::conversations::Message;
use crate::providers::FinishReason;

/// What every object of one answer shares.
#[derive(Debug)]
pub struct Reply {
    pub id: String,
    pub created: u32,
    pub model: String,
}

/// A tool call as the assistant's message stores it (`{id, name, arguments}`).
#[derive(Debug, Clone)]
pub struct StoredCall {
    id: String,
    name: String,
    arguments: String,
}

impl StoredCall {
    pub fn all_of(message: &Message) -> Vec<Self> {
        let calls = message.tool_calls.0.as_array().map(Vec::as_slice).unwrap_or_default();
        calls
            .iter()
            .map(|call| Self {
                id: call["id"].as_str().unwrap_or_default().to_owned(),
                name: call["name"].as_str().unwrap_or_default().to_owned(),
                arguments: match &call["arguments"] {
                    Value::String(arguments) => arguments.clone(),
                    Value::Null => "{}".to_owned(),
                    other => other.to_string(),
                },
            })
            .collect()
    }
}

/// The reason the run recorded (`length` for an answer cut at its limit); for runs recorded before
/// reasons were kept, what the answer shows.
pub fn finish_reason(recorded: Option<FinishReason>, calls: &[StoredCall]) -> WireFinishReason {
    let inferred = if calls.is_empty() { FinishReason::Stop } else { FinishReason::ToolCalls };
    match recorded.unwrap_or(inferred) {
        FinishReason::Stop => WireFinishReason::Stop,
        FinishReason::Length => WireFinishReason::Length,
        FinishReason::ToolCalls => WireFinishReason::ToolCalls,
        FinishReason::ContentFilter => WireFinishReason::ContentFilter,
    }
}

/// The run's usage as OpenAI reports it, cached prompt tokens and reasoning tokens in their details.
pub fn usage(tokens: &UsageCounts) -> CompletionUsage {
    CompletionUsage {
        prompt_tokens: tokens.input,
        completion_tokens: tokens.output,
        total_tokens: tokens.input.saturating_add(tokens.output),
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: Some(tokens.cached),
            ..PromptTokensDetails::default()
        }),
        completion_tokens_details: Some(CompletionTokensDetails {
            reasoning_tokens: Some(tokens.reasoning),
            ..CompletionTokensDetails::default()
        }),
    }
}

/// A run's token counts, from its `usage` event or its usage records.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageCounts {
    pub input: u32,
    pub output: u32,
    pub cached: u32,
    pub reasoning: u32,
}

impl From<&crate::usage::RunTotals> for UsageCounts {
    fn from(totals: &crate::usage::RunTotals) -> Self {
        let narrow = |count: i64| u32::try_from(count).unwrap_or(u32::MAX);
        Self {
            input: narrow(totals.input_tokens),
            output: narrow(totals.output_tokens),
            cached: narrow(totals.cached_tokens),
            reasoning: narrow(totals.reasoning_tokens),
        }
    }
}

impl Reply {
    pub fn completion(&self, message: &Message, counts: &UsageCounts) -> CreateChatCompletionResponse {
        let calls = StoredCall::all_of(message);
        let tool_calls = calls
            .iter()
            .map(|call| {
                ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                    id: call.id.clone(),
                    function: FunctionCall { name: call.name.clone(), arguments: call.arguments.clone() },
                })
            })
            .collect::<Vec<_>>();
        let said = ChatCompletionResponseMessage {
            content: (!message.content.is_empty() || calls.is_empty()).then(|| message.content.clone()),
            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            role: Role::Assistant,
            ..ChatCompletionResponseMessage::default()
        };
        CreateChatCompletionResponse {
            id: self.id.clone(),
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChatChoice {
                index: 0,
                message: said,
                finish_reason: Some(finish_reason(message.finish_reason, &calls)),
                logprobs: None,
            }],
            usage: Some(usage(counts)),
            ..CreateChatCompletionResponse::default()
        }
    }

    fn chunk(
        &self,
        delta: ChatCompletionStreamResponseDelta,
        finish: Option<WireFinishReason>,
    ) -> CreateChatCompletionStreamResponse {
        CreateChatCompletionStreamResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChatChoiceStream { index: 0, delta, finish_reason: finish, logprobs: None }],
            ..CreateChatCompletionStreamResponse::default()
        }
    }

    /// The first chunk: the assistant's role, no text yet.
    pub fn opening(&self) -> CreateChatCompletionStreamResponse {
        let delta = ChatCompletionStreamResponseDelta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..ChatCompletionStreamResponseDelta::default()
        };
        self.chunk(delta, None)
    }

    pub fn text(&self, text: String) -> CreateChatCompletionStreamResponse {
        self.chunk(
            ChatCompletionStreamResponseDelta { content: Some(text), ..ChatCompletionStreamResponseDelta::default() },
            None,
        )
    }

    /// The calls the model made, each whole in one chunk.
    pub fn tool_calls(&self, calls: &[StoredCall]) -> CreateChatCompletionStreamResponse {
        let chunks = (0u32..)
            .zip(calls)
            .map(|(index, call)| ChatCompletionMessageToolCallChunk {
                index,
                id: Some(call.id.clone()),
                r#type: Some(FunctionType::Function),
                function: Some(FunctionCallStream {
                    name: Some(call.name.clone()),
                    arguments: Some(call.arguments.clone()),
                }),
            })
            .collect();
        let delta = ChatCompletionStreamResponseDelta {
            tool_calls: Some(chunks),
            ..ChatCompletionStreamResponseDelta::default()
        };
        self.chunk(delta, None)
    }

    pub fn finish(&self, reason: WireFinishReason) -> CreateChatCompletionStreamResponse {
        self.chunk(ChatCompletionStreamResponseDelta::default(), Some(reason))
    }

    /// The last chunk when the caller asked for usage: no choices, the run's tokens.
    pub fn usage(&self, counts: &UsageCounts) -> CreateChatCompletionStreamResponse {
        CreateChatCompletionStreamResponse {
            choices: Vec::new(),
            usage: Some(usage(counts)),
            ..self.chunk(ChatCompletionStreamResponseDelta::default(), None)
        }
    }
}

/// What the document says of these objects: async-openai's types carry no schemas, so these mirror what
/// they serialise to as built above (fields `None` that are skipped are left out; those that are not, are
/// `null`). A test below holds them to the bytes.
pub mod schemas {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    use utoipa::{PartialSchema, ToSchema};

    use crate::http::openai::schema::{AlwaysNull, constant, json_data, reference, register, sse_event};
    use crate::http::openapi::OpenAiErrorBody;

    constant!(ChatCompletionObject = "chat.completion");
    constant!(ChatCompletionChunkObject = "chat.completion.chunk");
    constant!(AssistantRole = "assistant");
    constant!(FunctionType = "function");

    /// `assistant` in the first chunk, else null.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub enum ChatCompletionChunkRole {
        Assistant,
    }

    /// A whole answer (`stream` false).
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletion {
        /// `chatcmpl-` and the run's id.
        id: String,
        choices: Vec<ChatCompletionChoice>,
        /// When the run was made, in seconds since the Unix epoch.
        created: u32,
        /// The model as the request named it.
        model: String,
        #[schema(inline)]
        object: ChatCompletionObject,
        usage: ChatCompletionUsage,
    }

    /// The one choice (`n` is 1).
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionChoice {
        index: u32,
        message: ChatCompletionMessage,
        finish_reason: ChatCompletionFinishReason,
    }

    /// `stop` (also at a stop sequence), `length` (cut at the token limit), `tool_calls`, or `content_filter`.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum ChatCompletionFinishReason {
        Stop,
        Length,
        ToolCalls,
        ContentFilter,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionMessage {
        #[schema(inline)]
        role: AssistantRole,
        /// The answer's text; absent when the model only called tools.
        #[schema(required = false)]
        content: String,
        /// Present when the model called tools.
        #[schema(required = false)]
        tool_calls: Vec<ChatCompletionMessageToolCall>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionMessageToolCall {
        #[schema(inline)]
        r#type: FunctionType,
        id: String,
        function: ChatCompletionFunctionCall,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionFunctionCall {
        name: String,
        /// As the model wrote them: usually JSON, not always.
        arguments: String,
    }

    /// The run's tokens; `cached_tokens` are among `prompt_tokens`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionUsage {
        prompt_tokens: u32,
        completion_tokens: u32,
        total_tokens: u32,
        prompt_tokens_details: ChatCompletionPromptTokensDetails,
        completion_tokens_details: ChatCompletionCompletionTokensDetails,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionPromptTokensDetails {
        /// Always null: Switchboard takes no audio.
        #[schema(required = true)]
        audio_tokens: AlwaysNull,
        cached_tokens: u32,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    #[expect(clippy::struct_field_names, reason = "the field names are OpenAI's wire format")]
    pub struct ChatCompletionCompletionTokensDetails {
        /// Always null.
        #[schema(required = true)]
        accepted_prediction_tokens: AlwaysNull,
        /// Always null.
        #[schema(required = true)]
        audio_tokens: AlwaysNull,
        reasoning_tokens: u32,
        /// Always null.
        #[schema(required = true)]
        rejected_prediction_tokens: AlwaysNull,
    }

    /// One `data:` event of a streamed answer. The first has the role and empty content; then text deltas;
    /// the model's tool calls, each whole in one chunk; the chunk with the `finish_reason`; and, when the
    /// request asked for it (`stream_options.include_usage`), a last one with no choices and the `usage`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionChunk {
        id: String,
        choices: Vec<ChatCompletionChunkChoice>,
        created: u32,
        model: String,
        /// Always null.
        #[schema(required = true)]
        service_tier: AlwaysNull,
        /// Always null.
        #[schema(required = true)]
        system_fingerprint: AlwaysNull,
        #[schema(inline)]
        object: ChatCompletionChunkObject,
        /// Null but in the last chunk of a stream that asked for usage.
        #[schema(required = true)]
        usage: Option<ChatCompletionUsage>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionChunkChoice {
        index: u32,
        delta: ChatCompletionChunkDelta,
        /// Only in the chunk that ends the answer.
        #[schema(required = false)]
        finish_reason: ChatCompletionFinishReason,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionChunkDelta {
        /// More of the answer's text.
        #[schema(required = true)]
        content: Option<String>,
        /// Always null.
        #[schema(required = true)]
        function_call: AlwaysNull,
        #[schema(required = true)]
        tool_calls: Option<Vec<ChatCompletionChunkToolCall>>,
        /// `assistant` in the first chunk, else null.
        #[schema(required = true, value_type = Option<ChatCompletionChunkRole>)]
        role: Option<String>,
        /// Always null.
        #[schema(required = true)]
        refusal: AlwaysNull,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct ChatCompletionChunkToolCall {
        index: u32,
        id: String,
        #[schema(inline)]
        r#type: FunctionType,
        function: ChatCompletionFunctionCall,
    }

    /// A streamed answer (`stream` true): one of its events.
    pub struct ChatCompletionStream;

    impl PartialSchema for ChatCompletionStream {
        fn schema() -> RefOr<Schema> {
            let data = OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["[DONE]"])))
                .item(json_data(
                    OneOfBuilder::new().item(reference::<ChatCompletionChunk>()).item(reference::<OpenAiErrorBody>()),
                ));
            sse_event(
                "Server-sent events, unnamed, each `data: ` and a `ChatCompletionChunk` as JSON, until `data: \
                 [DONE]`. A run that fails once the answer has begun sends, instead of the rest of it, one `data: ` \
                 with an `OpenAiErrorBody` as JSON (`type` `server_error`), then `data: [DONE]`. Lines starting with \
                 `:` keep the connection alive.",
                false,
                data,
            )
        }
    }

    impl ToSchema for ChatCompletionStream {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            register::<ChatCompletionChunk>(schemas);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::schemas::{ChatCompletion, ChatCompletionChunk};
    use super::*;
    use crate::http::openai::schema::conformance::{assert_conforms, stored_message};

    #[test]
    fn what_is_sent_is_what_the_document_says() {
        let reply = Reply { id: "chatcmpl-1".into(), created: 1, model: "gpt-4o-mini".into() };
        let counts = UsageCounts { input: 12, output: 3, cached: 4, reasoning: 1 };
        let calls =
            json!([{ "id": "call_1", "name": "f", "arguments": "{\"a\": 1}" }, { "id": "call_2", "name": "g" }]);
        for message in [
            stored_message("Hi", json!([]), Some(FinishReason::Stop)),
            stored_message("", calls.clone(), None),
            stored_message("Looking.", calls.clone(), Some(FinishReason::ToolCalls)),
            stored_message("Cut sh", json!([]), Some(FinishReason::Length)),
            stored_message("", json!([]), Some(FinishReason::ContentFilter)),
        ] {
            assert_conforms::<ChatCompletion>(&reply.completion(&message, &counts));
        }
        let stored = StoredCall::all_of(&stored_message("", calls, None));
        for chunk in [
            reply.opening(),
            reply.text("Hi".into()),
            reply.tool_calls(&stored),
            reply.finish(WireFinishReason::ToolCalls),
            reply.finish(WireFinishReason::Length),
            reply.usage(&counts),
        ] {
            assert_conforms::<ChatCompletionChunk>(&chunk);
        }
    }
}
