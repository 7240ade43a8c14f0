//! OpenAI's Chat Completions wire format: the request as clients send it, turned into the engine's
//! conversation, and the engine's answer turned back into `chat.completion` objects and chunks.

use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::schema::{UnlistedField, constant, one_of};
use crate::conversations::Role;
use crate::providers::options::{GenerationOptions, ResponseFormat, ToolChoice};
use crate::providers::{ChatMessage, ToolCallMessage, ToolResultMessage, ToolSpec};

/// The model name that asks for Switchboard's assistant (retrieval, the tenant's tools) rather than
/// the bare model.
pub const ASSISTANT_MODEL: &str = "switchboard-assistant";

/// `POST /v1/chat/completions`: OpenAI's request, of which Switchboard takes the fields listed (`n` only as 1,
/// `logprobs` only as false). `switchboard-assistant` answers with the tenant's documents and tools, and takes
/// no `tools` nor generation options.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = ChatCompletionRequest,
    examples(json!({
        "model": "switchboard-assistant",
        "messages": [{ "role": "user", "content": "How do I get a refund?" }],
    })),
)]
pub struct CompletionRequest {
    /// `switchboard-assistant`, or one of the tenant's models (`GET /v1/models`), 1 to 200 characters.
    pub model: String,
    /// The conversation, ending with a user message with text, or with tool results.
    #[schema(min_items = 1)]
    pub messages: Vec<WireMessage>,
    /// Whether to answer as server-sent `chat.completion.chunk`s.
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub tools: Vec<WireTool>,
    #[schema(value_type = Option<ChatToolChoice>)]
    pub tool_choice: Option<Value>,
    /// The answer's largest size in tokens (`max_completion_tokens` wins when both are set).
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    /// Only 1.
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    #[schema(value_type = Option<ChatStop>)]
    pub stop: Option<Value>,
    #[schema(value_type = Option<ChatResponseFormat>)]
    pub response_format: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub user: Option<String>,
    /// Not supported: only `false` is taken.
    pub logprobs: Option<bool>,
    /// Not supported: refused when set.
    #[schema(value_type = UnlistedField, required = false)]
    pub top_logprobs: Option<u32>,
    /// Every other field: refused by name unless null, never silently dropped.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatCompletionStreamOptions)]
pub struct StreamOptions {
    /// Whether a last chunk, with no choices, carries the answer's `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatCompletionRequestMessage)]
pub struct WireMessage {
    #[schema(value_type = ChatMessageRole)]
    pub role: String,
    /// Text, or text parts (joined by newlines); `null` or absent for an assistant message of tool calls alone.
    #[serde(default)]
    #[schema(value_type = Option<ChatMessageContent>)]
    pub content: Value,
    /// An assistant message's calls, whose arguments go on as given (JSON or not).
    #[serde(default)]
    pub tool_calls: Vec<WireToolCall>,
    /// A `tool` message's answer to an earlier call (required there).
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatCompletionRequestToolCall)]
pub struct WireToolCall {
    pub id: String,
    pub function: WireFunctionCall,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatCompletionRequestFunctionCall)]
