//! Anthropic's Messages wire format: `POST /v1/messages` and `POST /v1/messages/count_tokens` bodies as
//! clients send them, turned into the engine's conversation and options. Every field is mapped or refused
//! by name (a `null` counts as not sent); content blocks are read one field at a time so that a field
//! this door does not carry (`cache_control`, `citations`) is named with its path.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::super::openai::schema::{UnlistedField, constant, one_of};
use crate::providers::options::{GenerationOptions, ToolChoice};
use crate::providers::{ChatMessage, ChatRole, ToolCallMessage, ToolResultMessage, ToolSpec};
use crate::tokens;

/// The `/v1/chat/completions` door's name for Switchboard's assistant, which this door does not offer.
const ASSISTANT_MODEL: &str = "switchboard-assistant";

/// `POST /v1/messages`: Anthropic's request, every field taken or refused by name (`null` counts as not
/// sent). The model is one of the tenant's, given the conversation and the client's own tools.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = AnthropicMessagesRequest,
    examples(json!({
        "model": "switchboard-extractive", "max_tokens": 256,
        "messages": [{ "role": "user", "content": "How do I get a refund?" }],
    })),
)]
pub struct MessagesRequest {
    /// One of the tenant's models (`GET /v1/models`), 1 to 200 characters; not `switchboard-assistant`.
    pub model: String,
    /// Required, as Anthropic requires it; optional here so that its absence gets Anthropic's message.
    #[schema(value_type = u32, minimum = 1)]
    pub max_tokens: Option<u32>,
    /// The conversation, alternating as the client likes, ending with a user message with text or tool
    /// results (no assistant prefill).
    #[schema(min_items = 1)]
    pub messages: Vec<WireMessage>,
    #[schema(value_type = Option<AnthropicSystem>)]
    pub system: Option<Box<RawValue>>,
    pub tools: Option<Vec<WireTool>>,
    pub tool_choice: Option<WireToolChoice>,
    #[schema(minimum = 0, maximum = 1)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Not supported: refused when set.
    #[schema(value_type = UnlistedField, required = false)]
    pub top_k: Option<Value>,
    pub stop_sequences: Option<Vec<String>>,
    /// Whether to answer as server-sent events.
    pub stream: Option<bool>,
    pub metadata: Option<WireMetadata>,
    /// Every other field: refused by name unless null, never silently dropped.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

/// `count_tokens` takes the conversation alone: generation options are refused there, as Anthropic does.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = AnthropicCountTokensRequest,
    examples(json!({
        "model": "claude-sonnet-4-5",
        "messages": [{ "role": "user", "content": "How do I get a refund?" }],
    })),
)]
pub struct CountTokensRequest {
    /// Not looked up: the count is Switchboard's own.
    pub model: String,
    #[schema(min_items = 1)]
    pub messages: Vec<WireMessage>,
    #[schema(value_type = Option<AnthropicSystem>)]
    pub system: Option<Box<RawValue>>,
    pub tools: Option<Vec<WireTool>>,
    pub tool_choice: Option<WireToolChoice>,
    /// Every other field, generation options included: refused by name unless null.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicMessageParam)]
pub struct WireMessage {
    #[schema(value_type = AnthropicRole)]
    pub role: String,
    /// A string or an array of content blocks, read in [`content_of`]; kept raw so that a `tool_use`
    /// block's `input` reaches the model as the client wrote it.
    #[schema(value_type = AnthropicContent)]
    pub content: Box<RawValue>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicToolParam)]
pub struct WireTool {
    /// Absent or `custom` for a client tool; Anthropic's server tools (`web_search_…`, `bash_…`) have
    /// their own types.
    #[serde(rename = "type")]
    #[schema(inline, value_type = Option<CustomType>)]
    pub kind: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,128}$")]
    pub name: String,
    pub description: Option<String>,
    /// The input's JSON Schema. Required.
    #[schema(value_type = Object)]
    pub input_schema: Option<Value>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicToolChoice)]
