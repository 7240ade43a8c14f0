//! What a caller asks of the model beyond the conversation (sampling, stop sequences, the answer's
//! format, how tools may be used). Each provider maps what it supports to its own fields and refuses the
//! rest, naming the parameter: an option is never accepted and dropped.

use serde_json::Value;

use super::{ProviderError, ProviderErrorKind};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationOptions {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    /// Sequences that end the answer where they appear.
    pub stop: Vec<String>,
    pub response_format: Option<ResponseFormat>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    /// The caller's end user, for the provider's abuse monitoring.
    pub user: Option<String>,
}

impl GenerationOptions {
    /// The name of the first option set, if any (for a refusal that names it).
    pub fn first_set(&self) -> Option<&'static str> {
        [
            ("temperature", self.temperature.is_some()),
            ("top_p", self.top_p.is_some()),
            ("seed", self.seed.is_some()),
            ("stop", !self.stop.is_empty()),
            ("response_format", self.response_format.is_some()),
            ("tool_choice", self.tool_choice.is_some()),
            ("parallel_tool_calls", self.parallel_tool_calls.is_some()),
            ("user", self.user.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    }
}

/// The shape the answer must take.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching `schema`; `given` is the caller's `response_format` as sent, for providers that
    /// take OpenAI's form.
    JsonSchema {
        schema: Value,
        given: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// At least one tool call.
    Required,
    /// A call of this tool.
    Function(String),
}

/// The refusal of an option a provider cannot honour.
pub fn unsupported(provider: &str, parameter: &str) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Unsupported { parameter: parameter.to_owned() },
        format!("`{parameter}` is not supported by the {provider} provider"),
    )
}
