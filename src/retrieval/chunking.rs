//! Markdown-aware chunking to a token budget (text-splitter, counting with tiktoken): headings,
//! paragraphs and code blocks stay whole where they fit. Each chunk carries the path of headings above
//! it, so a citation can say where in the document it came from.
//!
//! The splitter's work for each chunk grows with the text after it (it sizes ever longer candidates up
//! to the next boundary it knows, and lists the markdown elements left), so one unbounded text costs
//! quadratic time: a 1 MB line without whitespace took minutes. It is therefore given bounded pieces:
//! a long document is cut at line starts (before a heading where it can), a long line at a sentence end,
//! a space, or else anywhere between characters. A document without such lines and under
//! [`PIECE_BYTES`] is one piece, chunked exactly as it would be whole.

use std::ops::Range;
use std::sync::LazyLock;

use text_splitter::{ChunkConfig, MarkdownSplitter};
use tiktoken_rs::CoreBPE;

/// Chunks aim for 100 to 200 tokens (tiktoken's, as everything else here counts them): big enough to
/// answer from, small enough to cite precisely, and within what the local embedding model reads at once
/// (256 of its own word pieces, `embeddings::local::WINDOW`) with the heading path that is embedded with
/// each chunk. English prose runs about 1.1 word pieces per token, so a full chunk fits; text denser in
/// word pieces (code, tables, numbers) may not, and the local embedder reads that in overlapping windows
/// rather than cut it. Remote embedders read thousands of tokens, but one size serves every embedder: the
/// shared corpus is chunked once, and BM25 and citations want passages of a paragraph or two whatever
/// the embedder (at 350 tokens the local model never saw the last quarter of a full chunk).
pub const CHUNK_TOKENS: Range<usize> = 100..200;

/// The largest piece of a document the splitter sees at once, in bytes and in markdown elements (it lists
/// the elements left after each chunk it makes, so a piece of many tiny lines costs it as much as a long
/// one). Most documents are smaller and are chunked whole.
const PIECE_BYTES: usize = 64 * 1024;
const PIECE_ELEMENTS: usize = 2048;

/// The longest stretch of one line the splitter sees at once: within a line it has no markdown boundary
/// to stop at, and without spaces not even a word boundary, so it re-reads the rest of the line for every
/// chunk. About three chunks of text: long paragraphs written on one line are rarely longer.
const LINE_BYTES: usize = 4 * 1024;

/// The longest stretch of a line without spaces the splitter sees at once: about one chunk of it.
const RUN_BYTES: usize = 1024;

static SPLITTER: LazyLock<MarkdownSplitter<&'static CoreBPE>> =
    LazyLock::new(|| MarkdownSplitter::new(ChunkConfig::new(CHUNK_TOKENS).with_sizer(crate::tokens::encoder())));

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub content: String,
    pub token_count: usize,
    pub heading_path: Vec<String>,
}

/// Chunks `markdown`. CPU work linear in its length, but not small (in a release build a megabyte takes
/// about a quarter of a second, two seconds for the worst kind: one-character lines), so async callers run
/// it on the blocking pool.
pub fn chunk(markdown: &str) -> Vec<Chunk> {
    let headings = headings(markdown);
    let mut heading_paths = HeadingPaths::new(&headings);
    pieces(markdown)
        .into_iter()
        .flat_map(|piece| {
            SPLITTER
                .chunk_indices(&markdown[piece.clone()])
                .map(move |(offset, content)| (piece.start + offset, content))
        })
        .enumerate()
        .map(|(index, (offset, content))| Chunk {
            index,
            content: content.to_owned(),
            token_count: crate::tokens::count(content),
            heading_path: heading_paths.at(offset + first_body_line(content)),
        })
        .collect()
}

