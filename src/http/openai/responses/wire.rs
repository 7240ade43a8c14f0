//! OpenAI's Responses wire format: `POST /v1/responses` bodies as clients send them, every field mapped or
//! refused by name (a `null` counts as not sent), and the request as a response keeps it: input items in
//! one normal form, which is also what `input_items` lists and what a later request continues from.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::super::schema::{UnlistedField, constant, one_of};
use crate::providers::options::{GenerationOptions, ResponseFormat, ToolChoice};
use crate::providers::{ChatMessage, ChatRole, ToolCallMessage, ToolResultMessage, ToolSpec};

/// The `/v1/chat/completions` door's name for Switchboard's assistant, which this door does not offer.
const ASSISTANT_MODEL: &str = "switchboard-assistant";

/// OpenAI's limits on `metadata`.
const METADATA_PAIRS: usize = 16;
const METADATA_KEY_CHARS: usize = 64;
const METADATA_VALUE_CHARS: usize = 512;

/// `POST /v1/responses`: OpenAI's request, every field taken or refused by name (`null` counts as not
/// sent). The model is one of the tenant's, given the conversation and the caller's function tools.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = CreateResponseRequest,
    examples(json!({
        "model": "switchboard-extractive",
        "input": "How do I get a refund?",
        "instructions": "Be brief.",
    })),
)]
pub struct CreateRequest {
    /// One of the tenant's models (`GET /v1/models`), 1 to 200 characters; not `switchboard-assistant`.
    pub model: String,
    #[schema(value_type = ResponseInput)]
    pub input: Option<Value>,
    /// The system prompt (not carried over by `previous_response_id`).
    pub instructions: Option<String>,
    #[schema(value_type = Option<Vec<ResponseFunctionToolParam>>)]
    pub tools: Option<Vec<Value>>,
    #[schema(value_type = Option<ResponseToolChoice>)]
    pub tool_choice: Option<Value>,
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    #[schema(minimum = 1)]
    pub max_output_tokens: Option<u32>,
    pub parallel_tool_calls: Option<bool>,
    /// Whether the response is kept, to be shown and continued (default true).
    pub store: Option<bool>,
    /// Answer at once (`queued` or `in_progress`) and run on; poll `GET /v1/responses/{id}` (needs `store`).
    pub background: Option<bool>,
    /// Whether to answer as server-sent events.
    pub stream: Option<bool>,
    #[schema(value_type = Option<ResponseMetadata>)]
    pub metadata: Option<Value>,
    pub user: Option<String>,
    /// A stored response to continue: its input and output come before this `input`.
    pub previous_response_id: Option<String>,
    #[schema(value_type = Option<ResponseTextParam>)]
    pub text: Option<Value>,
    /// Nothing to include: only an empty array.
    #[schema(max_items = 0)]
    pub include: Option<Vec<Value>>,
    #[schema(value_type = Option<ResponseTruncation>)]
    pub truncation: Option<String>,
    /// Every other field: refused by name unless null, never silently dropped.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    pub others: Map<String, Value>,
}

