//! A scriptable mock of the model providers' HTTP APIs (OpenAI Chat Completions, Anthropic Messages, Gemini
//! `streamGenerateContent`), speaking each one's streaming wire format so the service's real clients can be tested.
//!
//! Start one with [`MockUpstream::start`], point a client at one of its base URLs, queue replies with
//! [`MockUpstream::push`] and inspect what the client sent with [`MockUpstream::requests`].
//!
//! It also serves the embedding endpoints of OpenAI (`/v1/embeddings`), Voyage AI (at [`MockUpstream::voyage_base`])
//! and Gemini (`:embedContent`, `:batchEmbedContents`). Their vectors come from [`embedding::embed`]: deterministic,
//! and similar exactly when texts share words, so retrieval tests can both rank and compute the expected vectors.
//! Embedding requests never take the scripted chat replies; [`MockUpstream::fail_embeddings`] scripts their
//! failures.
//!
//! It serves the rerank endpoints of Cohere (`/v2/rerank`), Voyage ([`MockUpstream::voyage_base`]) and Jina
//! ([`MockUpstream::jina_base`]), scoring with [`rerank::score`]; [`MockUpstream::fail_reranks`] scripts their
//! failures, a stall among them.

mod anthropic;
pub mod embedding;
mod gemini;
mod gemini_embeddings;
mod openai;
mod openai_embeddings;
pub mod rerank;
mod script;
mod server;
mod voyage;
mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A running mock server. Clones share the same queue and request log; dropping every clone leaves the server
/// task running until the runtime stops, which is what short-lived tests want.
#[derive(Debug, Clone)]
pub struct MockUpstream {
    addr: SocketAddr,
    state: Arc<State>,
}

/// Which provider API a request was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
    Gemini,
    /// Voyage AI: embeddings and rerank.
    Voyage,
    /// Cohere, rerank only.
    Cohere,
    /// Jina AI, rerank only.
    Jina,
}

/// One request as the mock received it, recorded even when it was refused.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub api: Api,
    /// Path and query, e.g. `/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Header names in lower case; repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` when empty, a JSON string holding the raw text when it was not JSON.
    pub body: serde_json::Value,
    /// The credential the client sent: OpenAI, Voyage, Cohere and Jina `Authorization: Bearer X` -> X; Anthropic `x-api-key`;
    /// Gemini `x-goog-api-key` header or `key` query parameter.
    pub api_key: Option<String>,
}

/// A scripted answer to the next model request.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Streamed as word pieces that keep their leading whitespace: "Hello big world" -> "Hello", " big", " world".
    pub text: String,
    /// Streamed after the text, in each provider's tool-call format.
    pub tool_calls: Vec<ToolCall>,
    /// Pause before each content chunk; an answer not streamed waits for all of them before it is sent.
    pub chunk_delay: Duration,
    /// (input, output) tokens reported. `None`: input = whitespace-separated words in the request's message text,
    /// output = number of text pieces.
    pub usage: Option<(u32, u32)>,
    /// Prompt-cache and reasoning tokens reported as parts of those totals, each in its provider's fields.
    /// `None`: the usage carries the totals alone, none of those fields.
    pub details: Option<UsageDetails>,
    pub fault: Option<Fault>,
    /// The model's own output limit, in text pieces: a longer reply stops there with the provider's "cut at
    /// the limit" finish reason (as a request's own cap does).
    pub limit: Option<usize>,
}

/// The parts of a reply's token counts that providers report apart, all counted inside the totals (the input
/// includes the cache reads and writes, the output includes the reasoning), as the providers count them:
///
/// - OpenAI: `prompt_tokens` is the input, `prompt_tokens_details.cached_tokens` the cache reads;
///   `completion_tokens` is the output, `completion_tokens_details.reasoning_tokens` the reasoning. It reports no
///   cache writes: they are plain prompt tokens there.
/// - Anthropic: `input_tokens` counts only the prompt tokens neither read from nor written to the cache, beside
///   `cache_read_input_tokens` and `cache_creation_input_tokens`; `output_tokens` includes the thinking, which
///   has no count of its own.
/// - Gemini: `promptTokenCount` is the input, `cachedContentTokenCount` the cache reads within it (no count of
///   writes); `candidatesTokenCount` is the output *without* the reasoning, `thoughtsTokenCount` the reasoning,
///   and `totalTokenCount` the sum of all three.
///
/// A part larger than its total is the script's mistake: the provider's remainder then counts 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageDetails {
    /// Prompt tokens read from the provider's cache.
    pub cache_read: u32,
    /// Prompt tokens written to the provider's cache (Anthropic only).
    pub cache_write: u32,
    /// Output tokens the model spent thinking.
    pub reasoning: u32,
}

/// A tool call the scripted model makes. An empty `id` gets a provider-style generated one.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// A failure to inject into a reply, or with [`MockUpstream::fail_embeddings`] into an embedding answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status before any streaming, with the provider's JSON error body; `retry_after` sets the
    /// `Retry-After` header (seconds).
    Status { status: u16, retry_after: Option<u64> },
    /// Send this many content chunks, then close the connection abruptly with no terminator.
    CutAfter(usize),
    /// Send this many content chunks, then one SSE event whose data is not valid JSON, then end.
    MalformedAfter(usize),
    /// Send this many content chunks, then keep the connection open forever sending nothing.
    StallAfter(usize),
}

/// What the mock answers when no scripted reply is queued: `tokens` words "token0 token1 …", no fault.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub tokens: usize,
    pub chunk_delay: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { tokens: 12, chunk_delay: Duration::ZERO }
    }
}

