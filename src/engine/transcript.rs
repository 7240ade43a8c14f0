//! A turn's tool steps so far: the calls the model made, the decisions on them and their results, as
//! the model must see them again. A paused run keeps its transcript until a person decides.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::{ApiKeyId, ToolCallId};
use crate::providers::{ChatMessage, ToolCallMessage, ToolResultMessage};
use crate::tools::elicitation::{InputGiven, InputNeeded};

/// The tool steps so far, as the model must see them again; saved on the run while it is paused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Transcript {
    pub steps: Vec<Step>,
    /// The answer's text over all steps so far.
    pub text: String,
    /// The key that started the run: a resumed run is paid for and audited as its.
    #[serde(default)]
    pub api_key_id: Option<ApiKeyId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Step {
    pub text: String,
    pub calls: Vec<StepCall>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StepCall {
    pub id: ToolCallId,
    pub provider_call_id: String,
    pub wire_name: String,
    /// `connector.tool`.
    pub name: String,
    pub arguments: Value,
    pub awaiting_approval: bool,
    /// A person approved it (it waited for approval, then ran).
    #[serde(default)]
    pub approved: bool,
    /// The policy's reason for its decision.
    #[serde(default)]
    pub reason: String,
    /// What its server asked the person, while the call waits for the answer (MCP elicitation).
    #[serde(default)]
    pub awaiting_input: Option<InputNeeded>,
    /// The person's answer, sent when the call is made again.
    #[serde(default)]
    pub input: Option<InputGiven>,
    /// What the model is told: the shaped result, or an error.
    pub result: Option<CallResult>,
}

impl StepCall {
    /// Whether the call waits for a person: a decision, or input its server asked for.
    pub fn waits(&self) -> bool {
        self.awaiting_approval || self.awaiting_input.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CallResult {
    pub content: Value,
    pub is_error: bool,
}

impl Transcript {
    /// Each step as an assistant message with its calls, then a user message with their results.
    pub fn messages(&self) -> Vec<ChatMessage> {
        let mut messages = Vec::new();
        for step in &self.steps {
            let mut asked = ChatMessage::assistant(step.text.clone());
            asked.tool_calls = step
                .calls
                .iter()
                .map(|call| ToolCallMessage {
                    id: call.provider_call_id.clone(),
                    name: call.wire_name.clone(),
                    arguments: if call.arguments.is_object() { call.arguments.to_string() } else { "{}".to_owned() },
                })
                .collect();
            let mut answered = ChatMessage::user("");
            answered.tool_results = step
                .calls
                .iter()
                .map(|call| {
                    let result = call
                        .result
                        .clone()
                        .unwrap_or(CallResult { content: json!({ "error": "no result" }), is_error: true });
                    ToolResultMessage {
                        call_id: call.provider_call_id.clone(),
                        name: call.wire_name.clone(),
                        content: match result.content {
                            Value::String(text) => text,
                            other => other.to_string(),
                        },
                        is_error: result.is_error,
                    }
                })
                .collect();
            messages.push(asked);
            messages.push(answered);
        }
        messages
    }

    /// The calls of the last step still waiting for a person: for a decision, or for input.
    pub fn awaiting(&self) -> Vec<ToolCallId> {
        self.steps
            .last()
            .map_or_else(Vec::new, |step| step.calls.iter().filter(|call| call.waits()).map(|call| call.id).collect())
    }

    /// The calls as the assistant's message records them.
    pub fn summary(&self) -> Vec<Value> {
        self.steps
            .iter()
            .flat_map(|step| &step.calls)
            .map(|call| {
                json!({
                    "id": call.id, "name": call.name, "arguments": call.arguments,
                    "is_error": call.result.as_ref().is_some_and(|result| result.is_error),
                })
            })
            .collect()
    }
}
