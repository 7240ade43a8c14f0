//! Which passages an answer cites. The system prompt numbers the passages and asks the model to cite them
//! as `[1]`, `[2]` (or `[1, 2]`); the answer's citations are the passages its markers name, each with the
//! spans of the answer that cite it, and the passages it was given but did not cite are kept apart.
//!
//! Spans are byte offsets into the answer's UTF-8 text, half-open (`start..end`). A marker that names no
//! passage (`[9]` of five) is left in the text as the model wrote it (the stored answer stays exactly the
//! streamed one) but cites nothing, and is counted (`switchboard_citation_markers_dropped_total`).
//! Markers inside code (between backticks, or in a fenced block) and markdown links (`[1](…)`) are text.

use serde::{Deserialize, Serialize};

use super::Citation;

/// A part of an answer, in bytes of its UTF-8 text: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// An answer's passages, split by whether it cited them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributed {
    /// The passages cited, by number, each with the spans that cite it.
    pub cited: Vec<Citation>,
    /// The passages given to the model that the answer does not cite.
    pub retrieved: Vec<Citation>,
    /// Markers naming no passage.
    pub dropped: usize,
}

/// Splits `passages` (numbered as the prompt numbered them) into those `answer` cites and the rest.
pub fn attribute(answer: &str, passages: &[Citation]) -> Attributed {
    let mut cited: Vec<Citation> = Vec::new();
    let mut dropped = 0;
    for marker in markers(answer) {
        for number in marker.numbers {
            let Some(passage) = passages.iter().find(|passage| passage.number == number) else {
                dropped += 1;
                continue;
            };
            let span = marker.cites;
            match cited.iter_mut().find(|citation| citation.number == number) {
                Some(citation) if !citation.spans.contains(&span) => citation.spans.push(span),
                Some(_) => {}
                None => cited.push(Citation { spans: vec![span], ..passage.clone() }),
            }
        }
    }
    cited.sort_by_key(|citation| citation.number);
    let retrieved = passages
        .iter()
        .filter(|passage| !cited.iter().any(|citation| citation.number == passage.number))
        .cloned()
        .map(|passage| Citation { spans: Vec::new(), ..passage })
        .collect();
    Attributed { cited, retrieved, dropped }
}

/// One marker group, `[2]` or `[1, 3]`: the numbers it names and the text it cites.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    numbers: Vec<u32>,
    cites: Span,
}

/// The answer's markers, in order. A marker cites the text before it back to the start of its sentence
/// (or to the previous marker in that sentence); a marker that opens its line (a list of sources, as the
/// offline answerer writes) cites the rest of the line.
fn markers(answer: &str) -> Vec<Marker> {
    let mut found = Vec::new();
    let mut line_start = 0;
    let mut in_fence = false;
    for line in answer.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence {
            markers_of_line(answer, line_start, line, &mut found);
        }
        line_start += line.len();
    }
    found
}

fn markers_of_line(answer: &str, line_start: usize, line: &str, found: &mut Vec<Marker>) {
    let bytes = line.as_bytes();
    let content_end = line_start + line.trim_end().len();
    let mut in_code = false;
    // Where the text the next marker cites begins: the sentence's start, or just after the last marker.
    let mut clause_start = line_start;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'`' => in_code = !in_code,
            b'.' | b'!' | b'?' if bytes.get(index + 1).is_some_and(u8::is_ascii_whitespace) => {
                clause_start = line_start + index + 1;
            }
            b'[' if !in_code => {
                if let Some((numbers, length)) = marker_at(&line[index..]) {
                    let at = line_start + index;
                    let end = at + length;
                    let opens_line = is_list_prefix(&line[..index]);
                    let cites = if opens_line {
                        Span { start: at, end: content_end.max(end) }
                    } else {
                        let start = skip_whitespace(answer, clause_start, at);
                        Span { start, end }
                    };
                    found.push(Marker { numbers, cites });
                    clause_start = end;
                    index += length;
                    continue;
                }
            }
            _ => {}
        }
        index += 1;
    }
}

