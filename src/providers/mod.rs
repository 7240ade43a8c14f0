//! Model providers behind one small interface: stream a chat, report usage, fail with a typed error.
//! A closed enum dispatches to one file per provider; retries and timeouts wrap them all alike.

pub mod anthropic;
pub mod byok;
pub mod credentials;
mod decode;
pub mod gemini;
pub mod http;
pub mod local;
pub mod openai;
pub mod options;
pub mod retry;
pub mod store;

use crate::tokens::TokenUsage;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Who wrote a message the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    User,
    Assistant,
}

/// One message of the conversation the model sees. An assistant message may carry the tool calls it
/// made; the user message after it carries their results (each provider places them its own way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    pub tool_calls: Vec<ToolCallMessage>,
    pub tool_results: Vec<ToolResultMessage>,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: ChatRole::User, content: content.into(), tool_calls: Vec::new(), tool_results: Vec::new() }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: ChatRole::Assistant, content: content.into(), tool_calls: Vec::new(), tool_results: Vec::new() }
    }
}

/// A tool the model may call, under the wire name it must use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// A call the model made, as the conversation repeats it to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallMessage {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: JSON text, or not even that (a call cut off mid-way). Kept
    /// as text so a conversation passed through reaches the model byte for byte.
    pub arguments: String,
}

impl ToolCallMessage {
    /// The arguments as a JSON object, for providers that take one (an unreadable call gets `{}`).
    pub fn arguments_object(&self) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.arguments)
            .ok()
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

/// The answer to one call: the tool's (shaped) result, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResultMessage {
    pub call_id: String,
    pub name: String,
    /// The result as text, exactly as it was given (JSON keeps its key order, numbers their digits).
    pub content: String,
    pub is_error: bool,
}

/// A retrieved passage as the model sees it, in the system prompt and (offline) in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passage {
    pub title: String,
    pub source_path: String,
    pub heading_path: Vec<String>,
    pub content: String,
}

/// What the engine asks of a model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    /// Oldest first; the last one is the user's question.
    pub messages: Vec<ChatMessage>,
    /// The caller's cap on the answer, if it set one. None sends no cap: the model's own maximum applies
    /// (Anthropic, which requires one, gets the model's ceiling).
    pub max_output_tokens: Option<u32>,
    /// The retrieved passages, numbered from 1 (also rendered into `system`).
    pub passages: Vec<Passage>,
    /// The tools the model may call; empty means none.
    pub tools: Vec<ToolSpec>,
    /// False once the turn has used its tool steps: the tools stay declared (the conversation refers
    /// to them, and some providers refuse tool blocks without declarations) but may not be called.
    pub tool_calls_allowed: bool,
    /// The caller's generation options (pass-through turns); each provider maps or refuses them.
    pub options: options::GenerationOptions,
}

impl ChatRequest {
    /// The user's question this turn answers.
    pub fn question(&self) -> &str {
        let asked = |message: &&ChatMessage| message.role == ChatRole::User && message.tool_results.is_empty();
        self.messages.iter().rev().find(asked).map_or("", |m| m.content.as_str())
    }
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatChunk {
    Text(String),
    /// A piece of a tool call. OpenAI and Anthropic stream the arguments in fragments (the first piece
    /// of a call carries its id and name); Gemini sends each call whole.
    ToolCall {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// The provider's own token report, normalised (cached and reasoning tokens apart).
    Usage(TokenUsage),
    /// Why the model stopped, as the provider said it.
    Finish(FinishReason),
}

/// Why a model stopped writing: an answer cut at its token limit must never look complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end (or a stop sequence).
    Stop,
    /// The output token limit cut the answer.
    Length,
    /// The model asked for tools.
    ToolCalls,
    /// The provider withheld or cut the answer (safety, recitation, refusal).
    ContentFilter,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderErrorKind {
    Timeout,
    RateLimited {
        retry_after: Option<Duration>,
    },
    AuthFailed,
    BadResponse,
    Unavailable,
    InvalidRequest,
    Unreachable,
    /// No key for the chosen provider (neither the tenant's nor the platform's), or it cannot be opened.
    NotConfigured,
    /// The caller asked for an option this provider cannot honour; refused before any call.
    Unsupported {
        parameter: String,
    },
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    /// Safe to show: never holds a key or a request header.
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The stable code a failed run reports.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ProviderErrorKind::Timeout => "upstream_timeout",
            ProviderErrorKind::RateLimited { .. } => "upstream_rate_limited",
            ProviderErrorKind::AuthFailed => "upstream_auth_failed",
            ProviderErrorKind::BadResponse => "upstream_bad_response",
            ProviderErrorKind::Unavailable => "upstream_unavailable",
            ProviderErrorKind::InvalidRequest => "upstream_invalid_request",
            ProviderErrorKind::Unreachable => "upstream_unreachable",
            ProviderErrorKind::NotConfigured => "provider_not_configured",
            ProviderErrorKind::Unsupported { .. } => "unsupported_parameter",
        }
    }
}

