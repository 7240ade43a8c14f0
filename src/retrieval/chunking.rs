//! Markdown-aware chunking to a token budget (text-splitter, counting with tiktoken): headings,
//! paragraphs and code blocks stay whole where they fit. Each chunk carries the path of headings above
//! it, so a citation can say where in the document it came from.

use std::sync::LazyLock;

use text_splitter::{ChunkConfig, MarkdownSplitter};
use tiktoken_rs::CoreBPE;

/// Chunks aim for 150 to 350 tokens: big enough to answer from, small enough to cite precisely.
const CHUNK_TOKENS: std::ops::Range<usize> = 150..350;

static SPLITTER: LazyLock<MarkdownSplitter<&'static CoreBPE>> =
    LazyLock::new(|| MarkdownSplitter::new(ChunkConfig::new(CHUNK_TOKENS).with_sizer(crate::tokens::encoder())));

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub content: String,
    pub token_count: usize,
    pub heading_path: Vec<String>,
}

pub fn chunk(markdown: &str) -> Vec<Chunk> {
    let headings = headings(markdown);
    SPLITTER
        .chunk_indices(markdown)
        .enumerate()
        .map(|(index, (offset, content))| Chunk {
            index,
            content: content.to_owned(),
            token_count: crate::tokens::count(content),
            heading_path: heading_path_at(&headings, offset + first_body_line(content)),
        })
        .collect()
}

/// A markdown heading: where it starts, its level and its text.
#[derive(Debug, Clone)]
struct Heading {
    offset: usize,
    level: usize,
    text: String,
}

/// ATX headings outside fenced code blocks.
fn headings(markdown: &str) -> Vec<Heading> {
    let mut headings = Vec::new();
    let mut in_fence = false;
    let mut offset = 0;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence {
            let level = trimmed.bytes().take_while(|byte| *byte == b'#').count();
            let rest = &trimmed[level..];
            if (1..=6).contains(&level) && rest.starts_with([' ', '\t']) {
                let text = rest.trim().trim_end_matches('#').trim().to_owned();
                if !text.is_empty() {
                    headings.push(Heading { offset, level, text });
                }
            }
        }
        offset += line.len();
    }
    headings
}

/// Where the chunk's first line of body text starts (after any headings it opens with), so a chunk that
/// begins with its section's heading is cited under that heading.
fn first_body_line(content: &str) -> usize {
    let mut position = 0;
    for line in content.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            return position;
        }
        position += line.len();
    }
    position.saturating_sub(1)
}

/// The headings in force at `offset`: for each level, the last heading before it (or at it).
fn heading_path_at(headings: &[Heading], offset: usize) -> Vec<String> {
    let mut path: Vec<&Heading> = Vec::new();
    for heading in headings.iter().take_while(|heading| heading.offset <= offset) {
        while path.last().is_some_and(|last| last.level >= heading.level) {
            path.pop();
        }
        path.push(heading);
    }
    path.into_iter().map(|heading| heading.text.clone()).collect()
}

/// The document's title: its first level-1 heading, else its file name without extension.
pub fn title_of(markdown: &str, source_path: &str) -> String {
    headings(markdown).into_iter().find(|heading| heading.level == 1).map_or_else(
        || {
            let name = source_path.rsplit('/').next().unwrap_or(source_path);
            name.rsplit_once('.').map_or(name, |(stem, _)| stem).to_owned()
        },
        |heading| heading.text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_budget_and_carry_their_heading_path() {
        let section = "Switchboard keeps every tenant apart with row-level security. ".repeat(30);
        let markdown = format!(
            "# Guide\n\nIntro paragraph.\n\n## Keys\n\n{section}\n\n### Rotation\n\n{section}\n\n## Errors\n\n```sh\n# not a heading\ncurl x\n```\n"
        );
        let chunks = chunk(&markdown);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        for (index, piece) in chunks.iter().enumerate() {
            assert_eq!(piece.index, index);
            assert!(piece.token_count <= CHUNK_TOKENS.end, "{} tokens", piece.token_count);
            assert!(markdown.contains(piece.content.as_str()));
        }
        let rotation = chunks
            .iter()
            .find(|piece| piece.content.starts_with("### Rotation"))
            .expect("a chunk starts at the heading");
        assert_eq!(rotation.heading_path, ["Guide", "Keys", "Rotation"]);
        let last = chunks.last().unwrap();
        assert_eq!(last.heading_path, ["Guide", "Errors"], "the # inside the code block is not a heading");
    }

    #[test]
    fn titles_come_from_the_first_h1_or_the_file_name() {
        assert_eq!(title_of("intro\n# Real Title\n## Sub", "a/b.md"), "Real Title");
        assert_eq!(title_of("no headings", "guides/api-keys.md"), "api-keys");
        assert_eq!(title_of("```\n# code\n```", "x"), "x");
    }

    #[test]
    fn a_chunk_that_opens_with_headings_is_cited_under_them() {
        let chunks = chunk("# Operations\n\n## Backups\n\nBackups run nightly.");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].heading_path, ["Operations", "Backups"]);
    }
}
