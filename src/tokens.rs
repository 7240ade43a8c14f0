//! Token counting with tiktoken-rs (o200k_base). The encoder costs ~0.4 s to build, so it is built once
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