/// The byte ranges the splitter is given one at a time: consecutive and covering `markdown`. Each holds at
/// most about [`PIECE_BYTES`] and [`PIECE_ELEMENTS`] (plus one line), and at most [`LINE_BYTES`] of one line.
fn pieces(markdown: &str) -> Vec<Range<usize>> {
    let mut cuts = vec![Mark::default()];
    // Where the current piece had best end: a line start in its second half.
    let mut best_end: Option<(CutPreference, Mark)> = None;
    let mut in_fence = false;
    let mut after_blank = false;
    let mut here = Mark::default();
    for line in markdown.split_inclusive('\n') {
        let piece_start = *cuts.last().expect("starts with the document's start");
        let (bytes, elements) = here.since(piece_start);
        if bytes >= PIECE_BYTES / 2 || elements >= PIECE_ELEMENTS / 2 {
            let preference = CutPreference::before(line, in_fence, after_blank);
            if best_end.is_none_or(|(best, _)| preference >= best) {
                best_end = Some((preference, here));
            }
        }
        // A long line joins the piece with its first window only.
        let joining = &line[..line.floor_char_boundary(LINE_BYTES)];
        if bytes + joining.len() > PIECE_BYTES || elements + elements_in(joining) > PIECE_ELEMENTS {
            let end = best_end.take().map_or(here, |(_, end)| end);
            if end.offset > piece_start.offset {
                cuts.push(end);
            }
        }
        let mut window_start = here;
        while here.offset + line.len() - window_start.offset > LINE_BYTES {
            let end = window_end(markdown, window_start.offset);
            window_start = Mark {
                offset: end,
                elements: window_start.elements + elements_in(&markdown[window_start.offset..end]),
            };
            cuts.push(window_start);
            best_end = None;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        after_blank = trimmed.is_empty();
        here = Mark { offset: here.offset + line.len(), elements: here.elements + elements_in(line) };
    }
    cuts.push(here);
    cuts.windows(2).map(|pair| pair[0].offset..pair[1].offset).filter(|piece| !piece.is_empty()).collect()
}

/// A place in the document: its byte offset, and how many markdown elements (by [`elements_in`]) precede it.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    offset: usize,
    elements: usize,
}

impl Mark {
    /// Bytes and elements from `earlier` to here.
    fn since(self, earlier: Self) -> (usize, usize) {
        (self.offset - earlier.offset, self.elements - earlier.elements)
    }
}

/// An upper estimate of the markdown elements the splitter would list in `text`: one per line, and one per
/// character that can open or split an inline element (emphasis, code, links, HTML, tables, math, escapes,
/// entities, smart quotes).
fn elements_in(text: &str) -> usize {
    const OPENERS: &[u8] = b"\n*_`[]<>!&\\|~$^'\"#";
    text.bytes().filter(|byte| OPENERS.contains(byte)).count()
}

/// Where a piece had best end, least preferred first: a chunk never spans two pieces, so a cut where the
/// splitter would likely end a chunk anyway changes least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CutPreference {
    InsideCodeBlock,
    BetweenLines,
    BetweenParagraphs,
    BeforeHeading,
}

impl CutPreference {
    fn before(line: &str, in_fence: bool, after_blank: bool) -> Self {
        let trimmed = line.trim_start();
        let level = trimmed.bytes().take_while(|byte| *byte == b'#').count();
        if in_fence {
            Self::InsideCodeBlock
        } else if (1..=6).contains(&level) && trimmed[level..].starts_with([' ', '\t']) {
            Self::BeforeHeading
        } else if after_blank {
            Self::BetweenParagraphs
        } else {
            Self::BetweenLines
        }
    }
}

/// Where a window of a long line starting at `start` ends, at most [`LINE_BYTES`] on: after the last
/// sentence end in its second half, else after the last space there. With no space there, a run without
/// spaces goes on past the window, which the splitter cannot break into words either: the text before the
/// run ends the window, and the run itself is cut between characters every [`RUN_BYTES`], so that the
/// splitter re-reads little of it for each chunk.
fn window_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let after_space = |at: &usize| bytes[at - 1].is_ascii_whitespace();
    let after_sentence = |at: &usize| {
        (after_space(at) && matches!(bytes[at - 2], b'.' | b'!' | b'?'))
            || (text.is_char_boundary(*at) && text[..*at].ends_with(['。', '！', '？']))
    };
    let second_half = start + LINE_BYTES / 2..text.floor_char_boundary(start + LINE_BYTES);
    let first_half = start + 1..start + LINE_BYTES / 2;
    second_half
        .clone()
        .rev()
        .find(after_sentence)
        .or_else(|| second_half.rev().find(after_space))
        .or_else(|| first_half.rev().find(after_space))
        .unwrap_or_else(|| text.floor_char_boundary(start + RUN_BYTES))
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

/// The headings in force at an offset, for offsets in increasing order: for each level, the last heading
/// before it (or at it). Walked once, so a document of many headings costs no more than one of few.
struct HeadingPaths<'h> {
    headings: &'h [Heading],
    next: usize,
    path: Vec<&'h Heading>,
}

impl<'h> HeadingPaths<'h> {
    fn new(headings: &'h [Heading]) -> Self {
        Self { headings, next: 0, path: Vec::new() }
    }

    fn at(&mut self, offset: usize) -> Vec<String> {
        if self.path.last().is_some_and(|last| last.offset > offset) {
            // Offsets come in order; should one not, start again rather than answer wrongly.
            *self = Self::new(self.headings);
        }
        while let Some(heading) = self.headings.get(self.next).filter(|heading| heading.offset <= offset) {
            while self.path.last().is_some_and(|last| last.level >= heading.level) {
                self.path.pop();
            }
            self.path.push(heading);
            self.next += 1;
        }
        self.path.iter().map(|heading| heading.text.clone()).collect()
    }
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

