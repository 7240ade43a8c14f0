//! Model providers behind one small interface: stream a chat, report usage, fail with a typed error.
//! A closed enum dispatches to one file per provider; retries and timeouts wrap them all alike.

pub mod local;

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};

/// Who wrote a message the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

/// What the engine asks of a model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    /// Oldest first; the last one is the user's question.
    pub messages: Vec<ChatMessage>,
    pub max_output_tokens: u32,
}

impl ChatRequest {
    /// The user's question this turn answers.
    pub fn question(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == ChatRole::User).map_or("", |m| m.content.as_str())
    }
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatChunk {
    Text(String),
    /// The provider's own token report.
    Usage {
        input_tokens: u32,
        output_tokens: u32,
    },
}

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderErrorKind {
    Timeout,
    RateLimited { retry_after: Option<Duration> },
    AuthFailed,
    BadResponse,
    Unavailable,
    InvalidRequest,
    Unreachable,
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
        }
    }
}

/// A provider ready to answer, with the credentials chosen for this turn.
#[derive(Debug, Clone)]
pub enum Provider {
    Local(local::LocalAnswerer),
}

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Local(_) => local::PROVIDER_NAME,
        }
    }

    /// Whether the tenant's own key pays for this turn.
    pub fn is_byok(&self) -> bool {
        match self {
            Self::Local(_) => false,
        }
    }

    #[expect(clippy::unused_async, reason = "the HTTP providers, arriving next, await their connection")]
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        match self {
            Self::Local(answerer) => Ok(answerer.stream(request)),
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