one_of! {
    /// A string (one user message), or the conversation's items. Required.
    ResponseInput = String | ResponseInputItems
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseInputItems(Vec<ResponseInputItem>);

one_of! {
    /// A message (`type` `message`, or none), a function call the model made, or a call's output. Items as
    /// the API showed them may be sent back with their `id` and `status`.
    ResponseInputItem = ResponseInputMessage | ResponseInputFunctionCall | ResponseInputFunctionCallOutput
}

constant!(MessageType = "message");
constant!(FunctionCallType = "function_call");
constant!(FunctionCallOutputType = "function_call_output");
constant!(FunctionType = "function");
constant!(TextType = "text");
constant!(JsonObjectType = "json_object");
constant!(JsonSchemaType = "json_schema");

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // Schemas of what `input_item` takes.
pub struct ResponseInputMessage {
    #[schema(inline)]
    r#type: Option<MessageType>,
    /// Kept when a string.
    id: Option<Value>,
    status: Option<Value>,
    #[schema(value_type = ResponseInputRole)]
    role: String,
    #[schema(value_type = ResponseInputContent)]
    content: Value,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ResponseInputRole {
    User,
    Assistant,
    System,
    Developer,
}

one_of! {
    /// Text, or text parts: an assistant's are its `output_text`, anyone else's `input_text`.
    ResponseInputContent = String | Vec<ResponseInputTextPart>
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ResponseTextPartType {
    InputText,
    OutputText,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseInputTextPart {
    #[schema(inline, value_type = ResponseTextPartType)]
    r#type: String,
    text: String,
    /// Taken and dropped, as sent back from an output.
    annotations: Option<Value>,
    logprobs: Option<Value>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseInputFunctionCall {
    #[schema(inline)]
    r#type: FunctionCallType,
    id: Option<Value>,
    status: Option<Value>,
    call_id: String,
    name: String,
    /// As the model wrote them, JSON or not.
    arguments: String,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseInputFunctionCallOutput {
    #[schema(inline)]
    r#type: FunctionCallOutputType,
    id: Option<Value>,
    status: Option<Value>,
    /// The `call_id` of an earlier `function_call`.
    call_id: String,
    #[schema(value_type = ResponseFunctionCallOutputContent)]
    output: Value,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

one_of! {
    /// The function's output, byte for byte: a string, or text parts (concatenated).
    ResponseFunctionCallOutputContent = String | Vec<ResponseOutputTextPart>
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseOutputTextPart {
    #[schema(inline, value_type = ResponseTextPartType)]
    r#type: String,
    text: String,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

/// A function tool of the caller's: its calls come back to the caller.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseFunctionToolParam {
    #[schema(inline)]
    r#type: FunctionType,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    name: String,
    description: Option<String>,
    /// The arguments' JSON Schema (an empty object schema when absent).
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
    strict: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

one_of! {
    /// `auto` (the default), `none`, `required`, or the function the model must call.
    ResponseToolChoice = ResponseToolChoiceMode | ResponseNamedToolChoice
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ResponseToolChoiceMode {
    Auto,
    None,
    Required,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ResponseNamedToolChoice {
    #[schema(inline)]
    r#type: FunctionType,
    name: String,
}

/// Up to 16 pairs: keys of at most 64 characters, string values of at most 512.
pub struct ResponseMetadata;

impl PartialSchema for ResponseMetadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(METADATA_PAIRS))
            .property_names(Some(ObjectBuilder::new().schema_type(Type::String).max_length(Some(METADATA_KEY_CHARS))))
            .additional_properties(Some(
                ObjectBuilder::new().schema_type(Type::String).max_length(Some(METADATA_VALUE_CHARS)),
            ))
            .description(Some("Up to 16 pairs: keys of at most 64 characters, string values of at most 512."))
            .into()
    }
}

impl ToSchema for ResponseMetadata {}

/// How the model writes its text.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseTextParam {
    #[schema(value_type = Option<ResponseTextFormat>)]
    format: Option<Value>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: HashMap<String, Value>,
}

one_of! {
    /// Plain text (the default), any JSON object, or JSON matching a schema; shown again as given.
    ResponseTextFormat = ResponseTextFormatText | ResponseTextFormatJsonObject | ResponseTextFormatJsonSchema
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseTextFormatText {
    #[schema(inline)]
    r#type: TextType,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseTextFormatJsonObject {
    #[schema(inline)]
    r#type: JsonObjectType,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ResponseTextFormatJsonSchema {
    #[schema(inline)]
    r#type: JsonSchemaType,
    name: String,
    #[schema(value_type = Object)]
    schema: Value,
    /// Passed to the model as given.
    strict: Option<bool>,
    description: Option<String>,
}

/// Only `disabled`: the conversation is sent whole, never cut.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ResponseTruncation {
    Disabled,
}

/// A refusal naming the request field at fault, as OpenAI's `param` does (`input[2].content[0].type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub param: String,
    pub message: String,
}

fn refuse(param: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { param: param.into(), message: message.into() }
}

/// One item of a conversation, in the form a response keeps and shows it (`input_items`, `output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = ResponseItem)]
pub enum Item {
    Message {
        id: String,
        #[schema(value_type = ResponseInputRole)]
        role: String,
        content: Vec<Part>,
        #[schema(value_type = ResponseItemStatus)]
        status: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        /// As the model wrote them, JSON or not (empty while the call is `in_progress`).
        arguments: String,
        #[schema(value_type = ResponseItemStatus)]
        status: String,
    },
    FunctionCallOutput {
        id: String,
        call_id: String,
        output: String,
        #[schema(value_type = ResponseItemStatus)]
        status: String,
    },
}

/// An item's state: input items are `completed`; the answer's message is `incomplete` when it was cut short.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ResponseItemStatus {
    InProgress,
    Completed,
    Incomplete,
}

/// A text part: `input_text` in what the client says, `output_text` (with its annotations) in what the
/// model said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ResponseContentPart)]
pub struct Part {
    #[serde(rename = "type")]
    #[schema(inline, value_type = ResponseTextPartType)]
    pub kind: String,
    pub text: String,
    /// In `output_text` parts, always empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub annotations: Option<Vec<Value>>,
    /// In `output_text` parts, always empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub logprobs: Option<Vec<Value>>,
}

impl Part {
    pub fn output_text(text: String) -> Self {
        Self { kind: "output_text".to_owned(), text, annotations: Some(Vec::new()), logprobs: Some(Vec::new()) }
    }

    fn input_text(text: String) -> Self {
        Self { kind: "input_text".to_owned(), text, annotations: None, logprobs: None }
    }
}

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Self::Message { id, .. } | Self::FunctionCall { id, .. } | Self::FunctionCallOutput { id, .. } => id,
        }
    }
}

/// A function tool as the response shows it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ResponseFunctionTool)]
pub struct Tool {
    #[serde(rename = "type")]
    #[schema(inline, value_type = FunctionType)]
    pub kind: String,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true, value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[schema(required = true)]
    pub strict: Option<bool>,
}

/// The request as its response keeps it (on its run) and shows it again: `input` is the whole
/// conversation, the items inherited through `previous_response_id` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    pub model: String,
    pub instructions: Option<String>,
    pub input: Vec<Item>,
    pub tools: Vec<Tool>,
    pub tool_choice: Value,
    pub text: Value,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u32>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub store: bool,
    pub background: bool,
    pub metadata: Map<String, Value>,
    pub user: Option<String>,
}

/// A request understood: what to keep, the tools and options for the model, and how to answer.
#[derive(Debug)]
pub struct Checked {
    /// `input` holds this request's own items; the door puts the inherited ones before them.
    pub stored: StoredRequest,
    pub tools: Vec<ToolSpec>,
    pub options: GenerationOptions,
    pub stream: bool,
}

/// The conversation the model is given, and the text recorded as the turn's user message.
#[derive(Debug)]
pub struct Conversation {
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub question: String,
}

impl CreateRequest {
    pub fn check(self) -> Result<Checked, FieldError> {
        if let Some((field, _)) = self.others.iter().find(|(_, value)| !value.is_null()) {
            return Err(refuse(field.as_str(), format!("`{field}` is not supported")));
        }
        if self.model.trim().is_empty() || self.model.len() > 200 {
            return Err(refuse("model", "model must be 1 to 200 characters"));
        }
        if self.model == ASSISTANT_MODEL {
            let message = format!(
                "`{ASSISTANT_MODEL}` is served on /v1/chat/completions; /v1/responses passes the conversation to \
                 one of the tenant's models"
            );
            return Err(refuse("model", message));
        }
        if self.temperature.is_some_and(|value| !(0.0..=2.0).contains(&value)) {
            return Err(refuse("temperature", "`temperature` must be between 0 and 2"));
        }
        if self.top_p.is_some_and(|value| !(0.0..=1.0).contains(&value)) {
            return Err(refuse("top_p", "`top_p` must be between 0 and 1"));
        }
        if self.max_output_tokens == Some(0) {
            return Err(refuse("max_output_tokens", "`max_output_tokens` must be at least 1"));
        }
        if self.include.as_ref().is_some_and(|include| !include.is_empty()) {
            return Err(refuse("include", "`include` is not supported: responses carry no extra outputs to include"));
        }
        if self.truncation.as_deref().is_some_and(|truncation| truncation != "disabled") {
            let message = "only `truncation: \"disabled\"` is supported: the conversation is sent whole, never cut";
            return Err(refuse("truncation", message));
        }
        let store = self.store.unwrap_or(true);
        let background = self.background.unwrap_or(false);
        if background && !store {
            return Err(refuse("background", "a background response must be stored (`store: true`)"));
        }
        let input = match self.input {
            None | Some(Value::Null) => return Err(refuse("input", "`input` is required")),
            Some(input) => input_items(input)?,
        };
        let (tools, specs) = tools(self.tools.unwrap_or_default())?;
        let tool_choice = self.tool_choice.filter(|choice| !choice.is_null());
        let choice = tool_choice.as_ref().map(parse_tool_choice).transpose()?;
        let (text, response_format) = text(self.text.filter(|text| !text.is_null()))?;
        let metadata = metadata(self.metadata.filter(|metadata| !metadata.is_null()))?;
        let options = GenerationOptions {
            temperature: self.temperature,
            top_p: self.top_p,
            response_format,
            tool_choice: choice,
            parallel_tool_calls: self.parallel_tool_calls,
            user: self.user.clone(),
            ..GenerationOptions::default()
        };
        let stored = StoredRequest {
            model: self.model,
            instructions: self.instructions,
            input,
            tools,
            tool_choice: tool_choice.unwrap_or_else(|| json!("auto")),
            text,
            temperature: self.temperature,
            top_p: self.top_p,
            max_output_tokens: self.max_output_tokens,
            parallel_tool_calls: self.parallel_tool_calls.unwrap_or(true),
            previous_response_id: self.previous_response_id,
            store,
            background,
            metadata,
            user: self.user,
        };
        Ok(Checked { stored, tools: specs, options, stream: self.stream.unwrap_or(false) })
    }
}

/// A fresh item id with OpenAI's kind of prefix (`msg_`, `fc_`).
fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// `input`: a string (one user message) or an array of items.
fn input_items(input: Value) -> Result<Vec<Item>, FieldError> {
    match input {
        Value::String(text) => Ok(vec![Item::Message {
            id: new_id("msg"),
            role: "user".to_owned(),
            content: vec![Part::input_text(text)],
            status: "completed".to_owned(),
        }]),
        Value::Array(items) => items.iter().enumerate().map(|(index, item)| input_item(index, item)).collect(),
        _ => Err(refuse("input", "`input` must be a string or an array of input items")),
    }
}

/// Fields an item may carry besides its own: its id and status, as the API returned them, mean nothing to
/// the model (clients send output items back as they got them).
const ECHOED: &[&str] = &["type", "id", "status"];

fn input_item(index: usize, item: &Value) -> Result<Item, FieldError> {
    let path = format!("input[{index}]");
    let Value::Object(fields) = item else {
        return Err(refuse(path, "an input item must be an object"));
    };
    let kind = match fields.get("type") {
        None | Some(Value::Null) => "message",
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(refuse(format!("{path}.type"), "`type` must be a string")),
    };
    let allowed: &[&str] = match kind {
        "message" => &["role", "content"],
        "function_call" => &["call_id", "name", "arguments"],
        "function_call_output" => &["call_id", "output"],
        other => {
            let message = format!(
                "input items of type `{other}` are not supported: messages, function_call and \
                 function_call_output are"
            );
            return Err(refuse(format!("{path}.type"), message));
        }
    };
    if let Some((field, _)) = fields.iter().find(|(field, value)| {
        !value.is_null() && !ECHOED.contains(&field.as_str()) && !allowed.contains(&field.as_str())
    }) {
        return Err(refuse(format!("{path}.{field}"), format!("`{field}` is not supported on a {kind} item")));
    }
    let given_id = fields.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned);
    let string = |field: &str| -> Result<String, FieldError> {
        fields
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| refuse(format!("{path}.{field}"), format!("`{field}` is required and must be a string")))
    };
    let status = "completed".to_owned();
    match kind {
        "function_call" => Ok(Item::FunctionCall {
            id: given_id.unwrap_or_else(|| new_id("fc")),
            call_id: string("call_id")?,
            name: string("name")?,
            // As the client sent them, JSON or not: a call the model cut off is still part of the
            // conversation.
            arguments: string("arguments")?,
            status,
        }),
        "function_call_output" => Ok(Item::FunctionCallOutput {
            id: given_id.unwrap_or_else(|| new_id("fco")),
            call_id: string("call_id")?,
            output: output_text(&path, fields.get("output"))?,
            status,
        }),
        _ => {
            let role = string("role")?;
            if !matches!(role.as_str(), "user" | "assistant" | "system" | "developer") {
                let message = format!("unknown role {role:?}: user, assistant, system or developer");
                return Err(refuse(format!("{path}.role"), message));
            }
            let content = parts(&path, &role, fields.get("content"))?;
            Ok(Item::Message { id: given_id.unwrap_or_else(|| new_id("msg")), role, content, status })
        }
    }
}

