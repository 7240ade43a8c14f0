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
