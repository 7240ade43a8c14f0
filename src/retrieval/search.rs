//! The two rankings hybrid search fuses, and the details of the chunks it returns. Full text: the
//! question's stemmed terms are OR-ed (an AND of every word of a natural question matches almost nothing)
//! and ranked with BM25. Vectors: `vectors::nearest`.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::fusion::{Fused, Ranked};

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Vector,
    FullText,
}

impl SearchMode {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Vector => "vector",
            Self::FullText => "full_text",
        }
    }
}

/// One chunk of a search's answer.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SearchHit {
    pub chunk_id: uuid::Uuid,
    pub document_id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub content: String,
    pub token_count: i32,
    /// Higher is better: the fused score in hybrid search, else BM25 or cosine similarity.
    #[sqlx(skip)]
    pub score: f64,
    /// The chunk's place (from 1) in each ranking that found it.
    #[sqlx(skip)]
    pub full_text_rank: Option<u32>,
    #[sqlx(skip)]
    pub vector_rank: Option<u32>,
    /// Cosine similarity to the question, whenever the question has a vector and the chunk one of the
    /// same model (measured exactly for every hit, also those only full text found).
    #[sqlx(skip)]
    pub similarity: Option<f64>,
    /// The BM25 score, when the full-text ranking found the chunk.
    #[sqlx(skip)]
    pub full_text_score: Option<f64>,
    /// The BM25 score as a share of the most the question could score ([`FullText::ceiling`]): how much
    /// of the question's term weight the chunk matches, from 0 to 1.
    #[sqlx(skip)]
    pub term_coverage: Option<f64>,
    /// What the relevance floor judged the chunk by, and whether it passed (`relevance::Floors::judge`).
    #[sqlx(skip)]
    pub relevance: Option<Relevance>,
    /// Whether the chunk belongs to the shared corpus rather than the tenant.
    pub shared: bool,
}

/// What a hit was judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Cosine similarity between the question's vector and the chunk's.
    Similarity,
    /// The chunk's BM25 score over the most the question could score: the share of its term weight matched.
    TermCoverage,
}

/// A hit's relevance on the search's scale, and whether it reaches the floor (`relevance::Floors::judge`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Relevance {
    pub measure: Measure,
    pub value: f64,
    pub floor: f64,
    pub passes: bool,
}

/// The most results one search returns.
pub const MAX_K: i64 = 100;

/// The `depth` best chunks for `query` (fewer only when fewer match), visible to the transaction's tenant,
/// ranked by BM25 exactly as if every chunk were scored, ties by chunk id. PostgreSQL's own `ts_rank` has
/// no inverse document frequency and ranks far worse (nDCG@10 0.357 against 0.43 on the Vaswani
/// collection: examples/retrieval_eval.rs), so BM25 is computed here, textbook Okapi with Robertson's
/// query-term saturation:
///
/// ```text
/// score(chunk) = Σ over the question's distinct terms t that the chunk holds:
///     idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·len/avglen)) · qtf·(k3 + 1) / (qtf + k3)
/// idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))
/// ```
///
/// tf is how often the chunk holds t (its tsvector positions), qtf how often the question does (a word a
/// user repeats weighs more: 1.8 times for twice, 2.45 for three times), len the chunk's token count,
/// avglen their mean, N the chunks and df those holding t (from the statistics ingestion maintains,
/// `term_stats` and `corpus_stats`, the tenant's and the shared corpus's as RLS shows them). k1 = 1.2,
/// b = 0.75, k3 = 8: Robertson's Okapi runs used k3 between 7 and 1000; 8 saturates a word repeated in a
/// pasted paragraph (ten times weighs 5×, not 10×) and was taken from the literature, not tuned here.
///
/// Scoring every chunk that holds a question's word is exact but slow (3 s for a 60-word question at
/// 100k chunks: its common words are in most chunks), and cutting candidates by a cheaper ranking is not
/// exact. So the cut is made by score bounds (MaxScore-style, [`bm25`]): no chunk scores more from a term
/// than its weight × the tf part at the most occurrences of the term in one chunk and the fewest tokens
/// of a chunk holding it (kept per term by ingestion; unknown, the tf part's limit k1 + 1). First queries
/// score chunks holding several of the heaviest terms and take the `depth`-th best score as a bar; every
/// chunk that could reach the bar holds at least k of the
/// heaviest terms (the others together stay below the bar), which the GIN index answers as one boolean
/// tsquery; those are scored too. A chunk left out scores below `depth` chunks already scored, so the
/// result is the exhaustive one. Scores are computed in Rust from each candidate's tsvector cut to the
/// question's terms (`setweight` + `ts_filter`: unnesting tsvectors in SQL cost 30 µs a chunk).
pub async fn full_text(connection: &mut PgConnection, query: &str, depth: i64) -> Result<FullText, sqlx::Error> {
    let depth = usize::try_from(depth.clamp(1, 1000)).unwrap_or(1);
    // A term's bounds are unknown (NULL) if any visible row's are.
    let terms: Vec<bm25::TermRow> = sqlx::query_as(
        "WITH question AS MATERIALIZED ( \
             SELECT lexeme, coalesce(array_length(positions, 1), 1) AS occurrences \
             FROM unnest(to_tsvector('english', $1)) \
         ), corpus AS MATERIALIZED ( \
             SELECT coalesce(sum(chunks), 0)::float8 AS size, \
                    greatest(coalesce(sum(tokens)::float8 / nullif(sum(chunks), 0), 1), 1) AS average_length \
             FROM corpus_stats \
         ) \
         SELECT q.lexeme, q.occurrences, f.chunks, f.most_occurrences, f.fewest_tokens, \
                corpus.size, corpus.average_length \
         FROM question AS q \
         CROSS JOIN LATERAL ( \
             SELECT coalesce(sum(s.chunks), 0)::float8 AS chunks, \
                    CASE WHEN bool_or(s.max_occurrences IS NULL) THEN NULL ELSE max(s.max_occurrences) END \
                        AS most_occurrences, \
                    CASE WHEN bool_or(s.min_tokens IS NULL) THEN NULL ELSE min(s.min_tokens) END AS fewest_tokens \
             FROM term_stats AS s WHERE s.lexeme = q.lexeme \
         ) AS f \
         CROSS JOIN corpus",
    )
    .bind(query)
    .fetch_all(&mut *connection)
    .await?;
    let Some(question) = bm25::Question::new(terms) else {
        return Ok(FullText::default());
    };
    let ranked = if question.visible_chunks() <= SMALL_CORPUS_CHUNKS {
        bm25::best(every_chunk(connection, &question).await?, depth)
    } else {
        exact_best(connection, &question, depth).await?
    };
    Ok(FullText { ranked, ceiling: Some(question.ceiling()).filter(|ceiling| *ceiling > 0.0) })
}