pub struct WireFunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatCompletionTool)]
pub struct WireTool {
    #[serde(rename = "type")]
    #[schema(inline, value_type = FunctionType)]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatCompletionFunction)]
pub struct WireFunction {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The arguments' JSON Schema, passed to the model as given (an empty object schema when absent).
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// Who says a message: `system` and `developer` messages make the system prompt.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ChatMessageRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

constant!(FunctionType = "function");
constant!(TextType = "text");
constant!(JsonObjectType = "json_object");
constant!(JsonSchemaType = "json_schema");

one_of! {
    /// A string, or an array of text parts.
    ChatMessageContent = String | Vec<ChatTextPart>
}

/// A text part: the only kind taken.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatTextPart {
    #[schema(inline)]
    r#type: TextType,
    text: String,
}

one_of! {
    /// `auto`, `none`, `required`, or the function the model must call.
    ChatToolChoice = ChatToolChoiceMode | ChatNamedToolChoice
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ChatToolChoiceMode {
    Auto,
    None,
    Required,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatNamedToolChoice {
    #[schema(inline)]
    r#type: FunctionType,
    function: ChatFunctionName,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatFunctionName {
    name: String,
}

one_of! {
    /// A stop sequence, or up to 4.
    ChatStop = String | ChatStopList
}

#[derive(Deserialize, ToSchema)]
#[schema(max_items = 4)]
#[allow(dead_code)]
pub struct ChatStopList(Vec<String>);

one_of! {
    /// Plain text (the default), any JSON object, or JSON matching a schema.
    ChatResponseFormat = ChatTextFormat | ChatJsonObjectFormat | ChatJsonSchemaFormat
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatTextFormat {
    #[schema(inline)]
    r#type: TextType,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatJsonObjectFormat {
    #[schema(inline)]
    r#type: JsonObjectType,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatJsonSchemaFormat {
    #[schema(inline)]
    r#type: JsonSchemaType,
    json_schema: ChatJsonSchema,
}

/// Passed to the model as given.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChatJsonSchema {
    name: String,
    #[schema(value_type = Object)]
    schema: Value,
    description: Option<String>,
    strict: Option<bool>,
}

/// A request understood: the conversation for the model, what to record as the user's message, and the
/// earlier messages to record as history.
#[derive(Debug)]
pub struct Parsed {
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub options: GenerationOptions,
    /// The text recorded as this turn's user message.
    pub question: String,
    /// Earlier plain user and assistant messages (for the assistant model, whose history is stored).
    pub history: Vec<(Role, String)>,
}

fn response_format(format: &Value) -> Result<ResponseFormat, String> {
    match format["type"].as_str() {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let schema = format.pointer("/json_schema/schema").filter(|schema| schema.is_object());
            let named = format.pointer("/json_schema/name").is_some_and(Value::is_string);
            match schema {
                Some(schema) if named => {
                    Ok(ResponseFormat::JsonSchema { schema: schema.clone(), given: format.clone() })
                }
                _ => Err("`response_format.json_schema` needs a `name` and a `schema` object".to_owned()),
            }
        }
        _ => Err("`response_format.type` must be `text`, `json_object` or `json_schema`".to_owned()),
    }
}

fn tool_choice(choice: &Value) -> Result<ToolChoice, String> {
    match choice {
        Value::String(mode) if mode == "auto" => Ok(ToolChoice::Auto),
        Value::String(mode) if mode == "none" => Ok(ToolChoice::None),
        Value::String(mode) if mode == "required" => Ok(ToolChoice::Required),
        Value::Object(_) if choice["type"] == "function" => choice
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|name| ToolChoice::Function(name.to_owned()))
            .ok_or_else(|| "`tool_choice.function.name` is required".to_owned()),
        _ => Err("`tool_choice` must be `auto`, `none`, `required` or a function".to_owned()),
    }
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
                    // Arguments go on as the caller sent them, JSON or not (a call the model cut off
                    // mid-way is still part of the conversation, as OpenAI takes it).
                    for call in &message.tool_calls {
                        names_by_call.insert(call.id.clone(), call.function.name.clone());
                        said.tool_calls.push(ToolCallMessage {
                            id: call.id.clone(),
                            name: call.function.name.clone(),
                            arguments: call.function.arguments.clone(),
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
                    // The result's text byte for byte: never parsed and written again.
                    let result = ToolResultMessage { call_id, name, content: text, is_error: false };
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
        let options = self.options()?;
        let tools = self.tool_specs()?;
        Ok(Parsed { system: system.join("\n\n"), messages, tools, options, question, history })
    }

    /// The options the caller set, checked; an option Switchboard does not know is refused by name.
    fn options(&self) -> Result<GenerationOptions, String> {
        if let Some((field, _)) = self.others.iter().find(|(_, value)| !value.is_null()) {
            return Err(format!("`{field}` is not supported"));
        }
        if self.logprobs == Some(true) || self.top_logprobs.is_some() {
            return Err("`logprobs` is not supported".to_owned());
        }
        if self.temperature.is_some_and(|value| !(0.0..=2.0).contains(&value)) {
            return Err("`temperature` must be between 0 and 2".to_owned());
        }
        if self.top_p.is_some_and(|value| !(0.0..=1.0).contains(&value)) {
            return Err("`top_p` must be between 0 and 1".to_owned());
        }
        let stop = match &self.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(stop)) => vec![stop.clone()],
            Some(Value::Array(stops)) if stops.len() <= 4 => stops
                .iter()
                .map(|stop| stop.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("`stop` must be a string or an array of up to 4 strings")?,
            Some(_) => return Err("`stop` must be a string or an array of up to 4 strings".to_owned()),
        };
        Ok(GenerationOptions {
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            stop,
            response_format: self.response_format.as_ref().map(response_format).transpose()?,
            tool_choice: self.tool_choice.as_ref().map(tool_choice).transpose()?,
            parallel_tool_calls: self.parallel_tool_calls,
            user: self.user.clone(),
        })
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::providers::ChatRole;

    const FIELDS: &[&str] = &[
        "model",
        "messages",
        "stream",
        "stream_options",
        "include_usage",
        "tools",
        "tool_choice",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "response_format",
        "parallel_tool_calls",
        "user",
        "logprobs",
        "top_logprobs",
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "id",
        "function",
        "name",
        "arguments",
        "type",
        "text",
        "description",
        "parameters",
        "json_schema",
        "schema",
        "system",
        "assistant",
        "tool",
        "developer",
        "auto",
        "none",
        "required",
        "json_object",
    ];

    /// Any JSON, its keys and strings often the request's own words.
    fn json(depth: u32) -> impl Strategy<Value = Value> {
        let word = || prop_oneof!["(?s).{0,10}", prop::sample::select(FIELDS).prop_map(str::to_owned)];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-3.0..3.0f64).prop_map(Value::from),
            word().prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((word(), inner), 0..8)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// A request shaped like one (a model, messages of the known roles, options), each part often valid,
    /// sometimes of any value.
    fn request_like() -> impl Strategy<Value = Value> {
        let role = prop::sample::select(vec!["system", "developer", "user", "user", "assistant", "tool", "robot"]);
        let content = prop_oneof![
            4 => "(?s).{0,12}".prop_map(Value::from),
            1 => prop::collection::vec(("text|image_url", "(?s).{0,8}"), 0..3)
                .prop_map(|parts| parts.into_iter().map(|(kind, text)| json!({"type": kind, "text": text})).collect()),
            1 => json(2),
        ];
        let call = ("call_[0-9]", "[a-z_]{1,8}", "(?s).{0,12}").prop_map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        });
        let message = (role, content, prop::collection::vec(call, 0..3), proptest::option::of("call_[0-9]")).prop_map(
            |(role, content, calls, answers)| {
                let mut message = json!({"role": role, "content": content});
                if !calls.is_empty() {
                    message["tool_calls"] = json!(calls);
                }
                if let Some(id) = answers {
                    message["tool_call_id"] = json!(id);
                }
                message
            },
        );
        let asked = proptest::option::of("(?s).{0,12}")
            .prop_map(|text| text.map(|text| json!({"role": "user", "content": text})));
        let tool = ("function|other", "[A-Za-z0-9_.-]{0,10}").prop_map(
            |(kind, name)| json!({"type": kind, "function": {"name": name, "parameters": {"type": "object"}}}),
        );
        let option = prop_oneof![
            (-1.0..3.0f64).prop_map(|value| ("temperature", json!(value))),
            (-0.5..1.5f64).prop_map(|value| ("top_p", json!(value))),
            (0..3u32).prop_map(|value| ("n", json!(value))),
            any::<i64>().prop_map(|value| ("seed", json!(value))),
            prop::collection::vec("[a-z]{0,4}", 0..6).prop_map(|stops| ("stop", json!(stops))),
            "[a-z]{0,4}".prop_map(|stop| ("stop", json!(stop))),
            prop::sample::select(vec!["auto", "none", "required", "any"]).prop_map(|mode| ("tool_choice", json!(mode))),
            "[a-z_]{0,8}".prop_map(|name| ("tool_choice", json!({"type": "function", "function": {"name": name}}))),
            prop::sample::select(vec!["text", "json_object", "json_schema", "yaml"])
                .prop_map(|kind| ("response_format", json!({"type": kind}))),
            prop::collection::vec(tool, 0..3).prop_map(|tools| ("tools", json!(tools))),
            any::<bool>().prop_map(|value| ("stream", json!(value))),
            any::<bool>().prop_map(|value| ("include_usage", json!({"include_usage": value}))),
            (0..5000u32).prop_map(|value| ("max_tokens", json!(value))),
            any::<bool>().prop_map(|value| ("logprobs", json!(value))),
            (prop::sample::select(FIELDS), json(2)),
            Just(("frobnicate", Value::Null)),
        ];
        (
            prop_oneof!["[a-z0-9.-]{1,12}", "(?s).{0,12}"],
            prop::collection::vec(message, 0..6),
            asked,
            prop::collection::vec(option, 0..4),
        )
            .prop_map(|(model, mut messages, asked, options)| {
                messages.extend(asked);
                let mut request = json!({"model": model, "messages": messages});
                for (field, value) in options {
                    if field == "include_usage" {
                        request["stream_options"] = value;
                    } else if field != "model" && field != "messages" {
                        request[field] = value;
                    }
                }
                request
            })
    }

    /// What must hold of a request that parses: every option within its range, a question, the tool results
    /// answering earlier calls, no unknown field set.
    fn assert_understood(body: &Value, request: &CompletionRequest, parsed: &Parsed) {
        let last = parsed.messages.last().expect("messages");
        assert_eq!(last.role, ChatRole::User);
        assert!(!parsed.question.trim().is_empty());
        if last.tool_results.is_empty() {
            assert_eq!(parsed.question, last.content);
        }
        let options = &parsed.options;
        assert!(options.temperature.is_none_or(|value| (0.0..=2.0).contains(&value)));
        assert!(options.top_p.is_none_or(|value| (0.0..=1.0).contains(&value)));
        assert!(options.stop.len() <= 4);
        for tool in &parsed.tools {
            assert!((1..=64).contains(&tool.name.len()), "{}", tool.name);
            assert!(tool.name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'));
        }
        let mut calls = std::collections::HashSet::new();
        for message in &parsed.messages {
            for result in &message.tool_results {
                assert!(calls.contains(result.call_id.as_str()), "{} answers no earlier call", result.call_id);
            }
            calls.extend(message.tool_calls.iter().map(|call| call.id.as_str()));
        }
        let known: Vec<&str> = FIELDS[..19].to_vec();
        let object = body.as_object().expect("a request is an object");
        for (field, value) in object {
            assert!(known.contains(&field.as_str()) || value.is_null(), "`{field}` was ignored");
        }
        assert!(!request.model.trim().is_empty());
    }

    fn parse(body: &Value) -> Result<(CompletionRequest, Parsed), String> {
        let request: CompletionRequest =
            serde_json::from_slice(body.to_string().as_bytes()).map_err(|error| error.to_string())?;
        let parsed = request.parse()?;
        Ok((request, parsed))
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

        /// Any JSON body is a request understood or a clear error, never a panic.
        #[test]
        fn any_json_is_a_request_or_a_clear_error(body in prop_oneof![1 => json(4), 3 => request_like()]) {
            match parse(&body) {
                Ok((request, parsed)) => assert_understood(&body, &request, &parsed),
                Err(message) => prop_assert!(!message.trim().is_empty()),
            }
        }

        /// Any bytes are JSON of a request or an error.
        #[test]
        fn any_bytes_are_a_request_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(request) = serde_json::from_slice::<CompletionRequest>(&bytes) {
                let _ = request.parse();
            }
        }

        /// A conversation as clients send it parses to its question, history and system prompt; a field
        /// Switchboard does not know is refused by name when set, and passes when null.
        #[test]
        fn a_valid_conversation_parses_to_what_it_says(
            system in prop::collection::vec("(?s).{0,16}", 0..3),
            turns in prop::collection::vec(("(?s).{1,16}", "(?s).{0,16}", 0..3usize), 0..4),
            question in "\\w(?s:.){0,16}",
            unknown in prop_oneof![Just(Value::Null), json(1)],
        ) {
            let mut messages: Vec<Value> = system.iter().map(|text| json!({"role": "system", "content": text})).collect();
            let mut history = Vec::new();
            for (index, (asked, answered, calls)) in turns.iter().enumerate() {
                messages.push(json!({"role": "user", "content": asked}));
                history.push((Role::User, asked.clone()));
                if !answered.is_empty() {
                    messages.push(json!({"role": "assistant", "content": answered}));
                    history.push((Role::Assistant, answered.clone()));
                }
                let ids: Vec<String> = (0..*calls).map(|call| format!("call_{index}_{call}")).collect();
                if !ids.is_empty() {
                    let calls: Vec<Value> = ids.iter().map(|id| json!({"id": id, "type": "function",
                        "function": {"name": "crm_lookup", "arguments": "{\"id\": 1}"}})).collect();
                    messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
                    messages.extend(ids.iter().map(|id| json!({"role": "tool", "tool_call_id": id, "content": "{}"})));
                }
            }
            messages.push(json!({"role": "user", "content": [{"type": "text", "text": question}]}));
            let body = json!({"model": "gpt-4o-mini", "messages": messages, "frobnicate": unknown});
            match parse(&body) {
                Ok((_, parsed)) => {
                    prop_assert!(unknown.is_null());
                    prop_assert_eq!(&parsed.question, &question);
                    prop_assert_eq!(parsed.system, system.join("\n\n"));
                    prop_assert_eq!(parsed.history, history);
                    let results: usize = parsed.messages.iter().map(|message| message.tool_results.len()).sum();
                    prop_assert_eq!(results, turns.iter().map(|(_, _, calls)| calls).sum::<usize>());
                }
                Err(message) => {
                    prop_assert!(!unknown.is_null(), "{}", message);
                    prop_assert!(message.contains("`frobnicate`"), "{}", message);
                }
            }
        }
    }
}