/// A message's content: a string, or text parts. An assistant's text is `output_text`, anyone else's
/// `input_text`, whichever the client named.
fn parts(path: &str, role: &str, content: Option<&Value>) -> Result<Vec<Part>, FieldError> {
    let part = |text: String| if role == "assistant" { Part::output_text(text) } else { Part::input_text(text) };
    match content {
        Some(Value::String(text)) => Ok(vec![part(text.clone())]),
        Some(Value::Array(given)) => given
            .iter()
            .enumerate()
            .map(|(index, given)| text_part(&format!("{path}.content[{index}]"), given, &["annotations", "logprobs"]))
            .map(|text| text.map(part))
            .collect(),
        _ => Err(refuse(format!("{path}.content"), "`content` must be a string or an array of text parts")),
    }
}

/// The text of an `input_text` or `output_text` part; any other kind (images, files, audio, refusals) is
/// refused by its path.
fn text_part(path: &str, part: &Value, also: &[&str]) -> Result<String, FieldError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(kind, "input_text" | "output_text") {
        let message = format!("content parts of type `{kind}` are not supported: only input_text and output_text");
        return Err(refuse(format!("{path}.type"), message));
    }
    if let Some(fields) = part.as_object()
        && let Some((field, _)) = fields.iter().find(|(field, value)| {
            !value.is_null() && !matches!(field.as_str(), "type" | "text") && !also.contains(&field.as_str())
        })
    {
        return Err(refuse(format!("{path}.{field}"), format!("`{field}` is not supported on a text part")));
    }
    part.get("text")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| refuse(format!("{path}.text"), "`text` is required and must be a string"))
}