/// A full-text ranking, and the most a chunk could score for its question (the relevance floor's scale).
#[derive(Debug, Clone, Default)]
pub struct FullText {
    pub ranked: Vec<Ranked>,
    /// Every term of the question at its weight × (k1 + 1), the limit of a term a chunk repeats without
    /// end; terms no visible chunk holds count with a chunk frequency of 0, so a question about things the
    /// corpus never mentions is weighed as such, and one shared word ("spring" in a question about
    /// jackets) is a small share of it. `None` without a term any visible chunk holds.
    pub ceiling: Option<f64>,
}

/// The bounded search of [`full_text`] for a corpus too large to score whole. The seeds' `depth`-th best
/// score is the bar the rest must be able to reach: the higher it is, the fewer chunks that can, so the
/// seeds are the chunks holding the most of the heaviest terms that enough chunks hold.
async fn exact_best(
    connection: &mut PgConnection,
    question: &bm25::Question,
    depth: usize,
) -> Result<Vec<Ranked>, sqlx::Error> {
    let started = std::time::Instant::now();
    let usual_entry_cost = raise_index_entry_cost(connection).await?;
    let limit = depth * 2;
    let mut scored: Vec<Ranked> = Vec::new();
    for seed in question.seeds(limit) {
        let seen: Vec<uuid::Uuid> = scored.iter().map(|ranked| ranked.chunk_id).collect();
        let wanted = i64::try_from(limit - scored.len()).unwrap_or(i64::MAX);
        scored.extend(candidates(connection, question, &seed, &seen, Some(wanted)).await?);
        if scored.len() >= depth {
            break;
        }
    }
    let seeding = started.elapsed();
    let bar = bm25::bar(&scored, depth);
    let seen: Vec<uuid::Uuid> = scored.iter().map(|ranked| ranked.chunk_id).collect();
    let necessary = question.necessary(bar);
    let seeded = scored.len();
    scored.extend(candidates(connection, question, &necessary, &seen, None).await?);
    tracing::debug!(
        terms = question.terms.len(),
        seeded,
        seeding_us = seeding.as_micros(),
        bar,
        necessary = scored.len() - seeded,
        necessary_us = started.elapsed().saturating_sub(seeding).as_micros(),
        "full-text candidates"
    );
    sqlx::query("SELECT set_config('cpu_index_tuple_cost', $1, true)")
        .bind(usual_entry_cost)
        .execute(&mut *connection)
        .await?;
    Ok(bm25::best(scored, depth))
}

/// The candidates' plans price reading an index entry (`cpu_index_tuple_cost`) at this many times the
/// server's setting (PostgreSQL's default: 0.005, 1/800 of a random page). Row-level security's
/// `tenant_id = current_tenant_id()` lets the planner AND the GIN index's matches with a bitmap of the
/// tenant's own rows; at the usual price it does so even for a tenant holding most of the table, and
/// building that bitmap (116,718 entries on the benchmark) took 10 ms of a 17 ms query that matched 6,500
/// chunks, to spare heap pages already in memory. At ten times the price, the tenant's bitmap is still taken
/// when it is small next to the matches (a tenant among much larger ones, whose rows it spares reading) and
/// left out when it is not (measured: 17.7 → 6.7 ms).
const INDEX_ENTRY_COST_FACTOR: f64 = 10.0;

