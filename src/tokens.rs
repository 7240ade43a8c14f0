//! Token counting with tiktoken-rs (o200k_base), and what a model call used ([`TokenUsage`]). The encoder costs ~0.4 s to build, so it is built once
//! per process (warmed at start) and shared.

use std::sync::LazyLock;

use tiktoken_rs::CoreBPE;

static ENCODER: LazyLock<CoreBPE> =
    LazyLock::new(|| tiktoken_rs::o200k_base().expect("the o200k_base tables are compiled into tiktoken-rs"));

/// Tokens a chat message costs beyond its text (role and separators), as OpenAI documents for its models.
pub const PER_MESSAGE_OVERHEAD: usize = 4;

/// The shared encoder, for code that counts through it (the chunker).
pub fn encoder() -> &'static CoreBPE {
    &ENCODER
}

pub fn count(text: &str) -> usize {
    ENCODER.encode_ordinary(text).len()
}

/// The tokens of one model call, the same whatever the provider: `input` is every prompt token (cached
/// ones included) and `output` every generated token (reasoning included); the other counts are parts of
/// those two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
    /// Output tokens the model spent thinking.
    pub reasoning: u64,
}

impl TokenUsage {
    pub fn new(input: u64, output: u64) -> Self {
        Self { input, output, ..Self::default() }
    }

    /// The usage of two model calls together.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            input: self.input.saturating_add(other.input),
            output: self.output.saturating_add(other.output),
            cached_input: self.cached_input.saturating_add(other.cached_input),
            cache_write: self.cache_write.saturating_add(other.cache_write),
            reasoning: self.reasoning.saturating_add(other.reasoning),
        }
    }
}

/// Builds the encoder now, so the first turn does not pay for it; call from a blocking thread.
pub fn warm_up() {
    LazyLock::force(&ENCODER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens_not_characters() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 1);
        let sentence = count("The quick brown fox jumps over the lazy dog.");
        assert!((8..=12).contains(&sentence), "{sentence}");
    }
}