    /// The chunks in order, with only whitespace between them: nothing lost, nothing repeated.
    fn assert_covers(markdown: &str, chunks: &[Chunk]) {
        let mut rest = markdown;
        for piece in chunks {
            let at = rest.find(piece.content.as_str()).expect("each chunk follows the one before");
            assert!(rest[..at].trim().is_empty(), "lost before chunk {}: {:?}", piece.index, &rest[..at.min(80)]);
            rest = &rest[at + piece.content.len()..];
        }
        assert!(rest.trim().is_empty(), "lost at the end: {:?}", &rest[..rest.len().min(80)]);
    }

    fn sections(count: usize) -> String {
        let parts: Vec<String> = (0..count)
            .map(|part| format!("## Part {part}\n\n{}\n\n", format!("Section {part} says something. ").repeat(20)))
            .collect();
        format!("# Guide\n\n{}", parts.concat())
    }

    #[test]
    fn a_megabyte_without_whitespace_comes_back_whole_in_chunks_within_the_budget() {
        // One word to the splitter (underscores join words), with two-byte letters so that cuts must fall
        // between characters.
        let text: String = "ωmega_ünïcode_quasar_".chars().cycle().take(1_000_000).collect();
        let chunks = chunk(&text);
        assert!(chunks.len() > 500, "{} chunks", chunks.len());
        for (index, piece) in chunks.iter().enumerate() {
            assert_eq!(piece.index, index);
            assert!(piece.token_count < CHUNK_TOKENS.end, "chunk {index}: {} tokens", piece.token_count);
            assert!(piece.heading_path.is_empty());
        }
        let joined: String = chunks.iter().map(|piece| piece.content.as_str()).collect();
        assert!(joined == text, "the chunks joined ({} bytes) are not the document", joined.len());
    }

    #[test]
    fn pieces_cover_the_document_and_bound_what_the_splitter_sees() {
        let sentences = "Switchboard keeps every tenant apart. ".repeat(400);
        let run: String = "ωmega_".chars().cycle().take(20_000).collect();
        let documents = [
            sentences.clone(),
            "alpha beta gamma ".repeat(1000),
            run.clone(),
            format!("{sentences}{run} and the end"),
            "a\n".repeat(20_000),
            sections(400),
            format!("```\n{}```\n", "let x = 1;\n".repeat(10_000)),
        ];
        for markdown in &documents {
            let pieces = pieces(markdown);
            assert_eq!(pieces.first().map(|piece| piece.start), Some(0));
            assert_eq!(pieces.last().map(|piece| piece.end), Some(markdown.len()));
            assert!(pieces.windows(2).all(|pair| pair[0].end == pair[1].start), "consecutive");
            for piece in &pieces {
                let text = &markdown[piece.clone()];
                assert!(text.len() <= PIECE_BYTES + LINE_BYTES, "{} bytes", text.len());
                assert!(elements_in(text) <= PIECE_ELEMENTS + LINE_BYTES, "{} elements", elements_in(text));
                assert!(text.split('\n').all(|line| line.len() <= LINE_BYTES), "a line longer than a window");
            }
            assert_covers(markdown, &chunk(markdown));
        }

        let long_line = pieces(&sentences);
        assert!(long_line.len() > 1);
        for piece in &long_line[..long_line.len() - 1] {
            assert!(sentences[piece.clone()].ends_with(". "), "a long line is cut after a sentence");
        }
        let run_pieces = pieces(&run);
        assert!(run_pieces.len() > 10);
        let (tail, cut) = run_pieces.split_last().unwrap();
        assert!(cut.iter().all(|piece| piece.len() <= RUN_BYTES), "a run is cut every {RUN_BYTES} bytes");
        assert!(tail.len() <= LINE_BYTES, "up to the last window");
        let mixed = format!("{sentences}{run}");
        assert!(pieces(&mixed).iter().any(|piece| piece.start == sentences.len()), "the text before a run ends");
        let long_document = sections(400);
        for piece in &pieces(&long_document)[1..] {
            assert!(long_document[piece.clone()].starts_with("## Part"), "a long document is cut before headings");
        }
    }

    #[test]
    fn a_document_within_the_bounds_is_one_piece() {
        let small = sections(100);
        assert!(small.len() > 50_000, "{} bytes", small.len());
        assert_eq!(pieces(&small), vec![0..small.len()]);
        let paragraph = "A long paragraph on one line. ".repeat(130);
        assert_eq!(pieces(&paragraph), vec![0..paragraph.len()]);
        assert!(pieces("").is_empty());
    }