/// `[n]` or `[n, m, …]` (numbers of one to three digits) at the start of `text`, not a markdown link:
/// the numbers and the marker's length in bytes.
fn marker_at(text: &str) -> Option<(Vec<u32>, usize)> {
    let close = text.find(']')?;
    let inside = &text[1..close];
    if inside.is_empty() || inside.len() > 40 || text[close + 1..].starts_with('(') {
        return None;
    }
    let numbers: Option<Vec<u32>> = inside
        .split(',')
        .map(str::trim)
        .map(|number| match number.len() {
            1..=3 if number.bytes().all(|byte| byte.is_ascii_digit()) => number.parse().ok(),
            _ => None,
        })
        .collect();
    Some((numbers?, close + 1))
}

/// Nothing but whitespace and a list bullet (`-`, `*`, `1.`) before a marker: it opens its line.
fn is_list_prefix(before: &str) -> bool {
    let before = before.trim();
    before.is_empty()
        || matches!(before, "-" | "*" | "+")
        || before
            .strip_suffix('.')
            .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

fn skip_whitespace(answer: &str, start: usize, end: usize) -> usize {
    let skipped = answer[start..end].len() - answer[start..end].trim_start().len();
    start + skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passages(count: u32) -> Vec<Citation> {
        (1..=count)
            .map(|number| Citation {
                number,
                chunk_id: uuid::Uuid::from_u128(u128::from(number)),
                document_id: uuid::Uuid::nil(),
                source_path: format!("{number}.md"),
                title: format!("T{number}"),
                heading_path: Vec::new(),
                score: 0.0,
                relevance: None,
                excerpt: String::new(),
                spans: Vec::new(),
            })
            .collect()
    }

    fn text(answer: &str, span: Span) -> &str {
        &answer[span.start..span.end]
    }

    #[test]
    fn cited_passages_get_the_sentences_that_cite_them_and_the_rest_are_retrieved() {
        let answer = "Backups run nightly [2]. They are kept 35 days [2][3], and restores take an hour [9].";
        let attributed = attribute(answer, &passages(3));
        let numbers: Vec<u32> = attributed.cited.iter().map(|citation| citation.number).collect();
        assert_eq!(numbers, [2, 3]);
        assert_eq!(attributed.retrieved.iter().map(|passage| passage.number).collect::<Vec<_>>(), [1]);
        assert_eq!(attributed.dropped, 1);
        let two = &attributed.cited[0].spans;
        assert_eq!(text(answer, two[0]), "Backups run nightly [2]");
        assert_eq!(text(answer, two[1]), "They are kept 35 days [2]");
        // The second marker of a pair cites only itself: the text before belongs to the first.
        assert_eq!(text(answer, attributed.cited[1].spans[0]), "[3]");
    }

    #[test]
    fn groups_lists_code_links_and_unicode() {
        let answer = "Café crème [1, 3] is good.\n- [2] Keys › Rotation (keys.md): rotate keys often.\n\
                      `x[1]` and [1](https://example.com) are not markers.\n```\nlet a = b[3];\n```\n";
        let attributed = attribute(answer, &passages(3));
        let spans = |number: u32| {
            let citation = attributed.cited.iter().find(|citation| citation.number == number).unwrap();
            citation.spans.iter().map(|span| text(answer, *span)).collect::<Vec<_>>()
        };
        assert_eq!(spans(1), ["Café crème [1, 3]"]);
        assert_eq!(spans(3), ["Café crème [1, 3]"]);
        assert_eq!(spans(2), ["[2] Keys › Rotation (keys.md): rotate keys often."]);
        assert!(attributed.retrieved.is_empty());
        assert_eq!(attributed.dropped, 0);
    }

    #[test]
    fn an_answer_without_markers_cites_nothing() {
        let attributed = attribute("I could not find that [a] [] [1234].", &passages(2));
        assert!(attributed.cited.is_empty());
        assert_eq!(attributed.retrieved.len(), 2);
        assert_eq!(attributed.dropped, 0);
        assert_eq!(attribute("See [0].", &passages(2)).dropped, 1);
    }
}