/// A function call's output as text, byte for byte: a string, or the text of `input_text` parts.
fn output_text(path: &str, output: Option<&Value>) -> Result<String, FieldError> {
    match output {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(given)) => given
            .iter()
            .enumerate()
            .map(|(index, given)| text_part(&format!("{path}.output[{index}]"), given, &[]))
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.concat()),
        _ => Err(refuse(format!("{path}.output"), "`output` must be a string or an array of text parts")),
    }
}

/// The client's function tools, as shown again and as the model is offered them.
fn tools(given: Vec<Value>) -> Result<(Vec<Tool>, Vec<ToolSpec>), FieldError> {
    let mut tools = Vec::new();
    let mut specs = Vec::new();
    for (index, tool) in given.into_iter().enumerate() {
        let path = format!("tools[{index}]");
        let Value::Object(mut fields) = tool else {
            return Err(refuse(path, "a tool must be an object"));
        };
        let kind = fields.remove("type").unwrap_or(Value::Null);
        if kind != "function" {
            let shown = kind.as_str().map_or_else(|| kind.to_string(), str::to_owned);
            let message = format!("tools of type `{shown}` are not supported: only the client's own `function` tools");
            return Err(refuse(format!("{path}.type"), message));
        }
        let name = match fields.remove("name") {
            Some(Value::String(name))
                if (1..=64).contains(&name.len())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                name
            }
            _ => return Err(refuse(format!("{path}.name"), "a function's name is 1 to 64 of [A-Za-z0-9_-]")),
        };
        let description = match fields.remove("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(description)) => Some(description),
            Some(_) => return Err(refuse(format!("{path}.description"), "`description` must be a string")),
        };
        let parameters = match fields.remove("parameters") {
            None | Some(Value::Null) => None,
            Some(parameters @ Value::Object(_)) => Some(parameters),
            Some(_) => return Err(refuse(format!("{path}.parameters"), "`parameters` must be a JSON Schema object")),
        };
        // Shown again as given; the model is offered the schema, and the provider's own strictness applies.
        let strict = match fields.remove("strict") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(strict)) => Some(strict),
            Some(_) => return Err(refuse(format!("{path}.strict"), "`strict` must be a boolean")),
        };
        if let Some((field, _)) = fields.iter().find(|(_, value)| !value.is_null()) {
            return Err(refuse(format!("{path}.{field}"), format!("`{field}` is not supported on a function tool")));
        }
        specs.push(ToolSpec {
            name: name.clone(),
            description: description.clone().unwrap_or_default(),
            parameters: parameters.clone().unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
        });
        tools.push(Tool { kind: "function".to_owned(), name, description, parameters, strict });
    }
    Ok((tools, specs))
}