    #[test]
    fn chunks_of_a_long_document_keep_their_heading_paths() {
        let markdown = sections(400);
        assert!(pieces(&markdown).len() > 2);
        let chunks = chunk(&markdown);
        assert_covers(&markdown, &chunks);
        for piece in &chunks {
            let part = piece.content.split("Section ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap();
            assert_eq!(piece.heading_path, ["Guide".to_owned(), format!("Part {part}")], "{}", piece.content);
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Text of every kind a document may hold, in stretches: any text, prose, headings (and seven `#`),
        /// fences, tables, runs without spaces longer than a window, one letter under thousands of
        /// combining marks, family emoji (joined graphemes), NUL, CJK sentences, spaces, lines of one word.
        fn document() -> impl Strategy<Value = String> {
            let stretch = prop_oneof![
                "(?s).{0,64}",
                "[a-z ]{0,40}[.!?] ",
                "[ ]{0,3}#{1,7}[ \t][a-zA-Z #]{0,16}\n",
                prop::sample::select(vec!["\n", "\n\n", "```\n", "~~~\n", "# \n", "#\n"]).prop_map(str::to_owned),
                ("[a-zA-Z0-9_ωü]", 100..6000usize).prop_map(|(letter, count)| letter.repeat(count)),
                (0..3000usize).prop_map(|count| format!("e{}", "\u{301}".repeat(count))),
                (0..600usize).prop_map(|count| "👩‍👩‍👧‍👦".repeat(count)),
                (0..500usize).prop_map(|count| "\0".repeat(count)),
                (0..400usize).prop_map(|count| "日本語の文です。".repeat(count)),
                (0..2000usize).prop_map(|count| " ".repeat(count)),
                (0..300usize).prop_map(|count| "| a | *b* |\n".repeat(count)),
                (0..300usize).prop_map(|count| "word\n".repeat(count)),
            ];
            prop::collection::vec((stretch, 1..4usize), 0..12)
                .prop_map(|stretches| stretches.into_iter().map(|(text, times)| text.repeat(times)).collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(48) })]

            /// Any text comes back as numbered, non-blank chunks within the budget that cover it in order, each
            /// cited under headings of the document.
            #[test]
            fn any_text_is_covered_in_order_by_chunks_within_the_budget(markdown in document()) {
                let chunks = chunk(&markdown);
                let heading_texts: Vec<String> = headings(&markdown).into_iter().map(|heading| heading.text).collect();
                for (index, piece) in chunks.iter().enumerate() {
                    prop_assert_eq!(piece.index, index);
                    prop_assert!(!piece.content.trim().is_empty(), "chunk {} is blank", index);
                    prop_assert_eq!(piece.token_count, crate::tokens::count(&piece.content));
                    prop_assert!(piece.token_count < CHUNK_TOKENS.end, "chunk {}: {} tokens", index, piece.token_count);
                    prop_assert!(piece.heading_path.len() <= 6);
                    prop_assert!(piece.heading_path.iter().all(|heading| heading_texts.contains(heading)));
                }
                assert_covers(&markdown, &chunks);
                let _ = title_of(&markdown, "docs/guide.md");
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(128) })]

            /// The pieces the splitter is given are consecutive, cover the text, and stay within their bounds.
            #[test]
            fn pieces_cover_any_text_within_their_bounds(markdown in document()) {
                let pieces = pieces(&markdown);
                prop_assert_eq!(pieces.first().map_or(0, |piece| piece.start), 0);
                prop_assert_eq!(pieces.last().map_or(0, |piece| piece.end), markdown.len());
                prop_assert!(pieces.windows(2).all(|pair| pair[0].end == pair[1].start), "consecutive");
                for piece in &pieces {
                    prop_assert!(!piece.is_empty());
                    let text = &markdown[piece.clone()];
                    prop_assert!(text.len() <= PIECE_BYTES + LINE_BYTES, "{} bytes", text.len());
                    prop_assert!(elements_in(text) <= PIECE_ELEMENTS + LINE_BYTES, "{} elements", elements_in(text));
                    prop_assert!(text.split('\n').all(|line| line.len() <= LINE_BYTES), "a line longer than a window");
                }
            }
        }
    }

    #[test]
    fn heading_paths_are_walked_in_order_and_again_when_asked_out_of_order() {
        let markdown = "# A\ntext\n## B\ntext\n### C\ntext\n## D\ntext\n# E\ntext\n";
        let headings = headings(markdown);
        let expected = |offset: usize| -> Vec<String> {
            let mut path: Vec<&Heading> = Vec::new();
            for heading in headings.iter().take_while(|heading| heading.offset <= offset) {
                path.retain(|earlier| earlier.level < heading.level);
                path.push(heading);
            }
            path.into_iter().map(|heading| heading.text.clone()).collect()
        };
        let mut walker = HeadingPaths::new(&headings);
        for offset in (0..markdown.len()).chain([3, 20, 0]) {
            assert_eq!(walker.at(offset), expected(offset), "at {offset}");
        }
    }
}