/// The providers a tenant can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Local,
    // Spelled as `as_str` and the API's paths and settings spell them, not `open_ai`.
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Gemini,
    #[serde(rename = "openai_compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    pub const ALL: [Self; 5] = [Self::Local, Self::OpenAi, Self::Anthropic, Self::Gemini, Self::OpenAiCompatible];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => local::PROVIDER_NAME,
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::OpenAiCompatible => "openai_compatible",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The model used when neither the request, the tenant's settings nor its credential names one.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::Local => local::MODEL_NAME,
            Self::OpenAi => "gpt-4o-mini",
            Self::Anthropic => "claude-sonnet-4-5",
            Self::Gemini => "gemini-2.5-flash",
            Self::OpenAiCompatible => "default",
        }
    }

    /// The public endpoint; `None` where there is none (an OpenAI-compatible server needs a base URL).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com"),
            Self::Local | Self::OpenAiCompatible => None,
        }
    }
}

/// The key and endpoint a turn uses, and whether the key is the tenant's own.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub api_key: SecretString,
    pub base_url: String,
    pub is_byok: bool,
}

/// A provider ready to answer, with the credentials chosen for this turn.
#[derive(Debug, Clone)]
pub enum Provider {
    Local(local::LocalAnswerer),
    OpenAi(openai::OpenAiProvider),
    Anthropic(anthropic::AnthropicProvider),
    Gemini(gemini::GeminiProvider),
}

impl Provider {
    /// Builds the provider of `kind`; `credentials` are ignored by the local answerer.
    pub fn new(kind: ProviderKind, credentials: Credentials, client: &http::HttpClient) -> Self {
        let http = client.clone();
        match kind {
            ProviderKind::Local => Self::Local(local::LocalAnswerer),
            ProviderKind::OpenAi => Self::OpenAi(openai::OpenAiProvider { http, credentials, compatible: false }),
            ProviderKind::OpenAiCompatible => {
                Self::OpenAi(openai::OpenAiProvider { http, credentials, compatible: true })
            }
            ProviderKind::Anthropic => Self::Anthropic(anthropic::AnthropicProvider { http, credentials }),
            ProviderKind::Gemini => Self::Gemini(gemini::GeminiProvider { http, credentials }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Local(_) => local::PROVIDER_NAME,
            Self::OpenAi(provider) if provider.compatible => ProviderKind::OpenAiCompatible.as_str(),
            Self::OpenAi(_) => ProviderKind::OpenAi.as_str(),
            Self::Anthropic(_) => ProviderKind::Anthropic.as_str(),
            Self::Gemini(_) => ProviderKind::Gemini.as_str(),
        }
    }

    /// Whether the tenant's own key pays for this turn.
    pub fn is_byok(&self) -> bool {
        match self {
            Self::Local(_) => false,
            Self::OpenAi(provider) => provider.credentials.is_byok,
            Self::Anthropic(provider) => provider.credentials.is_byok,
            Self::Gemini(provider) => provider.credentials.is_byok,
        }
    }

    /// Opens the answer's stream (one attempt; see [`retry::open_with_retries`]).
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        match self {
            Self::Local(answerer) => answerer.stream(request),
            Self::OpenAi(provider) => provider.stream(request).await,
            Self::Anthropic(provider) => provider.stream(request).await,
            Self::Gemini(provider) => provider.stream(request).await,
        }
    }
}

/// The context window of a model, in tokens, by family; unknown models get a cautious 8k.
pub fn context_window(model: &str) -> usize {
    let model = model.to_ascii_lowercase();
    let families: &[(&str, usize)] = &[
        ("gpt-4.1", 1_047_576),
        ("gpt-5", 400_000),
        ("gpt-4o", 128_000),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4", 200_000),
        ("claude", 200_000),
        ("gemini", 1_048_576),
        (local::MODEL_NAME, 8_192),
    ];
    families.iter().find(|(prefix, _)| model.starts_with(prefix)).map_or(8_192, |(_, window)| *window)
}
