//! The offline default: a built-in answerer that needs no key and no network. It streams a deterministic
//! answer assembled from the question and (once retrieval lands) the retrieved passages, and says plainly
//! that no model wrote it.

use futures::stream;

use super::{ChatChunk, ChatRequest, ChunkStream};

pub const PROVIDER_NAME: &str = "local";
pub const MODEL_NAME: &str = "switchboard-extractive";

#[derive(Debug, Clone, Default)]
pub struct LocalAnswerer;

impl LocalAnswerer {
    pub fn stream(&self, request: &ChatRequest) -> ChunkStream {
        let answer = compose_answer(request.question());
        Box::pin(stream::iter(split_into_tokens(&answer).into_iter().map(|piece| Ok(ChatChunk::Text(piece)))))
    }
}

fn compose_answer(question: &str) -> String {
    let question = question.trim();
    let quoted: String = question.chars().take(300).collect();
    let ellipsis = if quoted.len() < question.len() { "…" } else { "" };
    format!(
        "[Offline answer: no model provider is configured for this workspace, so Switchboard's built-in \
         extractive answerer is replying. It repeats what it was given rather than reasoning about it.]\n\n\
         You asked: \"{quoted}{ellipsis}\"\n\n\
         No documents were retrieved for this question, so there is nothing to quote yet. Add documents to \
         ground answers, or configure a model provider (PUT /api/v1/providers/{{provider}}) for generated answers."
    )
}

/// Splits text into word-sized pieces that keep their leading whitespace, so concatenating them gives the
/// text back exactly.
fn split_into_tokens(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut previous_was_space = false;
    for character in text.chars() {
        let is_space = character.is_whitespace();
        if is_space && !previous_was_space && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(character);
        previous_was_space = is_space;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_text() {
        for text in ["Hello there,  world!\n\nNext", "  leading", "one", ""] {
            let pieces = split_into_tokens(text);
            assert_eq!(pieces.concat(), text);
        }
        assert_eq!(split_into_tokens("a b  c"), ["a", " b", "  c"]);
    }

    #[test]
    fn the_answer_says_it_is_offline_and_quotes_the_question() {
        let answer = compose_answer("What is RLS?");
        assert!(answer.starts_with("[Offline answer"));
        assert!(answer.contains("\"What is RLS?\""));
        assert_eq!(answer, compose_answer("What is RLS?"), "deterministic");
    }
}
