//! OpenAI's Chat Completions wire format: the request as clients send it, turned into the engine's
//! conversation, and the engine's answer turned back into `chat.completion` objects and chunks.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::conversations::Role;
use crate::providers::{ChatMessage, ToolCallMessage, ToolResultMessage, ToolSpec};

/// The model name that asks for Switchboard's assistant (retrieval, the tenant's tools) rather than
/// the bare model.
pub const ASSISTANT_MODEL: &str = "switchboard-assistant";

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub tools: Vec<WireTool>,
    pub tool_choice: Option<Value>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub n: Option<u32>,
    // Sampling and other options (temperature, top_p, user, …) are accepted and not forwarded.
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Value,
    #[serde(default)]
    pub tool_calls: Vec<WireToolCall>,
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WireToolCall {
    pub id: String,
    pub function: WireFunctionCall,
}

#[derive(Debug, Deserialize)]
pub struct WireFunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Deserialize)]
pub struct WireTool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Debug, Deserialize)]
pub struct WireFunction {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// A request understood: the conversation for the model, what to record as the user's message, and the
/// earlier messages to record as history.
#[derive(Debug)]
pub struct Parsed {
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    /// The text recorded as this turn's user message.
    pub question: String,
    /// Earlier plain user and assistant messages (for the assistant model, whose history is stored).
    pub history: Vec<(Role, String)>,
}

/// `content` as text: a string, or the text parts of an array of parts.
fn text_of(content: &Value) -> Result<String, String> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match (part["type"].as_str(), part["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text),
                (kind, _) => Err(format!("content parts of type {} are not supported", kind.unwrap_or("(none)"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join("\n")),
        _ => Err("content must be a string or an array of parts".to_owned()),
    }
}

impl CompletionRequest {
    pub fn parse(&self) -> Result<Parsed, String> {
        if self.model.trim().is_empty() || self.model.len() > 200 {
            return Err("model must be 1 to 200 characters".to_owned());
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err("only n = 1 is supported".to_owned());
        }
        if self.messages.is_empty() {
            return Err("messages must not be empty".to_owned());
        }
        let mut system = Vec::new();
        let mut messages: Vec<ChatMessage> = Vec::new();
        let mut names_by_call = std::collections::HashMap::new();
        for (index, message) in self.messages.iter().enumerate() {
            let text = text_of(&message.content).map_err(|error| format!("messages[{index}]: {error}"))?;
            match message.role.as_str() {
                "system" | "developer" => system.push(text),
                "user" => messages.push(ChatMessage::user(text)),
                "assistant" => {
                    let mut said = ChatMessage::assistant(text);
                    for call in &message.tool_calls {
                        let arguments = if call.function.arguments.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(&call.function.arguments)
                                .map_err(|_| format!("messages[{index}]: tool call arguments must be JSON"))?
                        };
                        names_by_call.insert(call.id.clone(), call.function.name.clone());
                        said.tool_calls.push(ToolCallMessage {
                            id: call.id.clone(),
                            name: call.function.name.clone(),
                            arguments,
                        });
                    }
                    messages.push(said);
                }
                "tool" => {
                    let call_id = message
                        .tool_call_id
                        .clone()
                        .ok_or_else(|| format!("messages[{index}]: a tool message needs tool_call_id"))?;
                    let name = names_by_call.get(&call_id).cloned().ok_or_else(|| {
                        format!("messages[{index}]: tool_call_id {call_id:?} answers no earlier tool call")
                    })?;
                    let content = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    let result = ToolResultMessage { call_id, name, content, is_error: false };
                    // Results of one step travel together, in the message after the calls.
                    match messages.last_mut() {
                        Some(last)
                            if last.role == crate::providers::ChatRole::User && !last.tool_results.is_empty() =>
                        {
                            last.tool_results.push(result);
                        }
                        _ => {
                            let mut results = ChatMessage::user("");
                            results.tool_results.push(result);
                            messages.push(results);
                        }
                    }
                }
                other => return Err(format!("messages[{index}]: unknown role {other:?}")),
            }
        }
        let last = messages.last().ok_or("messages must contain a user message")?;
        let question = if last.tool_results.is_empty() {
            if last.role != crate::providers::ChatRole::User || last.content.trim().is_empty() {
                return Err("the last message must be a user message with content, or tool results".to_owned());
            }
            last.content.clone()
        } else {
            let names: Vec<&str> = last.tool_results.iter().map(|result| result.name.as_str()).collect();
            format!("(results of {})", names.join(", "))
        };
        let history = messages[..messages.len() - 1]
            .iter()
            .filter(|message| message.tool_calls.is_empty() && message.tool_results.is_empty())
            .filter(|message| !message.content.is_empty())
            .map(|message| {
                let role = if message.role == crate::providers::ChatRole::User { Role::User } else { Role::Assistant };
                (role, message.content.clone())
            })
            .collect();
        let tools_off = self.tool_choice.as_ref().is_some_and(|choice| choice == "none");
        let tools = if tools_off { Vec::new() } else { self.tool_specs()? };
        Ok(Parsed { system: system.join("\n\n"), messages, tools, question, history })
    }

    fn tool_specs(&self) -> Result<Vec<ToolSpec>, String> {
        self.tools
            .iter()
            .enumerate()
            .map(|(index, tool)| {
                let name = &tool.function.name;
                let valid = tool.kind == "function"
                    && (1..=64).contains(&name.len())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(format!("tools[{index}]: a function with a name of 1 to 64 of [A-Za-z0-9_-]"));
                }
                Ok(ToolSpec {
                    name: name.clone(),
                    description: tool.function.description.clone(),
                    parameters: tool
                        .function
                        .parameters
                        .clone()
                        .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
                })
            })
            .collect()
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|options| options.include_usage)
    }

    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// A tool call as stored on the assistant's message (`{id, name, arguments}`), in OpenAI's form.
pub fn tool_call(index: usize, stored: &Value) -> Value {
    json!({
        "index": index,
        "id": stored["id"],
        "type": "function",
        "function": { "name": stored["name"], "arguments": stored["arguments"].as_str().unwrap_or("{}") },
    })
}

pub fn usage(input_tokens: u32, output_tokens: u32) -> Value {
    json!({
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens.saturating_add(output_tokens),
    })
}
