//! A generated corpus: markdown documents in a made-up vocabulary. Each document is about one of
//! [`TOPICS`] topics: its sections mix that topic's own words with general words of a skewed (Zipf-like)
//! distribution, so full-text ranking has common and rare terms to work with and vectors cluster by topic
//! as real embeddings do (uniformly random text would make every vector about equally far from every
//! other, which no real corpus does and no approximate index can search). Questions name a topic's words.
//! Deterministic for a seed.

use std::fmt::Write as _;

/// Sections per document; each becomes about one chunk (150–350 tokens each).
pub const SECTIONS_PER_DOCUMENT: usize = 20;
const WORDS_PER_SECTION: usize = 70;
const VOCABULARY: usize = 20_000;
/// Topics of the corpus, and the words of each (taken from the rarer part of the vocabulary).
pub const TOPICS: usize = 400;
const TOPIC_WORDS: usize = 30;
/// The share of a section's words that come from its document's topic.
const TOPICAL_SHARE: f64 = 0.5;

/// A small, fast, seeded generator (SplitMix64): the corpus must be the same in every run.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A word rank, skewed toward the common ones: rank ≈ VOCABULARY^u, so low ranks dominate.
    fn word_rank(&mut self) -> usize {
        ((VOCABULARY as f64).powf(self.unit()) as usize).min(VOCABULARY - 1)
    }
}

/// The word of rank `rank`: syllables, so the tokenizer sees word-like text.
pub fn word(rank: usize) -> String {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ren", "tu", "sa", "vor", "pel", "di", "na", "quo", "bri", "ze", "fa", "gul", "ho", "ix",
        "jem", "ty", "wu", "om", "ast", "el", "ru",
    ];
    let mut rank = rank + 1;
    let mut word = String::new();
    while rank > 0 {
        word.push_str(SYLLABLES[rank % SYLLABLES.len()]);
        rank /= SYLLABLES.len();
    }
    word
}

fn sentence(random: &mut Seeded, words: usize) -> String {
    (0..words).map(|_| word(random.word_rank())).collect::<Vec<_>>().join(" ")
}

/// A word of `topic`: one of its [`TOPIC_WORDS`], fixed for the topic, above the 2,000 most common words.
fn topic_word(topic: usize, random: &mut Seeded) -> String {
    let pick = (random.next() % TOPIC_WORDS as u64) as usize;
    let mut topic_random = Seeded::new((topic * TOPIC_WORDS + pick) as u64 ^ 0x5EED);
    word(2_000 + (topic_random.next() % (VOCABULARY as u64 - 2_000)) as usize)
}

/// Text about `topic`: its words mixed with general ones.
fn topical(topic: usize, random: &mut Seeded, words: usize) -> String {
    (0..words)
        .map(|_| if random.unit() < TOPICAL_SHARE { topic_word(topic, random) } else { word(random.word_rank()) })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Document `index` of a corpus: a title and [`SECTIONS_PER_DOCUMENT`] sections.
pub fn document(seed: u64, index: usize) -> (String, String) {
    let (title, sections) = sections(seed, index);
    let mut content = format!("# {title}\n\n");
    for (heading, text) in sections {
        let _ = write!(content, "## {heading}\n\n{text}.\n\n");
    }
    (format!("handbook/{index:06}.md"), content)
}

/// The texts document `index`'s chunks are embedded from (heading path, then the section), as the service
/// makes them, without going through it: the vector benchmark's data.
pub fn chunk_texts(seed: u64, index: usize) -> Vec<String> {
    let (title, sections) = sections(seed, index);
    sections.into_iter().map(|(heading, text)| format!("{title} > {heading}\n\n{text}.")).collect()
}

/// Document `index`'s title and its sections' headings and texts.
fn sections(seed: u64, index: usize) -> (String, Vec<(String, String)>) {
    let mut random = Seeded::new(seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let topic = (random.next() % TOPICS as u64) as usize;
    let title = format!("Handbook {index}: {}", topical(topic, &mut random, 3));
    let sections = (0..SECTIONS_PER_DOCUMENT)
        .map(|section| {
            let heading = format!("Part {section}: {}", sentence(&mut random, 3));
            (heading, topical(topic, &mut random, WORDS_PER_SECTION))
        })
        .collect();
    (title, sections)
}

/// Question `index`: four words of a topic and a general one, as a person's query would be.
pub fn question(seed: u64, index: usize) -> String {
    let mut random = Seeded::new(seed.wrapping_add(0xABCD) ^ index as u64);
    let topic = (random.next() % TOPICS as u64) as usize;
    let mut words: Vec<String> = (0..4).map(|_| topic_word(topic, &mut random)).collect();
    words.push(word(random.word_rank()));
    format!("What about {}?", words.join(" "))
}