impl Defaults {
    fn reply(&self) -> Reply {
        let text = (0..self.tokens).map(|i| format!("token{i}")).collect::<Vec<_>>().join(" ");
        Reply { text, chunk_delay: self.chunk_delay, ..Reply::default() }
    }
}

/// Shared between the handle and the server task.
#[derive(Debug)]
pub(crate) struct State {
    defaults: Defaults,
    queue: Mutex<VecDeque<Reply>>,
    /// Apart from `queue` so that embedding calls made while a chat is scripted do not eat its replies.
    embedding_faults: Mutex<VecDeque<Fault>>,
    rerank_faults: Mutex<VecDeque<Fault>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// While true, embedding answers wait (recorded, not yet sent): [`MockUpstream::hold_embeddings`].
    embeddings_held: tokio::sync::watch::Sender<bool>,
}

impl State {
    /// The oldest queued reply, or the defaults.
    pub(crate) fn take_reply(&self) -> Reply {
        let queued = self.queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
        queued.unwrap_or_else(|| self.defaults.reply())
    }

    /// The oldest queued embedding fault, if any.
    pub(crate) fn take_embedding_fault(&self) -> Option<Fault> {
        self.embedding_faults.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }

    /// The oldest queued rerank fault, if any.
    pub(crate) fn take_rerank_fault(&self) -> Option<Fault> {
        self.rerank_faults.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }

    /// Returns once embedding answers are not held.
    pub(crate) async fn embeddings_released(&self) {
        let mut held = self.embeddings_held.subscribe();
        // The sender lives as long as the state, so the wait ends only when the hold does.
        let _ = held.wait_for(|held| !held).await;
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request);
    }
}

impl MockUpstream {
    /// Binds 127.0.0.1:0 with default settings and serves in a spawned tokio task.
    pub async fn start() -> MockUpstream {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        MockUpstream::start_with(addr, Defaults::default()).await.expect("mock-upstream: bind 127.0.0.1:0")
    }

    /// Binds the given address with the given defaults and serves in a spawned tokio task.
    pub async fn start_with(addr: SocketAddr, defaults: Defaults) -> std::io::Result<MockUpstream> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            defaults,
            queue: Mutex::new(VecDeque::new()),
            embedding_faults: Mutex::new(VecDeque::new()),
            rerank_faults: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            embeddings_held: tokio::sync::watch::Sender::new(false),
        });
        let router = server::router(Arc::clone(&state));
        tokio::spawn(async move {
            // Only fails if accepting fails for good; a mock has nobody to report that to but the test's own errors.
            // Small SSE frames must leave at once, as a real provider's do: no Nagle delay.
            let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
                let _ = stream.set_nodelay(true);
            });
            let _ = axum::serve(listener, router).await;
        });
        Ok(MockUpstream { addr, state })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// OpenAI base URL: clients POST `{base}/chat/completions` and `{base}/embeddings`.
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Anthropic base URL: clients POST `{base}/v1/messages`.
    pub fn anthropic_base(&self) -> String {
        self.url()
    }

    /// Gemini base URL: clients POST `{base}/v1beta/models/{model}:streamGenerateContent?alt=sse`, and
    /// `:embedContent` or `:batchEmbedContents` for embeddings.
    pub fn gemini_base(&self) -> String {
        self.url()
    }

    /// Voyage AI base URL, standing for `https://api.voyageai.com/v1`: clients POST `{base}/embeddings`.
    pub fn voyage_base(&self) -> String {
        format!("{}/voyage/v1", self.url())
    }

    /// Cohere base URL, standing for `https://api.cohere.com`: clients POST `{base}/v2/rerank`.
    pub fn cohere_base(&self) -> String {
        self.url()
    }

    /// Jina AI base URL, standing for `https://api.jina.ai/v1`: clients POST `{base}/rerank`.
    pub fn jina_base(&self) -> String {
        format!("{}/jina/v1", self.url())
    }

    /// Queues a scripted reply; each incoming model request (any provider) takes the oldest one. Embedding requests
    /// do not.
    pub fn push(&self, reply: Reply) {
        self.state.queue.lock().unwrap_or_else(PoisonError::into_inner).push_back(reply);
    }

    /// Queues a fault for embedding requests only (any provider); each valid, authorised one takes the oldest.
    ///
    /// [`Fault::Status`] answers that status with the provider's error body and the `Retry-After` header when
    /// scripted. The streaming faults (`CutAfter`, `MalformedAfter`, `StallAfter`) mean nothing for a one-piece
    /// JSON answer: they answer 500.
    pub fn fail_embeddings(&self, fault: Fault) {
        self.state.embedding_faults.lock().unwrap_or_else(PoisonError::into_inner).push_back(fault);
    }

    /// Holds every embedding answer (any provider) until [`Self::release_embeddings`]: each request is
    /// recorded when it arrives and answered only then, so a test can see which calls were made at once.
    pub fn hold_embeddings(&self) {
        self.state.embeddings_held.send_replace(true);
    }

    /// Sends the held embedding answers, and every later one at once.
    pub fn release_embeddings(&self) {
        self.state.embeddings_held.send_replace(false);
    }

    /// Queues a fault for rerank requests only (any provider); each valid, authorised one takes the oldest.
    ///
    /// [`Fault::Status`] answers that status with the provider's error body; [`Fault::StallAfter`] never
    /// answers (the connection stays open), for a client's timeout; the other faults answer 500.
    pub fn fail_reranks(&self, fault: Fault) {
        self.state.rerank_faults.lock().unwrap_or_else(PoisonError::into_inner).push_back(fault);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