/// Raises `cpu_index_tuple_cost` for the rest of the transaction; returns the setting it had.
async fn raise_index_entry_cost(connection: &mut PgConnection) -> Result<String, sqlx::Error> {
    let (usual, _): (String, String) = sqlx::query_as(
        "SELECT usual.cost, set_config('cpu_index_tuple_cost', (usual.cost::float8 * $1)::text, true) \
         FROM (SELECT current_setting('cpu_index_tuple_cost') AS cost) AS usual",
    )
    .bind(INDEX_ENTRY_COST_FACTOR)
    .fetch_one(connection)
    .await?;
    Ok(usual)
}

/// Up to this many visible chunks, every one is scored: the GIN index is shared by all tenants, so a small
/// tenant's index queries next to a large tenant read the large tenant's postings only for row-level
/// security to throw them away (p50 242 ms for a 60-word question of a 66-chunk tenant beside 100k
/// chunks), while reading a few thousand chunks through the tenant's own index takes milliseconds.
const SMALL_CORPUS_CHUNKS: f64 = 2_000.0;

/// Every chunk the transaction's tenant sees (its own and, when enabled, the shared corpus's) that holds a
/// term of the question, scored exactly; no tsquery, so PostgreSQL reads them through the tenant index.
async fn every_chunk(connection: &mut PgConnection, question: &bm25::Question) -> Result<Vec<Ranked>, sqlx::Error> {
    let rows: Vec<(uuid::Uuid, i32, String)> = sqlx::query_as(
        "SELECT c.id, c.token_count, ts_filter(setweight(c.search_vector, 'b', $1), '{b}')::text \
         FROM doc_chunks AS c \
         WHERE c.tenant_id IN (current_tenant_id(), '00000000-0000-0000-0000-000000000000')",
    )
    .bind(question.lexemes())
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, terms)| !terms.is_empty())
        .map(|(chunk_id, tokens, terms)| Ranked { chunk_id, score: question.score(&terms, tokens) })
        .collect())
}

/// The chunks `condition` matches (a tsquery: the GIN index answers it), but those in `seen`, at most
/// `limit` of them in no particular order, each scored exactly.
async fn candidates(
    connection: &mut PgConnection,
    question: &bm25::Question,
    condition: &str,
    seen: &[uuid::Uuid],
    limit: Option<i64>,
) -> Result<Vec<Ranked>, sqlx::Error> {
    // Ingestion weighs only headings (A) and the rest is D, so B marks the question's terms alone.
    let rows: Vec<(uuid::Uuid, i32, String)> = sqlx::query_as(
        "SELECT c.id, c.token_count, ts_filter(setweight(c.search_vector, 'b', $1), '{b}')::text \
         FROM doc_chunks AS c \
         WHERE c.search_vector @@ $2::tsquery AND c.id <> ALL($3) \
         LIMIT $4",
    )
    .bind(question.lexemes())
    .bind(condition)
    .bind(seen)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(chunk_id, tokens, terms)| Ranked { chunk_id, score: question.score(&terms, tokens) })
        .collect())
}

/// BM25 arithmetic and the bounds that make [`full_text`]'s cut exact; pure, tested here.
mod bm25 {
    use std::collections::HashMap;

    use super::Ranked;

    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    const K3: f64 = 8.0;
    /// The seed queries look among chunks holding some of this many heaviest terms.
    const SEED_TERMS: usize = 8;
    /// The most of them a seed query asks a chunk to hold.
    const MAX_SEED_REQUIRED: usize = 4;
    /// A seed whose postings cost less than this to read (by the cost model below) may be tried in vain.
    const CHEAP_SEED_MICROSECONDS: f64 = 500.0;
    /// "At least k of these terms" is asked for k up to this (a larger k holds too, but its tsquery
    /// grows as its binomial); a smaller k only lets more chunks through.
    const MAX_REQUIRED: usize = 3;
    /// Larger tsqueries cost more to evaluate per index entry than they save.
    const MAX_LEAVES: usize = 1500;
    /// Measured at 100k chunks (benchmark corpus): reading one posting in the GIN index, evaluating one
    /// leaf of the tsquery for it, and fetching and scoring one candidate chunk, in microseconds. (With a
    /// 2 GB buffer cache, the necessary queries of 200 long questions fitted 0.010 µs × postings × leaves:
    /// bench README, section 4; a model fitted to that picked the same forms.)
    const COST_POSTING: f64 = 0.4;
    const COST_LEAF: f64 = 0.04;
    const COST_CHUNK: f64 = 10.0;
    /// Bars are lowered by this share before bounds are compared with them: a bound computed by summing
    /// in another order may differ from a score in its last bits.
    const MARGIN: f64 = 1e-9;

    /// What the statistics say of one question term, as [`super::full_text`] reads them.
    #[derive(Debug, Clone, sqlx::FromRow)]
    pub(super) struct TermRow {
        pub lexeme: String,
        /// How often the question holds it.
        pub occurrences: i32,
        /// Chunks holding it.
        pub chunks: f64,
        /// The most occurrences in one chunk, and the fewest tokens of a chunk holding it: bounds, `None`
        /// when unknown (migration 0048).
        pub most_occurrences: Option<i32>,
        pub fewest_tokens: Option<i32>,
        /// The chunks searched, and their mean length in tokens.
        pub size: f64,
        pub average_length: f64,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(super) struct Term {
        pub lexeme: String,
        /// idf × the question's saturated term frequency: the chunk's tf part multiplies it.
        pub weight: f64,
        /// Chunks holding the term, and their share of all.
        pub chunks: f64,
        pub share: f64,
        /// The most the chunk's tf part, tf·(k1 + 1)/(tf + k1·(1 − b + b·len/avglen)), reaches in any
        /// chunk holding the term: at the most occurrences and the fewest tokens, when the statistics know
        /// them; otherwise its limit, k1 + 1.
        pub most_tf_part: f64,
    }