fn parse_tool_choice(choice: &Value) -> Result<ToolChoice, FieldError> {
    match choice {
        Value::String(mode) if mode == "auto" => Ok(ToolChoice::Auto),
        Value::String(mode) if mode == "none" => Ok(ToolChoice::None),
        Value::String(mode) if mode == "required" => Ok(ToolChoice::Required),
        Value::Object(fields) if choice["type"] == "function" => match (fields.get("name"), fields.len()) {
            (Some(Value::String(name)), 2) => Ok(ToolChoice::Function(name.clone())),
            _ => Err(refuse("tool_choice", "a function `tool_choice` is `{\"type\": \"function\", \"name\": …}`")),
        },
        _ => Err(refuse("tool_choice", "`tool_choice` must be `auto`, `none`, `required` or a function")),
    }
}

/// `text`: its `format` (plain text, any JSON object, or JSON matching a schema), shown again as
/// `{"format": …}`.
fn text(given: Option<Value>) -> Result<(Value, Option<ResponseFormat>), FieldError> {
    let plain = json!({ "format": { "type": "text" } });
    let Some(given) = given else {
        return Ok((plain, None));
    };
    let Value::Object(fields) = &given else {
        return Err(refuse("text", "`text` must be an object"));
    };
    if let Some((field, _)) = fields.iter().find(|(field, value)| !value.is_null() && field.as_str() != "format") {
        return Err(refuse(format!("text.{field}"), format!("`text.{field}` is not supported")));
    }
    let format = match fields.get("format") {
        None | Some(Value::Null) => return Ok((plain, None)),
        Some(format) => format,
    };
    match format["type"].as_str() {
        // The default of every model: nothing to ask of it.
        Some("text") => Ok((json!({ "format": format }), None)),
        Some("json_object") => Ok((json!({ "format": format }), Some(ResponseFormat::JsonObject))),
        Some("json_schema") => {
            let schema = format.get("schema").filter(|schema| schema.is_object());
            let name = format.get("name").filter(|name| name.is_string());
            let (Some(schema), Some(name)) = (schema, name) else {
                return Err(refuse("text.format", "a `json_schema` format needs a `name` and a `schema` object"));
            };
            // The providers that take OpenAI's form take Chat Completions' `response_format`.
            let mut json_schema = Map::new();
            json_schema.insert("name".to_owned(), name.clone());
            json_schema.insert("schema".to_owned(), schema.clone());
            for field in ["strict", "description"] {
                if let Some(value) = format.get(field).filter(|value| !value.is_null()) {
                    json_schema.insert(field.to_owned(), value.clone());
                }
            }
            let response_format = ResponseFormat::JsonSchema {
                schema: schema.clone(),
                given: json!({ "type": "json_schema", "json_schema": json_schema }),
            };
            Ok((json!({ "format": format }), Some(response_format)))
        }
        _ => Err(refuse("text.format.type", "`text.format.type` must be `text`, `json_object` or `json_schema`")),
    }
}

