//! The integration door's answer: flatter than the chat API's, for systems that want the reply and its
//! cost without knowing the run or message objects.

use serde::Serialize;
use utoipa::ToSchema;

use crate::conversations::Message;
use crate::engine::TurnOutcome;
use crate::ids::{MessageId, RunId, SessionId};
use crate::integration::Accepted;
use crate::providers::FinishReason;
use crate::retrieval::Citation;
use crate::runs::RunStatus;

/// The integration door's answer: the conversation, the run, and the reply with its tokens (`null` when
/// the run produced none).
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = uuid::Uuid)]
    pub run_id: RunId,
    pub status: RunStatus,
    /// The answer of an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
    pub message: Option<IntegrationMessage>,
    pub usage: Option<MessageUsage>,
}

impl IntegrationAnswer {
    pub fn new(accepted: &Accepted, outcome: &TurnOutcome) -> Self {
        Self {
            session_id: accepted.session_id,
            run_id: accepted.run_id,
            status: outcome.run.status,
            replayed: accepted.replayed,
            message: outcome.message.as_ref().map(IntegrationMessage::from),
            usage: outcome.message.as_ref().map(MessageUsage::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationMessage {
    #[schema(value_type = uuid::Uuid)]
    pub id: MessageId,
    pub content: String,
    /// Why the model stopped: `length` means the answer was cut at its token limit.
    pub finish_reason: Option<FinishReason>,
    /// The passages the answer cites, each with the `spans` of the answer (bytes of its UTF-8 text) that
    /// cite it, numbered as the prompt numbered them; empty when it cites none. (Answers recorded before
    /// issue 26 list every passage they were given here.)
    #[schema(value_type = Vec<Citation>)]
    pub citations: serde_json::Value,
    /// The passages the answer was given but does not cite.
    #[schema(value_type = Vec<Citation>)]
    pub retrieved: serde_json::Value,
    /// The tool calls made (`id`, `name`, `arguments`, and once run `is_error`); empty when none.
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: serde_json::Value,
    pub model: Option<String>,
    pub provider: Option<String>,
}

impl From<&Message> for IntegrationMessage {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id,
            content: message.content.clone(),
            finish_reason: message.finish_reason,
            citations: message.citations.0.clone(),
            retrieved: message.retrieved.0.clone(),
            tool_calls: message.tool_calls.0.clone(),
            model: message.model_used.clone(),
            provider: message.provider_used.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[expect(clippy::struct_field_names, reason = "the field names are the API's")]
pub struct MessageUsage {
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    pub total_tokens: Option<i32>,
}

impl From<&Message> for MessageUsage {
    fn from(message: &Message) -> Self {
        Self {
            input_tokens: message.input_tokens,
            output_tokens: message.output_tokens,
            total_tokens: message.total_tokens,
        }
    }
}