    impl Term {
        /// The most one chunk can score from this term.
        pub fn bound(&self) -> f64 {
            self.weight * self.most_tf_part
        }
    }

    #[derive(Debug, Clone)]
    pub(super) struct Question {
        /// Heaviest bound first (ties by lexeme, so every run builds the same tsqueries).
        pub terms: Vec<Term>,
        index: HashMap<String, usize>,
        size: f64,
        average_length: f64,
        /// The sum of every question term's bound, also of terms no chunk holds (`FullText::ceiling`).
        ceiling: f64,
    }

    impl Question {
        /// From a row for every term of the question; `None` without a term any visible chunk holds.
        pub fn new(rows: Vec<TermRow>) -> Option<Self> {
            let (size, average_length) = rows.first().map(|row| (row.size, row.average_length))?;
            let mut terms: Vec<Term> = rows
                .into_iter()
                .map(|row| {
                    let (chunks, size) = (row.chunks, row.size);
                    let idf = (1.0 + (size - chunks + 0.5) / (chunks + 0.5)).ln();
                    let qtf = f64::from(row.occurrences.max(1));
                    let weight = idf * qtf * (K3 + 1.0) / (qtf + K3);
                    let most_tf_part = match (row.most_occurrences, row.fewest_tokens) {
                        (Some(most), Some(fewest)) => tf_part(f64::from(most.max(1)), fewest, average_length),
                        _ => K1 + 1.0,
                    };
                    Term { lexeme: row.lexeme, weight, chunks, share: (chunks / size.max(1.0)).min(1.0), most_tf_part }
                })
                .collect();
            // The relevance floor's scale: each term at its limit, whatever the statistics bound it by.
            let ceiling = terms.iter().map(|term| term.weight * (K1 + 1.0)).sum();
            // A term no chunk holds bounds nothing: only the ceiling counts it.
            terms.retain(|term| term.chunks > 0.0);
            if terms.is_empty() {
                return None;
            }
            terms.sort_by(|a, b| b.bound().total_cmp(&a.bound()).then_with(|| a.lexeme.cmp(&b.lexeme)));
            let index = terms.iter().enumerate().map(|(i, term)| (term.lexeme.clone(), i)).collect();
            Some(Self { terms, index, size, average_length, ceiling })
        }

        pub fn ceiling(&self) -> f64 {
            self.ceiling
        }

        /// How many chunks the transaction sees, by the statistics.
        pub fn visible_chunks(&self) -> f64 {
            self.size
        }

        pub fn lexemes(&self) -> Vec<&str> {
            self.terms.iter().map(|term| term.lexeme.as_str()).collect()
        }

        /// BM25 of a chunk of `tokens` tokens whose tsvector, cut to the question's terms, reads `vector`.
        pub fn score(&self, vector: &str, tokens: i32) -> f64 {
            occurrences(vector)
                .filter_map(|(lexeme, tf)| {
                    let term = &self.terms[*self.index.get(&lexeme)?];
                    Some(term.weight * tf_part(f64::from(tf), tokens, self.average_length))
                })
                .sum()
        }

        /// The seed queries, strictest first: chunks holding at least k of the heaviest terms, down to
        /// one of them. A chunk holding more of the heaviest terms likely scores higher, so the first seed
        /// that finds enough sets a high bar. Each seed reads the heaviest terms' postings again: when
        /// they are few, the first asks for [`MAX_SEED_REQUIRED`] of them (a question's rare words go
        /// together more often than chance); otherwise, for as many as about `wanted` chunks are expected
        /// to hold (the terms taken as independent), and never fewer than two.
        pub fn seeds(&self, wanted: usize) -> Vec<String> {
            let heavy = self.heaviest(SEED_TERMS);
            let strictest = heavy.len().min(MAX_SEED_REQUIRED);
            let postings: f64 = self.terms.iter().take(heavy.len()).map(|term| term.chunks).sum();
            let first = if postings * COST_POSTING <= CHEAP_SEED_MICROSECONDS {
                strictest
            } else {
                #[expect(clippy::cast_precision_loss, reason = "a few hundred results")]
                let wanted = wanted as f64;
                let shares = || self.terms.iter().take(heavy.len()).map(|term| term.share);
                (1..=strictest)
                    .rev()
                    .find(|required| self.size * chance_of_at_least(*required, shares()) >= wanted)
                    .unwrap_or(1)
                    .max(heavy.len().min(2))
            };
            (1..=first).rev().map(|required| at_least(required, &heavy).render()).collect()
        }

        fn heaviest(&self, count: usize) -> Vec<&str> {
            self.terms.iter().take(count).map(|term| term.lexeme.as_str()).collect()
        }