pub struct WireToolChoice {
    #[serde(rename = "type")]
    #[schema(value_type = AnthropicToolChoiceType)]
    pub kind: String,
    /// The tool the model must call: required with type `tool`, refused with any other.
    pub name: Option<String>,
    /// `true` asks for one call at a time.
    pub disable_parallel_tool_use: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicMetadata)]
pub struct WireMetadata {
    pub user_id: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Schemas of what the parser takes.
pub enum AnthropicRole {
    User,
    Assistant,
}

/// `auto`, `any` (some tool), `tool` (the one named) or `none`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AnthropicToolChoiceType {
    Auto,
    Any,
    Tool,
    None,
}

constant!(CustomType = "custom");
constant!(TextType = "text");
constant!(ToolUseType = "tool_use");
constant!(ToolResultType = "tool_result");

one_of! {
    /// The system prompt: a string, or text blocks (joined by newlines).
    AnthropicSystem = String | Vec<AnthropicTextBlockParam>
}

one_of! {
    /// A string, or content blocks: text, and `tool_use` in an assistant's message, `tool_result` in a user's.
    /// Images, documents and other blocks are refused.
    AnthropicContent = String | AnthropicContentBlocks
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AnthropicContentBlocks(Vec<AnthropicContentBlockParam>);

one_of! {
    /// A text, `tool_use` or `tool_result` block; any field a block does not list is refused unless null.
    AnthropicContentBlockParam = AnthropicTextBlockParam | AnthropicToolUseBlockParam | AnthropicToolResultBlockParam
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AnthropicTextBlockParam {
    #[schema(inline)]
    r#type: TextType,
    text: String,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AnthropicToolUseBlockParam {
    #[schema(inline)]
    r#type: ToolUseType,
    id: String,
    name: String,
    /// Reaches the model as the client wrote it.
    #[schema(value_type = Object)]
    input: Value,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AnthropicToolResultBlockParam {
    #[schema(inline)]
    r#type: ToolResultType,
    /// The `id` of an earlier `tool_use` block.
    tool_use_id: String,
    #[schema(value_type = Option<AnthropicToolResultContent>)]
    content: Option<Value>,
    is_error: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

one_of! {
    /// The result's text: a string, or text blocks (joined by newlines).
    AnthropicToolResultContent = String | Vec<AnthropicTextBlockParam>
}

/// A conversation understood: what the model is given, and the text recorded as the turn's user message.
#[derive(Debug)]
pub struct Conversation {
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: Option<ToolChoice>,
    /// Set when the client asked for one call at a time (`disable_parallel_tool_use`).
    pub parallel_tool_calls: Option<bool>,
    pub question: String,
}

/// A `POST /v1/messages` request understood.
#[derive(Debug)]
pub struct Parsed {
    pub conversation: Conversation,
    pub options: GenerationOptions,
    pub max_output_tokens: u32,
    pub stream: bool,
}

impl MessagesRequest {
    pub fn parse(self) -> Result<Parsed, String> {
        refuse_others("", &self.others)?;
        let max_output_tokens = match self.max_tokens {
            None => return Err("max_tokens: Field required".to_owned()),
            Some(0) => return Err("max_tokens: must be at least 1".to_owned()),
            Some(tokens) => tokens,
        };
        if self.temperature.is_some_and(|value| !(0.0..=1.0).contains(&value)) {
            return Err("temperature: must be between 0 and 1".to_owned());
        }
        if self.top_p.is_some_and(|value| !(0.0..=1.0).contains(&value)) {
            return Err("top_p: must be between 0 and 1".to_owned());
        }
        if self.top_k.as_ref().is_some_and(|value| !value.is_null()) {
            // The engine's options have no such field for any provider: taking it would drop it.
            return Err("`top_k` is not supported: Switchboard passes temperature and top_p only".to_owned());
        }
        let user = match self.metadata {
            Some(metadata) => {
                refuse_others("metadata.", &metadata.others)?;
                metadata.user_id
            }
            None => None,
        };
        let conversation =
            conversation(&self.model, self.system.as_deref(), &self.messages, self.tools, self.tool_choice)?;
        let options = GenerationOptions {
            temperature: self.temperature,
            top_p: self.top_p,
            stop: self.stop_sequences.unwrap_or_default(),
            tool_choice: conversation.tool_choice.clone(),
            parallel_tool_calls: conversation.parallel_tool_calls,
            user,
            ..GenerationOptions::default()
        };
        Ok(Parsed { conversation, options, max_output_tokens, stream: self.stream.unwrap_or(false) })
    }
}

impl CountTokensRequest {
    pub fn parse(self) -> Result<Conversation, String> {
        refuse_others("", &self.others)?;
        conversation(&self.model, self.system.as_deref(), &self.messages, self.tools, self.tool_choice)
    }
}

fn conversation(
    model: &str,
    system: Option<&RawValue>,
    wire_messages: &[WireMessage],
    tools: Option<Vec<WireTool>>,
    choice: Option<WireToolChoice>,
) -> Result<Conversation, String> {
    if model.trim().is_empty() || model.len() > 200 {
        return Err("model: must be 1 to 200 characters".to_owned());
    }
    if model == ASSISTANT_MODEL {
        return Err(format!(
            "model: `{ASSISTANT_MODEL}` is served on /v1/chat/completions; /v1/messages passes the conversation \
             to one of the tenant's models"
        ));
    }
    let system = match system {
        None => String::new(),
        Some(raw) => match content_of(raw, "system")? {
            Content::Text(text) => text,
            Content::Blocks(blocks) => texts_of(blocks, "system")?,
        },
    };
    let messages = messages(wire_messages)?;
    let last = messages.last().ok_or("messages: must not be empty")?;
    if last.role != ChatRole::User {
        return Err("messages: the last message must be a user message (assistant prefill is not supported)".to_owned());
    }
    let question = if last.tool_results.is_empty() {
        if last.content.trim().is_empty() {
            return Err("messages: the last message must have text or tool results".to_owned());
        }
        last.content.clone()
    } else {
        let names: Vec<&str> = last.tool_results.iter().map(|result| result.name.as_str()).collect();
        format!("(results of {})", names.join(", "))
    };
    let tools = tools.map(tool_specs).transpose()?.unwrap_or_default();
    let (tool_choice, parallel_tool_calls) = match choice {
        Some(choice) => tool_choice(choice)?,
        None => (None, None),
    };
    Ok(Conversation { system, messages, tools, tool_choice, parallel_tool_calls, question })
}

fn messages(wire_messages: &[WireMessage]) -> Result<Vec<ChatMessage>, String> {
    let mut names_by_call = HashMap::new();
    let mut messages = Vec::with_capacity(wire_messages.len());
    for (index, wire) in wire_messages.iter().enumerate() {
        let at = format!("messages[{index}]");
        refuse_others(&format!("{at}."), &wire.others)?;
        let role = match wire.role.as_str() {
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            other => return Err(format!("{at}.role: must be `user` or `assistant`, not {other:?}")),
        };
        let mut message = ChatMessage { role, ..ChatMessage::user("") };
        let blocks = match content_of(&wire.content, &format!("{at}.content"))? {
            Content::Text(text) => {
                message.content = text;
                messages.push(message);
                continue;
            }
            Content::Blocks(blocks) => blocks,
        };
        let mut texts = Vec::new();
        for (number, fields) in blocks.into_iter().enumerate() {
            let mut block = Block { at: format!("{at}.content[{number}]"), fields };
            match (block.kind()?.as_str(), role) {
                ("text", _) => texts.push(block.text()?),
                ("tool_use", ChatRole::Assistant) => {
                    let call = block.tool_use()?;
                    names_by_call.insert(call.id.clone(), call.name.clone());
                    message.tool_calls.push(call);
                }
                ("tool_result", ChatRole::User) => message.tool_results.push(block.tool_result(&names_by_call)?),
                ("tool_use", ChatRole::User) => {
                    return Err(format!("{}: tool_use blocks belong to assistant messages", block.at));
                }
                ("tool_result", ChatRole::Assistant) => {
                    return Err(format!("{}: tool_result blocks belong to user messages", block.at));
                }
                (kind, _) => return Err(unsupported_block(&block.at, kind)),
            }
        }
        message.content = texts.join("\n");
        messages.push(message);
    }
    Ok(messages)
}

fn unsupported_block(at: &str, kind: &str) -> String {
    match kind {
        "image" | "document" => format!("{at}: `{kind}` blocks are not supported: Switchboard passes text only"),
        _ => format!("{at}: `{kind}` blocks are not supported"),
    }
}

/// A message's (or the system prompt's, or a tool result's) content.
enum Content {
    Text(String),
    Blocks(Vec<BTreeMap<String, Box<RawValue>>>),
}

fn content_of(raw: &RawValue, at: &str) -> Result<Content, String> {
    let text = raw.get();
    if text.starts_with('"') {
        return serde_json::from_str(text).map(Content::Text).map_err(|error| format!("{at}: {error}"));
    }
    if text.starts_with('[') {
        let blocks = serde_json::from_str(text).map_err(|_| format!("{at}: must be an array of content blocks"))?;
        return Ok(Content::Blocks(blocks));
    }
    Err(format!("{at}: must be a string or an array of content blocks"))
}

/// The texts of blocks that may only be text (the system prompt, a tool result), joined.
fn texts_of(blocks: Vec<BTreeMap<String, Box<RawValue>>>, at: &str) -> Result<String, String> {
    let mut texts = Vec::with_capacity(blocks.len());
    for (number, fields) in blocks.into_iter().enumerate() {
        let mut block = Block { at: format!("{at}[{number}]"), fields };
        match block.kind()?.as_str() {
            "text" => texts.push(block.text()?),
            kind => return Err(unsupported_block(&block.at, kind)),
        }
    }
    Ok(texts.join("\n"))
}

/// One content block, its fields taken one by one; whatever is left is refused by name.
struct Block {
    at: String,
    fields: BTreeMap<String, Box<RawValue>>,
}

impl Block {
    fn take(&mut self, field: &str) -> Option<Box<RawValue>> {
        self.fields.remove(field).filter(|raw| raw.get() != "null")
    }

    fn required<T: serde::de::DeserializeOwned>(&mut self, field: &str) -> Result<T, String> {
        let raw = self.take(field).ok_or_else(|| format!("{}.{field}: Field required", self.at))?;
        serde_json::from_str(raw.get()).map_err(|error| format!("{}.{field}: {error}", self.at))
    }

    fn optional<T: serde::de::DeserializeOwned>(&mut self, field: &str) -> Result<Option<T>, String> {
        let Some(raw) = self.take(field) else { return Ok(None) };
        serde_json::from_str(raw.get()).map(Some).map_err(|error| format!("{}.{field}: {error}", self.at))
    }

    fn kind(&mut self) -> Result<String, String> {
        self.required("type")
    }

    /// Refuses the first field left that is set.
    fn nothing_else(&self) -> Result<(), String> {
        match self.fields.iter().find(|(_, raw)| raw.get() != "null") {
            Some((field, _)) => Err(format!("`{}.{field}` is not supported", self.at)),
            None => Ok(()),
        }
    }

    fn text(&mut self) -> Result<String, String> {
        let text = self.required("text")?;
        self.nothing_else()?;
        Ok(text)
    }

    fn tool_use(&mut self) -> Result<ToolCallMessage, String> {
        let id: String = self.required("id")?;
        let name: String = self.required("name")?;
        let input = self.take("input").ok_or_else(|| format!("{}.input: Field required", self.at))?;
        if !input.get().starts_with('{') {
            return Err(format!("{}.input: must be an object", self.at));
        }
        self.nothing_else()?;
        // The input's text as the client sent it: key order and number formatting reach the model intact.
        Ok(ToolCallMessage { id, name, arguments: input.get().to_owned() })
    }

    fn tool_result(&mut self, names_by_call: &HashMap<String, String>) -> Result<ToolResultMessage, String> {
        let call_id: String = self.required("tool_use_id")?;
        let name = names_by_call
            .get(&call_id)
            .cloned()
            .ok_or_else(|| format!("{}.tool_use_id: {call_id:?} answers no earlier tool_use block", self.at))?;
        let content = match self.take("content") {
            None => String::new(),
            Some(raw) => match content_of(&raw, &format!("{}.content", self.at))? {
                Content::Text(text) => text,
                Content::Blocks(blocks) => texts_of(blocks, &format!("{}.content", self.at))?,
            },
        };
        let is_error = self.optional("is_error")?.unwrap_or(false);
        self.nothing_else()?;
        Ok(ToolResultMessage { call_id, name, content, is_error })
    }
}

fn tool_specs(tools: Vec<WireTool>) -> Result<Vec<ToolSpec>, String> {
    tools
        .into_iter()
        .enumerate()
        .map(|(index, tool)| {
            let at = format!("tools[{index}]");
            if let Some(kind) = tool.kind.as_deref().filter(|kind| *kind != "custom") {
                return Err(format!("{at}: tools of type `{kind}` are not supported; only client (custom) tools are"));
            }
            refuse_others(&format!("{at}."), &tool.others)?;
            let valid_name = (1..=128).contains(&tool.name.len())
                && tool.name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
            if !valid_name {
                return Err(format!("{at}.name: 1 to 128 of [A-Za-z0-9_-]"));
            }
            let parameters = match tool.input_schema {
                Some(schema @ Value::Object(_)) => schema,
                Some(_) => return Err(format!("{at}.input_schema: must be an object")),
                None => return Err(format!("{at}.input_schema: Field required")),
            };
            Ok(ToolSpec { name: tool.name, description: tool.description.unwrap_or_default(), parameters })
        })
        .collect()
}

/// Anthropic's `tool_choice` as the engine's, and whether calls may run in parallel.
fn tool_choice(choice: WireToolChoice) -> Result<(Option<ToolChoice>, Option<bool>), String> {
    refuse_others("tool_choice.", &choice.others)?;
    let mapped = match (choice.kind.as_str(), choice.name) {
        ("auto", None) => ToolChoice::Auto,
        ("any", None) => ToolChoice::Required,
        ("none", None) => ToolChoice::None,
        ("tool", Some(name)) => ToolChoice::Function(name),
        ("tool", None) => return Err("tool_choice.name: Field required".to_owned()),
        ("auto" | "any" | "none", Some(_)) => return Err("`tool_choice.name` is only for type `tool`".to_owned()),
        (other, _) => return Err(format!("tool_choice.type: must be auto, any, tool or none, not {other:?}")),
    };
    // `false` asks for what every provider does unasked: nothing to pass on.
    let parallel = choice.disable_parallel_tool_use.filter(|disabled| *disabled).map(|_| false);
    Ok((Some(mapped), parallel))
}

fn refuse_others(prefix: &str, others: &Map<String, Value>) -> Result<(), String> {
    match others.iter().find(|(_, value)| !value.is_null()) {
        Some((field, _)) => Err(format!("`{prefix}{field}` is not supported")),
        None => Ok(()),
    }
}

/// A provider's refusal of an option, in this door's names for it (the engine names options as
/// OpenAI does).
pub fn in_anthropic_terms(message: &str) -> String {
    [
        ("`stop`", "`stop_sequences`"),
        ("`user`", "`metadata.user_id`"),
        ("`parallel_tool_calls`", "`tool_choice.disable_parallel_tool_use`"),
    ]
    .iter()
    .fold(message.to_owned(), |message, (ours, theirs)| message.replace(ours, theirs))
}

impl Conversation {
    /// The prompt's texts as the client sent them: for the rate limits' token estimate.
    pub fn prompt_texts(&self) -> Vec<&str> {
        let mut texts = vec![self.system.as_str()];
        for message in &self.messages {
            texts.push(&message.content);
            texts.extend(message.tool_calls.iter().map(|call| call.arguments.as_str()));
            texts.extend(message.tool_results.iter().map(|result| result.content.as_str()));
        }
        texts.retain(|text| !text.is_empty());
        texts
    }

    /// The prompt's tokens by Switchboard's own count (tiktoken's o200k_base, the per-message overhead
    /// OpenAI documents, and the tools' names, descriptions and schemas): an estimate for any other model.
    pub fn estimated_input_tokens(&self) -> usize {
        let texts: usize = self.prompt_texts().iter().map(|text| tokens::count(text)).sum();
        let names: usize = self
            .messages
            .iter()
            .flat_map(|message| message.tool_calls.iter().map(|call| tokens::count(&call.name)))
            .sum();
        let tools: usize = self
            .tools
            .iter()
            .map(|tool| {
                tokens::count(&tool.name)
                    + tokens::count(&tool.description)
                    + tokens::count(&tool.parameters.to_string())
            })
            .sum();
        let overhead = (self.messages.len() + usize::from(!self.system.is_empty())) * tokens::PER_MESSAGE_OVERHEAD;
        texts + names + tools + overhead
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn parse(body: &Value) -> Result<Parsed, String> {
        let request: MessagesRequest = serde_json::from_str(&body.to_string()).map_err(|error| error.to_string())?;
        request.parse()
    }

    fn refusal(body: &Value) -> String {
        parse(body).expect_err("refused")
    }

    #[test]
    fn a_conversation_with_tools_parses_to_the_engines_terms() {
        let input = r#"{"zeta": 1, "total": 12345678901234567890123, "price": 21.50}"#;
        let body = format!(
            r#"{{"model": "claude-sonnet-4-5", "max_tokens": 512, "stream": true,
                "system": [{{"type": "text", "text": "Be brief."}}, {{"type": "text", "text": "Be kind."}}],
                "messages": [
                    {{"role": "user", "content": "Weather in Lyon?"}},
                    {{"role": "assistant", "content": [{{"type": "text", "text": "Looking."}},
                        {{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {input}}}]}},
                    {{"role": "user", "content": [{{"type": "tool_result", "tool_use_id": "toolu_1",
                        "content": [{{"type": "text", "text": "sunny"}}], "is_error": true}}]}}
                ],
                "tools": [{{"name": "get_weather", "description": "The weather.",
                            "input_schema": {{"type": "object"}}}}],
                "tool_choice": {{"type": "any", "disable_parallel_tool_use": true}},
                "temperature": 0.5, "top_p": 0.9, "stop_sequences": ["END"], "metadata": {{"user_id": "u-1"}}}}"#
        );
        let request: MessagesRequest = serde_json::from_str(&body).unwrap();
        let parsed = request.parse().unwrap();
        let conversation = &parsed.conversation;
        assert_eq!(conversation.system, "Be brief.\nBe kind.");
        assert_eq!(conversation.messages.len(), 3);
        assert_eq!(conversation.messages[1].content, "Looking.");
        assert_eq!(conversation.messages[1].tool_calls[0].arguments, input, "the input as the client wrote it");
        let result = &conversation.messages[2].tool_results[0];
        assert_eq!((result.name.as_str(), result.content.as_str(), result.is_error), ("get_weather", "sunny", true));
        assert_eq!(conversation.question, "(results of get_weather)");
        assert_eq!(parsed.max_output_tokens, 512);
        assert!(parsed.stream);
        let options = &parsed.options;
        assert_eq!(options.tool_choice, Some(ToolChoice::Required));
        assert_eq!(options.parallel_tool_calls, Some(false));
        assert_eq!(options.stop, ["END"]);
        assert_eq!(options.user.as_deref(), Some("u-1"));
        assert_eq!((options.temperature, options.top_p), (Some(0.5), Some(0.9)));
        assert!(conversation.estimated_input_tokens() > 10);
    }

    #[test]
    fn what_the_door_cannot_carry_is_refused_by_name() {
        let message =
            |content: Value| json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
        let with = |field: &str, value: Value| {
            let mut body = message(json!("hi"));
            body[field] = value;
            body
        };
        for (body, named) in [
            (json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}), "max_tokens: Field required"),
            (with("thinking", json!({"type": "enabled", "budget_tokens": 1024})), "`thinking`"),
            (with("top_k", json!(5)), "`top_k`"),
            (with("metadata", json!({"user_id": "u", "tier": "gold"})), "`metadata.tier`"),
            (with("tool_choice", json!({"type": "auto", "extra": 1})), "`tool_choice.extra`"),
            (with("temperature", json!(1.5)), "temperature"),
            (with("tools", json!([{"type": "web_search_20250305", "name": "web_search"}])), "web_search_20250305"),
            (
                with("tools", json!([{"name": "t", "input_schema": {}, "cache_control": {"type": "ephemeral"}}])),
                "`tools[0].cache_control`",
            ),
            (with("tools", json!([{"name": "t"}])), "tools[0].input_schema"),
            (
                message(json!([{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}])),
                "`messages[0].content[0].cache_control`",
            ),
            (message(json!([{"type": "image", "source": {}}])), "`image` blocks"),
            (
                message(json!([{"type": "tool_result", "tool_use_id": "nope", "content": "x"}])),
                "answers no earlier tool_use",
            ),
            (message(json!(7)), "messages[0].content"),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]}),
                "prefill",
            ),
            (
                json!({"model": "switchboard-assistant", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "hi"}]}),
                "/v1/chat/completions",
            ),
        ] {
            let refused = refusal(&body);
            assert!(refused.contains(named), "{body}: {refused}");
        }
        // A field set to null is a field not sent.
        assert!(parse(&with("service_tier", Value::Null)).is_ok());
    }

    #[test]
    fn count_tokens_refuses_generation_options() {
        let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        let request: CountTokensRequest = serde_json::from_value(body).unwrap();
        assert_eq!(request.parse().unwrap_err(), "`max_tokens` is not supported");
    }

    #[test]
    fn provider_refusals_name_this_doors_fields() {
        assert_eq!(
            in_anthropic_terms("run 1 failed: `user` is not supported by the gemini provider"),
            "run 1 failed: `metadata.user_id` is not supported by the gemini provider"
        );
        assert_eq!(in_anthropic_terms("`stop` is not supported"), "`stop_sequences` is not supported");
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

        /// Any bytes are a request understood, a clear refusal, or not a request: never a panic.
        #[test]
        fn any_bytes_are_a_request_or_a_clear_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(request) = serde_json::from_slice::<MessagesRequest>(&bytes)
                && let Err(message) = request.parse()
            {
                prop_assert!(!message.trim().is_empty());
            }
        }

        /// Any content blocks are understood or refused with a message; text alone keeps its text.
        #[test]
        fn any_blocks_are_understood_or_refused(
            kinds in prop::collection::vec(
                prop::sample::select(vec!["text", "tool_use", "tool_result", "image", "thinking"]),
                1..4,
            ),
            text in "\\w(?s:.){0,12}",
        ) {
            let blocks: Vec<Value> = kinds
                .iter()
                .map(|kind| match *kind {
                    "text" => json!({"type": "text", "text": text}),
                    "tool_use" => json!({"type": "tool_use", "id": "t1", "name": "f", "input": {}}),
                    "tool_result" => json!({"type": "tool_result", "tool_use_id": "t1", "content": text}),
                    other => json!({"type": other, "thinking": text}),
                })
                .collect();
            let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": blocks}]});
            match parse(&body) {
                Ok(parsed) => {
                    prop_assert!(kinds.iter().all(|kind| *kind == "text"));
                    prop_assert_eq!(parsed.conversation.question, vec![text.as_str(); kinds.len()].join("\n"));
                }
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }
    }
}