/// `metadata` as OpenAI takes it: up to 16 pairs, keys up to 64 characters, string values up to 512.
fn metadata(given: Option<Value>) -> Result<Map<String, Value>, FieldError> {
    let Some(given) = given else {
        return Ok(Map::new());
    };
    let Value::Object(pairs) = given else {
        return Err(refuse("metadata", "`metadata` must be an object of strings"));
    };
    if pairs.len() > METADATA_PAIRS {
        return Err(refuse("metadata", format!("`metadata` holds at most {METADATA_PAIRS} pairs")));
    }
    for (key, value) in &pairs {
        let fits = key.chars().count() <= METADATA_KEY_CHARS
            && value.as_str().is_some_and(|value| value.chars().count() <= METADATA_VALUE_CHARS);
        if !fits {
            let message = format!(
                "metadata keys are at most {METADATA_KEY_CHARS} characters, values strings of at most \
                 {METADATA_VALUE_CHARS}"
            );
            return Err(refuse(format!("metadata.{key}"), message));
        }
    }
    Ok(pairs)
}

/// The conversation for the model: `instructions` and the system and developer messages as its system
/// prompt; the calls a model made joined to its message, and their outputs sent back together after
/// them, as in `/v1/chat/completions`.
pub fn conversation(instructions: Option<&str>, items: &[Item]) -> Result<Conversation, FieldError> {
    let mut system: Vec<String> = instructions.filter(|text| !text.is_empty()).map(str::to_owned).into_iter().collect();
    let mut messages: Vec<ChatMessage> = Vec::new();
    let mut names_by_call = HashMap::new();
    for item in items {
        match item {
            Item::Message { role, content, .. } => {
                let text = content.iter().map(|part| part.text.as_str()).collect::<Vec<_>>().join("\n");
                match role.as_str() {
                    "user" => messages.push(ChatMessage::user(text)),
                    "assistant" => messages.push(ChatMessage::assistant(text)),
                    _ => system.push(text),
                }
            }
            Item::FunctionCall { call_id, name, arguments, .. } => {
                names_by_call.insert(call_id.as_str(), name.as_str());
                let call = ToolCallMessage { id: call_id.clone(), name: name.clone(), arguments: arguments.clone() };
                match messages.last_mut() {
                    Some(last) if last.role == ChatRole::Assistant && last.tool_results.is_empty() => {
                        last.tool_calls.push(call);
                    }
                    _ => {
                        let mut said = ChatMessage::assistant("");
                        said.tool_calls.push(call);
                        messages.push(said);
                    }
                }
            }
            Item::FunctionCallOutput { call_id, output, .. } => {
                let Some(name) = names_by_call.get(call_id.as_str()) else {
                    let message =
                        format!("the function_call_output for call_id {call_id:?} answers no earlier function_call");
                    return Err(refuse("input", message));
                };
                let result = ToolResultMessage {
                    call_id: call_id.clone(),
                    name: (*name).to_owned(),
                    content: output.clone(),
                    is_error: false,
                };
                match messages.last_mut() {
                    Some(last) if last.role == ChatRole::User && !last.tool_results.is_empty() => {
                        last.tool_results.push(result);
                    }
                    _ => {
                        let mut results = ChatMessage::user("");
                        results.tool_results.push(result);
                        messages.push(results);
                    }
                }
            }
        }
    }
    let last = messages.last().ok_or_else(|| refuse("input", "`input` must hold a user message"))?;
    let question = if last.tool_results.is_empty() {
        if last.role != ChatRole::User || last.content.trim().is_empty() {
            return Err(refuse(
                "input",
                "the conversation must end with a user message with text, or function call outputs",
            ));
        }
        last.content.clone()
    } else {
        let names: Vec<&str> = last.tool_results.iter().map(|result| result.name.as_str()).collect();
        format!("(results of {})", names.join(", "))
    };
    Ok(Conversation { system: system.join("\n\n"), messages, question })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> Result<Checked, FieldError> {
        serde_json::from_value::<CreateRequest>(body).expect("a request").check()
    }

    /// The field a request is refused for, whether by its own fields or by its conversation.
    fn refused(body: Value) -> String {
        let understood = request(body)
            .and_then(|checked| conversation(checked.stored.instructions.as_deref(), &checked.stored.input).map(drop));
        understood.expect_err("refused").param
    }

    #[test]
    fn a_string_input_is_one_user_message() {
        let checked = request(json!({ "model": "m", "input": "Hi", "instructions": "Be brief." })).unwrap();
        let conversation = conversation(checked.stored.instructions.as_deref(), &checked.stored.input).unwrap();
        assert_eq!(conversation.system, "Be brief.");
        assert_eq!(conversation.messages, [ChatMessage::user("Hi")]);
        assert_eq!(conversation.question, "Hi");
        assert!(checked.stored.store);
        assert_eq!(checked.stored.tool_choice, "auto");
    }

    #[test]
    fn calls_and_their_outputs_become_one_step() {
        let body = json!({ "model": "m", "input": [
            { "role": "developer", "content": [{ "type": "input_text", "text": "Use tools." }] },
            { "role": "user", "content": "Weather in Lyon and Nantes?" },
            { "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
              "content": [{ "type": "output_text", "text": "Looking.", "annotations": [] }] },
            { "type": "function_call", "id": "fc_1", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Lyon\"}" },
            { "type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{\"city\": \"Na" },
            { "type": "function_call_output", "call_id": "c1", "output": "{\"sky\": \"sun\", \"n\": 1.50}" },
            { "type": "function_call_output", "call_id": "c2", "output": [{ "type": "input_text", "text": "cut" }] }
        ]});
        let checked = request(body).unwrap();
        let conversation = conversation(None, &checked.stored.input).unwrap();
        assert_eq!(conversation.system, "Use tools.");
        assert_eq!(conversation.messages.len(), 3);
        let said = &conversation.messages[1];
        assert_eq!(said.content, "Looking.");
        assert_eq!(said.tool_calls.len(), 2);
        assert_eq!(said.tool_calls[1].arguments, "{\"city\": \"Na", "arguments as given");
        let results = &conversation.messages[2].tool_results;
        assert_eq!(results[0].content, "{\"sky\": \"sun\", \"n\": 1.50}", "byte for byte");
        assert_eq!(results[1].name, "weather");
        assert_eq!(conversation.question, "(results of weather, weather)");
        assert_eq!(checked.stored.input[2].id(), "msg_1", "a given id is kept");
        assert!(checked.stored.input[4].id().starts_with("fc_"), "a missing one is made");
    }

    #[test]
    fn every_refusal_names_its_field() {
        let base = || json!({ "model": "m", "input": "Hi" });
        let with = |field: &str, value: Value| {
            let mut body = base();
            body[field] = value;
            body
        };
        assert_eq!(refused(with("reasoning", json!({ "effort": "low" }))), "reasoning");
        assert_eq!(refused(with("tools", json!([{ "type": "web_search" }]))), "tools[0].type");
        assert_eq!(refused(with("tools", json!([{ "type": "function", "name": "f", "x": 1 }]))), "tools[0].x");
        assert_eq!(
            refused(with("input", json!([{ "role": "user", "content": [{ "type": "input_image" }] }]))),
            "input[0].content[0].type"
        );
        assert_eq!(refused(with("input", json!([{ "type": "item_reference", "id": "x" }]))), "input[0].type");
        assert_eq!(refused(with("input", json!([{ "role": "robot", "content": "x" }]))), "input[0].role");
        assert_eq!(
            refused(with("input", json!([{ "type": "function_call_output", "call_id": "x", "output": "y" }]))),
            "input"
        );
        assert_eq!(refused(with("temperature", json!(3))), "temperature");
        assert_eq!(refused(with("include", json!(["reasoning.encrypted_content"]))), "include");
        assert_eq!(refused(with("metadata", json!({ "k": 1 }))), "metadata.k");
        assert_eq!(refused(with("model", json!("switchboard-assistant"))), "model");
        assert_eq!(refused(with("text", json!({ "verbosity": "low" }))), "text.verbosity");
        assert_eq!(refused(json!({ "model": "m", "input": "Hi", "store": false, "background": true })), "background");
        assert_eq!(refused(json!({ "model": "m" })), "input");
        // Nulls count as not sent.
        assert!(request(with("reasoning", Value::Null)).is_ok());
    }

    #[test]
    fn a_json_schema_format_reaches_providers_in_chat_completions_form() {
        let format = json!({ "type": "json_schema", "name": "answer", "schema": { "type": "object" }, "strict": true });
        let checked = request(json!({ "model": "m", "input": "Hi", "text": { "format": format } })).unwrap();
        let Some(ResponseFormat::JsonSchema { given, .. }) = checked.options.response_format else {
            panic!("a schema format");
        };
        assert_eq!(given["json_schema"]["name"], "answer");
        assert_eq!(given["json_schema"]["strict"], true);
        assert_eq!(checked.stored.text["format"], format);
    }

    #[test]
    fn the_stored_request_reads_back_as_itself() {
        let checked = request(json!({ "model": "m", "input": [{ "role": "user", "content": "Hi" }],
            "tools": [{ "type": "function", "name": "f", "strict": true }], "metadata": { "a": "b" } }))
        .unwrap();
        let stored = serde_json::to_value(&checked.stored).unwrap();
        assert_eq!(serde_json::from_value::<StoredRequest>(stored).unwrap(), checked.stored);
    }
}
