//! Provider-neutral preparation of one answer: the parsed request, the reply cut into text pieces and argument
//! fragments, the token counts, and the ids and timestamps the wire formats carry.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{Fault, Reply, ToolCall, UsageDetails};

/// What the mock needs from a valid model request, whatever the provider.
#[derive(Debug)]
pub(crate) struct Request {
    pub model: String,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`; ignored by the other providers.
    pub include_usage: bool,
    /// Whitespace-separated words in all message text, the default input token count.
    pub prompt_words: u32,
    /// The request's cap on output tokens; a longer reply is cut there, as real models cut theirs.
    pub max_output_tokens: Option<u32>,
}

/// A reply resolved for one request: what every provider module writes in its own format.
#[derive(Debug)]
pub(crate) struct Turn {
    pub pieces: Vec<String>,
    /// Tool calls with their ids filled in (generated in the provider's style when the script left them empty).
    pub tool_calls: Vec<ToolCall>,
    /// Every prompt token, cache reads and writes included.
    pub input_tokens: u32,
    /// Every output token, reasoning included.
    pub output_tokens: u32,
    /// The parts of those totals to report apart; `None`: the provider's usage has no such fields.
    pub details: Option<UsageDetails>,
    pub delay: Duration,
    pub fault: Option<Fault>,
    /// The reply reached the request's output cap: it ends there, without its tool calls.
    pub cut: bool,
}

impl Turn {
    /// `id_prefix`/`id_len` shape generated tool-call ids like the provider's own (`call_…`, `toolu_01…`).
    pub fn new(reply: Reply, request: &Request, id_prefix: &str, id_len: usize) -> Turn {
        let mut pieces = split_pieces(&reply.text);
        // One piece is one token here; a cap below the reply's length cuts it, as a real model's would be.
        let requested = request.max_output_tokens.map(|cap| usize::try_from(cap).unwrap_or(usize::MAX));
        let cap = match (requested, reply.limit) {
            (Some(requested), Some(limit)) => Some(requested.min(limit)),
            (requested, limit) => requested.or(limit),
        };
        let cut = cap.is_some_and(|cap| pieces.len() > cap);
        if let Some(cap) = cap.filter(|_| cut) {
            pieces.truncate(cap);
        }
        let (input_tokens, output_tokens) = reply.usage.unwrap_or((request.prompt_words, saturate(pieces.len())));
        let tool_calls = if cut {
            Vec::new()
        } else {
            reply
                .tool_calls
                .into_iter()
                .map(
                    |call| if call.id.is_empty() { ToolCall { id: fresh_id(id_prefix, id_len), ..call } } else { call },
                )
                .collect()
        };
        Turn {
            pieces,
            tool_calls,
            input_tokens,
            output_tokens,
            details: reply.details,
            delay: reply.chunk_delay,
            fault: reply.fault,
            cut,
        }
    }

    /// The prompt tokens neither read from nor written to the cache (Anthropic's `input_tokens`).
    pub fn fresh_input_tokens(&self) -> u32 {
        let details = self.details.unwrap_or_default();
        self.input_tokens.saturating_sub(details.cache_read).saturating_sub(details.cache_write)
    }

    /// The output tokens that are not reasoning (Gemini's `candidatesTokenCount`).
    pub fn answer_tokens(&self) -> u32 {
        self.output_tokens.saturating_sub(self.details.map_or(0, |details| details.reasoning))
    }

    pub fn text(&self) -> String {
        self.pieces.concat()
    }

    /// Answer tokens (the output without the reasoning) reported after `pieces_sent` text pieces: grows with
    /// the stream, never past the final count.
    pub fn answer_so_far(&self, pieces_sent: usize) -> u32 {
        saturate(pieces_sent).min(self.answer_tokens())
    }
}

/// Splits text into pieces that each start with their leading whitespace: "Hello big world" -> "Hello", " big",
/// " world". Concatenating the pieces gives the text back exactly.
pub(crate) fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(std::mem::take(&mut current));
                in_word = false;
            }
        } else {
            in_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Splits serialised tool-call arguments into 2–3 fragments (fewer only when the JSON is shorter), as the real
/// APIs stream them, so clients must concatenate before parsing.
pub(crate) fn fragments(arguments: &Value) -> Vec<String> {
    let json = arguments.to_string();
    let chars: Vec<char> = json.chars().collect();
    let count = chars.len().clamp(1, 3);
    let size = chars.len().div_ceil(count);
    chars.chunks(size.max(1)).map(|chunk| chunk.iter().collect()).collect()
}

/// Whitespace-separated words in a message `content` (a string, or an array of parts carrying `text`), which is the
/// same shape in OpenAI messages, Anthropic messages and system blocks, and Gemini `parts`.
pub(crate) fn text_words(content: &Value) -> u32 {
    match content {
        Value::String(text) => saturate(text.split_whitespace().count()),
        Value::Array(parts) => parts.iter().filter_map(|part| part.get("text")).map(text_words).sum(),
        _ => 0,
    }
}

pub(crate) fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn saturate_u64(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A unique-looking id: the prefix and `len` base62 characters, like `chatcmpl-…` or `msg_01…`.
pub(crate) fn fresh_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is randomly keyed per process and the counter makes every id's input distinct, which is enough
    // uniqueness for a mock without pulling in a random number crate.
    let seed = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hasher = RandomState::new();
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    for position in 0..len {
        let index = usize::try_from(hasher.hash_one((seed, position)) % 62).unwrap_or(0);
        id.push(char::from(ALPHABET[index]));
    }
    id
}

/// Seconds since the Unix epoch, OpenAI's `created`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_leading_whitespace() {
        assert_eq!(split_pieces("Hello big world"), ["Hello", " big", " world"]);
        assert_eq!(split_pieces("  a\nb  "), ["  a", "\nb", "  "]);
        assert!(split_pieces("").is_empty());
    }

    #[test]
    fn fragments_concatenate_to_the_json() {
        let args = serde_json::json!({"city": "Paris", "days": 3});
        let parts = fragments(&args);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), args.to_string());
        assert_eq!(fragments(&serde_json::json!({})), ["{", "}"]);
        assert_eq!(fragments(&serde_json::json!(1)), ["1"]);
    }

    #[test]
    fn words_in_strings_and_parts() {
        assert_eq!(text_words(&serde_json::json!("one two  three")), 3);
        assert_eq!(text_words(&serde_json::json!([{"type": "text", "text": "a b"}, {"type": "image"}])), 2);
    }

    #[test]
    fn ids_differ() {
        let a = fresh_id("msg_01", 22);
        assert_eq!(a.len(), 28);
        assert_ne!(a, fresh_id("msg_01", 22));
    }
}
