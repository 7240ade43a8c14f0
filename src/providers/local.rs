//! The offline default: a built-in answerer that needs no key and no network. It streams a deterministic
//! answer assembled from the question and the retrieved passages, each quoted under its citation marker
//! (`[1]`, as a model is asked to cite), and says plainly that no model wrote it, or that nothing relevant
//! was found when no passage passed the relevance floor. It honours a caller's length cap; generation
//! options it cannot honour are refused.

use std::fmt::Write as _;

use futures::stream;

use super::Passage;
use super::options::unsupported;
use super::{ChatChunk, ChatRequest, ChunkStream, FinishReason, ProviderError};

pub const PROVIDER_NAME: &str = "local";
pub const MODEL_NAME: &str = "switchboard-extractive";

#[derive(Debug, Clone, Default)]
pub struct LocalAnswerer;

impl LocalAnswerer {
    pub fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        // An extractive answerer has nothing to sample, format or call: asking for it is refused.
        if let Some(parameter) = request.options.first_set() {
            return Err(unsupported(PROVIDER_NAME, parameter));
        }
        let answer = compose_answer(request.question(), &request.passages);
        let mut pieces = split_into_tokens(&answer);
        // The caller's cap holds here as at any model: the answer stops there and says it was cut.
        let limit = request.max_output_tokens.map_or(usize::MAX, |limit| usize::try_from(limit).unwrap_or(usize::MAX));
        let finish = if pieces.len() > limit {
            pieces.truncate(limit);
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let chunks = pieces.into_iter().map(ChatChunk::Text).chain(std::iter::once(ChatChunk::Finish(finish)));
        Ok(Box::pin(stream::iter(chunks.map(Ok))))
    }
}

fn compose_answer(question: &str, passages: &[Passage]) -> String {
    let question = question.trim();
    let quoted: String = question.chars().take(300).collect();
    let ellipsis = if quoted.len() < question.len() { "…" } else { "" };
    let mut answer = format!(
        "[Offline answer: this workspace's provider is Switchboard's built-in extractive answerer, not a \
         model. It quotes the documentation it retrieved rather than reasoning about it.]\n\n\
         You asked: \"{quoted}{ellipsis}\"\n\n"
    );
    if passages.is_empty() {
        answer.push_str(
            "Nothing relevant to this question was found in the documents, so there is nothing to quote. Add \
             documents to ground answers, or configure a model provider (PUT /api/v1/providers/{provider}) for \
             generated answers.",
        );
        return answer;
    }
    answer.push_str("The most relevant passages:\n");
    for (index, passage) in passages.iter().enumerate() {
        let place = std::iter::once(passage.title.as_str())
            .chain(passage.heading_path.iter().map(String::as_str).filter(|heading| *heading != passage.title))
            .collect::<Vec<_>>()
            .join(" › ");
        let _ = write!(
            answer,
            "\n[{}] {place} ({}): {}\n",
            index + 1,
            passage.source_path,
            excerpt(&passage.content, question)
        );
    }
    answer
}

/// The passage's lines that share the most words with the question (at most two, in their order), or
/// its first lines when none does; about 400 characters at most.
fn excerpt(content: &str, question: &str) -> String {
    let words = significant_words(question);
    let lines: Vec<&str> = content
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty() && !line.starts_with('#') && !line.starts_with("```") && !line.starts_with("|-")
        })
        .collect();
    let overlap = |line: &str| significant_words(line).iter().filter(|word| words.contains(word)).count();
    let mut ranked: Vec<(usize, usize)> =
        lines.iter().enumerate().map(|(index, line)| (overlap(line), index)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = if ranked.first().is_some_and(|(score, _)| *score > 0) {
        ranked.iter().take(2).filter(|(score, _)| *score > 0).map(|(_, index)| *index).collect()
    } else {
        (0..lines.len().min(2)).collect()
    };
    chosen.sort_unstable();
    let joined = chosen.iter().map(|index| lines[*index]).collect::<Vec<_>>().join(" … ");
    if joined.chars().count() <= 400 {
        return joined;
    }
    format!("{}…", joined.chars().take(400).collect::<String>().trim_end())
}

/// Lower-case words of four letters or more: enough to tell what a line is about.
fn significant_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|word| word.chars().count() >= 4).map(str::to_lowercase).collect()
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
        let answer = compose_answer("What is RLS?", &[]);
        assert!(answer.starts_with("[Offline answer"));
        assert!(answer.contains("Nothing relevant to this question was found"), "{answer}");
        assert!(answer.contains("\"What is RLS?\""));
        assert_eq!(answer, compose_answer("What is RLS?", &[]), "deterministic");
        let passage = Passage {
            title: "Security".into(),
            source_path: "security.md".into(),
            heading_path: vec!["Security".into(), "Row-level security".into()],
            content: "## Row-level security\n\nEvery tenant table has forced RLS. It is enforced by PostgreSQL.".into(),
        };
        let answer = compose_answer("What is RLS?", &[passage]);
        assert!(
            answer.contains("[1] Security › Row-level security (security.md): Every tenant table has forced RLS."),
            "{answer}"
        );
    }

    #[test]
    fn excerpts_pick_the_lines_that_answer_the_question() {
        let content = "# Keys\n\nEvery call carries a bearer key.\n\n| scope | allows |\n|---|---|\n| admin | settings |\n\n\
                       - `DELETE /api/v1/api-keys/{id}` revokes a key at once.";
        assert_eq!(
            excerpt(content, "Which request revokes a key?"),
            "- `DELETE /api/v1/api-keys/{id}` revokes a key at once."
        );
        assert_eq!(excerpt("# T\n\nFirst line.\nSecond line.\nThird.", "unrelated"), "First line. … Second line.");
    }
}