        /// A tsquery every chunk whose bound reaches `bar` matches: at least k of the p heaviest terms,
        /// where the other terms' bounds with the k − 1 heaviest stay below the bar. Of the (p, k) that
        /// hold, the cheapest by the cost model; with no bar, any term.
        pub fn necessary(&self, bar: f64) -> String {
            let bar = bar * (1.0 - MARGIN);
            let lexemes = self.lexemes();
            if bar <= 0.0 {
                return at_least(1, &lexemes).render();
            }
            let bounds: Vec<f64> = self.terms.iter().map(Term::bound).collect();
            let mut memo = HashMap::new();
            let mut best: Option<(f64, usize, usize)> = None;
            for heavy in 1..=bounds.len() {
                let others: f64 = bounds[heavy..].iter().sum();
                if others >= bar {
                    continue;
                }
                // The fewest heavy terms with which the others' bounds can reach the bar.
                let mut reach = others;
                let mut required = 0;
                while required < heavy && reach < bar {
                    reach += bounds[required];
                    required += 1;
                }
                // Asking for fewer is weaker, so still lets every such chunk through.
                let mut required = required.clamp(1, MAX_REQUIRED);
                while required > 1 && leaves(required, heavy, &mut memo) > MAX_LEAVES {
                    required -= 1;
                }
                let terms = &self.terms[..heavy];
                let postings: f64 = terms.iter().map(|term| term.chunks).sum();
                let matches = self.size * chance_of_at_least(required, terms.iter().map(|term| term.share));
                #[expect(clippy::cast_precision_loss, reason = "a tsquery's leaves are far below 2^52")]
                let leaves = leaves(required, heavy, &mut memo) as f64;
                let cost = postings * (COST_POSTING + COST_LEAF * leaves) + matches * COST_CHUNK;
                if best.is_none_or(|(least, _, _)| cost < least) {
                    best = Some((cost, heavy, required));
                }
            }
            // All terms, at least one, always holds (no other term is left): kept for safety.
            let (cost, heavy, required) = best.unwrap_or((0.0, lexemes.len(), 1));
            tracing::debug!(
                heavy,
                required,
                leaves = leaves(required, heavy, &mut memo),
                postings = self.terms[..heavy].iter().map(|term| term.chunks).sum::<f64>(),
                cost,
                "necessary"
            );
            at_least(required, &lexemes[..heavy]).render()
        }
    }

    /// BM25's term-frequency part for `tf` occurrences in a chunk of `tokens` tokens: it grows with `tf`
    /// and falls with `tokens`, so the most occurrences and the fewest tokens bound it.
    fn tf_part(tf: f64, tokens: i32, average_length: f64) -> f64 {
        tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * f64::from(tokens) / average_length))
    }

    /// The `depth`-th best score among `scored`: `depth` chunks reach it, so no chunk below it can be in
    /// the answer. 0 when fewer were scored.
    pub fn bar(scored: &[Ranked], depth: usize) -> f64 {
        if scored.len() < depth {
            return 0.0;
        }
        let mut best_first: Vec<f64> = scored.iter().map(|ranked| ranked.score).collect();
        best_first.sort_by(|a, b| b.total_cmp(a));
        best_first[depth - 1]
    }

    /// The `depth` best, ties by chunk id.
    pub fn best(mut scored: Vec<Ranked>, depth: usize) -> Vec<Ranked> {
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.chunk_id.cmp(&b.chunk_id)));
        scored.truncate(depth);
        scored
    }

    /// The chance that a chunk holds at least `required` (≥ 1) of terms it holds independently with
    /// these chances: an estimate of how many chunks a condition lets through.
    fn chance_of_at_least(required: usize, shares: impl Iterator<Item = f64>) -> f64 {
        // held[j]: the chance of holding j of the terms so far; the last entry, `required` or more.
        let mut held = vec![0.0; required + 1];
        held[0] = 1.0;
        for share in shares {
            held[required] += held[required - 1] * share;
            for j in (1..required).rev() {
                held[j] = held[j] * (1.0 - share) + held[j - 1] * share;
            }
            held[0] *= 1.0 - share;
        }
        held[required]
    }

    /// The leaves of `at_least(required, n lexemes)`, without building it.
    fn leaves(required: usize, n: usize, memo: &mut HashMap<(usize, usize), usize>) -> usize {
        if required == 0 || n < required {
            return 0;
        }
        if required == 1 || n == required {
            return n;
        }
        if let Some(known) = memo.get(&(required, n)) {
            return *known;
        }
        let (first, second) = (n / 2, n - n / 2);
        let total = (0..=required)
            .filter(|from_first| *from_first <= first && required - from_first <= second)
            .map(|from_first| leaves(from_first, first, memo) + leaves(required - from_first, second, memo))
            .sum();
        memo.insert((required, n), total);
        total
    }

    /// A boolean tsquery over lexemes.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Formula {
        Always,
        Never,
        Holds(String),
        All(Vec<Formula>),
        Any(Vec<Formula>),
    }

    impl Formula {
        #[cfg(test)]
        pub fn leaves(&self) -> usize {
            match self {
                Self::Always | Self::Never => 0,
                Self::Holds(_) => 1,
                Self::All(parts) | Self::Any(parts) => parts.iter().map(Self::leaves).sum(),
            }
        }

        /// As tsquery input: lexemes quoted (a quote doubled, a backslash escaped), so none is parsed.
        pub fn render(&self) -> String {
            match self {
                // Never used: `at_least` with at least one required term gives neither.
                Self::Always | Self::Never => String::new(),
                Self::Holds(lexeme) => format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''")),
                Self::All(parts) => format!("({})", parts.iter().map(Self::render).collect::<Vec<_>>().join(" & ")),
                Self::Any(parts) => format!("({})", parts.iter().map(Self::render).collect::<Vec<_>>().join(" | ")),
            }
        }

        #[cfg(test)]
        pub fn holds(&self, present: &dyn Fn(&str) -> bool) -> bool {
            match self {
                Self::Always => true,
                Self::Never => false,
                Self::Holds(lexeme) => present(lexeme),
                Self::All(parts) => parts.iter().all(|part| part.holds(present)),
                Self::Any(parts) => parts.iter().any(|part| part.holds(present)),
            }
        }
    }

    /// "At least `required` of `lexemes`", split in halves (at least i of the first and the rest of the
    /// second, for each i), so its size grows as n·log(n)^(required − 1) rather than as the binomial.
    pub(super) fn at_least(required: usize, lexemes: &[&str]) -> Formula {
        if required == 0 {
            return Formula::Always;
        }
        if lexemes.len() < required {
            return Formula::Never;
        }
        if required == 1 {
            return match lexemes {
                [one] => Formula::Holds((*one).to_owned()),
                _ => Formula::Any(lexemes.iter().map(|lexeme| Formula::Holds((*lexeme).to_owned())).collect()),
            };
        }
        if lexemes.len() == required {
            return Formula::All(lexemes.iter().map(|lexeme| Formula::Holds((*lexeme).to_owned())).collect());
        }
        let (first, second) = lexemes.split_at(lexemes.len() / 2);
        let mut ways = Vec::new();
        for from_first in 0..=required {
            let parts = [at_least(from_first, first), at_least(required - from_first, second)];
            if parts.contains(&Formula::Never) {
                continue;
            }
            let mut parts: Vec<Formula> = parts.into_iter().filter(|part| *part != Formula::Always).collect();
            ways.push(if parts.len() == 1 { parts.remove(0) } else { Formula::All(parts) });
        }
        match ways.len() {
            0 => Formula::Never,
            1 => ways.remove(0),
            _ => Formula::Any(ways),
        }
    }

    /// (lexeme, occurrences) of a tsvector's text form: `'lexeme':1B,7B 'it''s':3B`; a lexeme stored
    /// without positions counts once.
    pub(super) fn occurrences(vector: &str) -> impl Iterator<Item = (String, u32)> + '_ {
        let mut rest = vector;
        std::iter::from_fn(move || {
            rest = rest.trim_start().strip_prefix('\'')?;
            let mut lexeme = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => lexeme.push(chars.next()?.1),
                    (at, '\'') if rest[at + 1..].starts_with('\'') => {
                        lexeme.push('\'');
                        chars.next();
                    }
                    (at, '\'') => break at + 1,
                    (_, other) => lexeme.push(other),
                }
            };
            rest = &rest[end..];
            let positions = match rest.strip_prefix(':') {
                Some(after) => {
                    let stop = after.find(' ').unwrap_or(after.len());
                    let count = after[..stop].split(',').count();
                    rest = &after[stop..];
                    count
                }
                None => 1,
            };
            Some((lexeme, u32::try_from(positions).unwrap_or(u32::MAX)))
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tsvector_text_is_read_with_its_quotes_and_positions() {
            let read: Vec<(String, u32)> = occurrences("'it''s':3B 'a\\\\b':1B,2B,9B 'plain'").collect();
            assert_eq!(read, [("it's".to_owned(), 1), ("a\\b".to_owned(), 3), ("plain".to_owned(), 1)]);
            assert_eq!(occurrences("").count(), 0);
        }

        #[test]
        fn lexemes_are_quoted_for_tsquery_input() {
            assert_eq!(Formula::Holds("it's".to_owned()).render(), "'it''s'");
            assert_eq!(Formula::Holds("a\\b".to_owned()).render(), "'a\\\\b'");
        }

        #[test]
        fn at_least_k_holds_exactly_when_k_terms_are_present() {
            let lexemes = ["a", "b", "c", "d", "e", "f", "g"];
            for required in 1..=4 {
                let formula = at_least(required, &lexemes);
                for present in 0u32..(1 << lexemes.len()) {
                    let holds = formula.holds(&|lexeme: &str| {
                        let at = lexemes.iter().position(|l| *l == lexeme).unwrap();
                        present & (1 << at) != 0
                    });
                    let count = usize::try_from(present.count_ones()).unwrap();
                    assert_eq!(holds, count >= required, "at least {required} of {present:b}");
                }
            }
        }

        /// A term's statistics, its bounds unknown.
        fn row(lexeme: &str, occurrences: i32, chunks: f64, size: f64) -> TermRow {
            TermRow {
                lexeme: lexeme.to_owned(),
                occurrences,
                chunks,
                most_occurrences: None,
                fewest_tokens: None,
                size,
                average_length: 50.0,
            }
        }

        fn question(weights: &[(&str, i32)]) -> Question {
            // Corpus of 1000 chunks; each term in 100 of them.
            Question::new(
                weights.iter().map(|(lexeme, occurrences)| row(lexeme, *occurrences, 100.0, 1000.0)).collect(),
            )
            .unwrap()
        }

        #[test]
        fn known_occurrences_and_lengths_bound_a_term_below_its_limit_and_above_every_chunk() {
            let mut known = row("a", 1, 100.0, 1000.0);
            known.most_occurrences = Some(2);
            known.fewest_tokens = Some(40);
            let question = Question::new(vec![known, row("b", 1, 100.0, 1000.0)]).unwrap();
            let [a, b] = [0, 1].map(|at| question.terms.iter().find(|term| term.lexeme == ["a", "b"][at]).unwrap());
            assert!(a.bound() < a.weight * (K1 + 1.0));
            assert!((b.bound() - b.weight * (K1 + 1.0)).abs() < 1e-12, "unknown: the limit");
            // Every chunk the statistics allow: at most 2 occurrences, at least 40 tokens.
            for (tf, tokens) in [(1, 40), (2, 40), (2, 41), (1, 400)] {
                let vector = format!("'a':{}", (1..=tf).map(|at| at.to_string()).collect::<Vec<_>>().join(","));
                assert!(question.score(&vector, tokens) <= a.bound(), "{tf} in {tokens} tokens");
            }
            assert!((question.score("'a':1,2", 40) - a.bound()).abs() < 1e-12, "reached by the extreme chunk");
            assert!((question.ceiling() - (a.weight + b.weight) * (K1 + 1.0)).abs() < 1e-9, "the floor's scale stays");
        }

        #[test]
        fn the_necessary_condition_lets_through_every_chunk_that_could_reach_the_bar() {
            let question = question(&[("a", 3), ("b", 2), ("c", 1), ("d", 1), ("e", 1), ("f", 2)]);
            let lexemes = question.lexemes();
            for bar in [0.0, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0] {
                let rendered = question.necessary(bar);
                for present in 0u32..(1 << lexemes.len()) {
                    let holds = |lexeme: &str| present & (1 << lexemes.iter().position(|l| *l == lexeme).unwrap()) != 0;
                    let bound: f64 = question.terms.iter().filter(|term| holds(&term.lexeme)).map(Term::bound).sum();
                    if present == 0 || bound < bar {
                        continue;
                    }
                    // The rendered tsquery, read back by the shape `render` gives it.
                    let formula = reparse(&rendered);
                    assert!(formula.holds(&holds), "bar {bar}: {present:b} (bound {bound}) missed by {rendered}");
                }
            }
        }

        /// Parses what `render` writes (no escapes in these tests' lexemes).
        fn reparse(text: &str) -> Formula {
            fn expression(tokens: &mut std::iter::Peekable<std::vec::IntoIter<String>>) -> Formula {
                let mut any = vec![conjunction(tokens)];
                while tokens.peek().is_some_and(|token| token == "|") {
                    tokens.next();
                    any.push(conjunction(tokens));
                }
                if any.len() == 1 { any.remove(0) } else { Formula::Any(any) }
            }
            fn conjunction(tokens: &mut std::iter::Peekable<std::vec::IntoIter<String>>) -> Formula {
                let mut all = vec![atom(tokens)];
                while tokens.peek().is_some_and(|token| token == "&") {
                    tokens.next();
                    all.push(atom(tokens));
                }
                if all.len() == 1 { all.remove(0) } else { Formula::All(all) }
            }
            fn atom(tokens: &mut std::iter::Peekable<std::vec::IntoIter<String>>) -> Formula {
                let token = tokens.next().unwrap();
                if token == "(" {
                    let inner = expression(tokens);
                    assert_eq!(tokens.next().as_deref(), Some(")"));
                    inner
                } else {
                    Formula::Holds(token.trim_matches('\'').to_owned())
                }
            }
            let spaced = text.replace('(', " ( ").replace(')', " ) ");
            let tokens: Vec<String> = spaced.split_whitespace().map(str::to_owned).collect();
            expression(&mut tokens.into_iter().peekable())
        }

        #[test]
        fn seeds_go_from_the_most_heavy_terms_to_one_and_cheap_ones_start_strictest() {
            // Each term in 100 of 1000 chunks: 8 × 100 postings are cheap to read again.
            let question = question(&[("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1), ("f", 1)]);
            let seeds = question.seeds(20);
            assert_eq!(seeds.len(), MAX_SEED_REQUIRED);
            let lexemes = question.lexemes();
            for (seed, required) in seeds.iter().zip((1..=MAX_SEED_REQUIRED).rev()) {
                let formula = reparse(seed);
                for present in 0u32..(1 << lexemes.len()) {
                    let holds = |lexeme: &str| present & (1 << lexemes.iter().position(|l| *l == lexeme).unwrap()) != 0;
                    let count = usize::try_from(present.count_ones()).unwrap();
                    assert_eq!(formula.holds(&holds), count >= required, "{seed}: {present:b}");
                }
            }
            // Common terms (each in half of a million chunks): the first seed asks for as many as about the
            // wanted number of chunks hold, by chance, and at least two.
            let common = Question::new(["a", "b", "c"].map(|lexeme| row(lexeme, 1, 500_000.0, 1_000_000.0)).to_vec());
            assert_eq!(common.unwrap().seeds(200).len(), 3, "all three: 1 in 8 chunks hold them");
            let rare = Question::new(["a", "b"].map(|lexeme| row(lexeme, 1, 1_000.0, 1_000_000.0)).to_vec());
            assert_eq!(rare.unwrap().seeds(200).len(), 2, "two, though chance says one");
        }

        #[test]
        fn leaves_are_counted_without_building_the_formula() {
            let lexemes: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
            let lexemes: Vec<&str> = lexemes.iter().map(String::as_str).collect();
            let mut memo = HashMap::new();
            for n in 1..=lexemes.len() {
                for required in 1..=MAX_REQUIRED {
                    assert_eq!(
                        leaves(required, n, &mut memo),
                        at_least(required, &lexemes[..n]).leaves(),
                        "{required} of {n}"
                    );
                }
            }
        }

        #[test]
        fn chance_of_at_least_matches_the_binomial() {
            let chance = chance_of_at_least(2, [0.5, 0.5, 0.5].into_iter());
            assert!((chance - 0.5).abs() < 1e-12, "{chance}");
            assert!((chance_of_at_least(1, [0.1, 0.2].into_iter()) - 0.28).abs() < 1e-12);
        }

        #[test]
        fn repeated_question_terms_weigh_more_but_saturate() {
            let question = question(&[("once", 1), ("twice", 2), ("often", 10)]);
            let weight = |lexeme: &str| question.terms.iter().find(|term| term.lexeme == lexeme).unwrap().weight;
            assert!((weight("twice") / weight("once") - 1.8).abs() < 1e-12);
            assert!((weight("often") / weight("once") - 5.0).abs() < 1e-12);
        }

        #[test]
        fn the_bar_is_the_depth_th_best_score() {
            let ranked = |score| Ranked { chunk_id: uuid::Uuid::now_v7(), score };
            let scored = vec![ranked(1.0), ranked(5.0), ranked(3.0)];
            assert!((bar(&scored, 2) - 3.0).abs() < f64::EPSILON);
            assert!(bar(&scored, 4).abs() < f64::EPSILON);
        }
    }
}

/// The question a ranking answered, as the relevance floor needs it: its full-text ceiling
/// ([`FullText::ceiling`]) and, when it was embedded, its vector with the model that made it.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub ceiling: Option<f64>,
    pub vector: Option<(&'a crate::embeddings::EmbeddingModel, &'a [f32])>,
}

/// The chunks of a fused ranking with their documents, in the ranking's order, each with what the
/// relevance floor weighs: its exact cosine similarity to the question (when the question has a vector:
/// at most [`MAX_K`] chunks, so measured directly rather than through the index) and its share of the
/// question's BM25 ceiling (when full text found it).
pub async fn hits(
    connection: &mut PgConnection,
    ranking: &[Fused],
    question: Asked<'_>,
) -> Result<Vec<SearchHit>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ranking.iter().map(|fused| fused.chunk_id).collect();
    let mut found: std::collections::HashMap<uuid::Uuid, SearchHit> = sqlx::query_as::<_, SearchHit>(
        "SELECT c.id AS chunk_id, c.document_id, d.source_path, d.title, c.heading_path, c.content, c.token_count, \
                c.tenant_id = '00000000-0000-0000-0000-000000000000' AS shared \
         FROM doc_chunks AS c JOIN documents AS d ON d.id = c.document_id WHERE c.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?
    .into_iter()
    .map(|hit| (hit.chunk_id, hit))
    .collect();
    let similarities: std::collections::HashMap<uuid::Uuid, f64> = match question.vector {
        Some((model, vector)) if !ids.is_empty() => sqlx::query_as::<_, (uuid::Uuid, f64)>(
            "SELECT chunk_id, 1 - (embedding <=> $1) FROM chunk_embeddings WHERE model = $2 AND chunk_id = ANY($3)",
        )
        .bind(pgvector::Vector::from(vector.to_vec()))
        .bind(&model.id)
        .bind(&ids)
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .collect(),
        _ => std::collections::HashMap::new(),
    };
    let ceiling = question.ceiling;
    // A chunk deleted since it was ranked is simply left out.
    Ok(ranking
        .iter()
        .filter_map(|fused| {
            let mut hit = found.remove(&fused.chunk_id)?;
            hit.score = fused.score;
            hit.full_text_rank = fused.full_text_rank;
            hit.vector_rank = fused.vector_rank;
            hit.similarity = similarities.get(&fused.chunk_id).copied().or(fused.similarity);
            hit.full_text_score = fused.full_text_score;
            hit.term_coverage = fused.full_text_score.zip(ceiling).map(|(score, ceiling)| (score / ceiling).min(1.0));
            Some(hit)
        })
        .collect())
}
