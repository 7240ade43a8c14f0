//! Hybrid fusion: the full-text and vector rankings of one question made one.
//!
//! Each ranking's scores are standardised over the ranking itself (z-scores: minus their mean, over their
//! standard deviation; Montague & Aslam, "Relevance score normalization for metasearch", CIKM 2001; Qdrant's
//! distribution-based fusion is the same, clipped at ±3), and a chunk scores the weighted mean of its
//! z-scores, each ranking weighing its top z-score: how far its best chunk stands out from the rest. A chunk
//! one ranking did not find gets that ranking's lowest z-score (it scored at most that). So a ranking with a
//! clear winner decides more of the order, a flat one (every chunk about as good: it cannot tell them apart
//! for this question) decides little, and one whose scores are all equal nothing; chunks both rank high
//! still come first. The weight is one of the score-distribution predictors of a ranking's quality that
//! need no judgments (as WIG, Zhou & Croft, SIGIR 2007, and NQC, Shtok et al., ACM TOIS 2012): taken
//! question by question from what the search returned, with no constant to tune.
//!
//! Why not reciprocal rank (Cormack, Clarke & Büttcher, SIGIR 2009, k = 60; what this replaced): it keeps
//! only each chunk's place, so a ranking that is sure and one that is guessing count the same and the
//! weaker drags the order down. Convex combinations of scores beat it in and out of domain (Bruch, Gai &
//! Ingber, "An analysis of fusion functions for hybrid retrieval", ACM TOIS 2023); z-scores need no bound
//! on either scale (BM25 has none) and keep each ranking's confidence, which min-max scaling erases.
//!
//! How it was chosen, without the test collection's judged queries: among reciprocal rank, min-max and
//! z-score combinations, equal or weighted by the top z-score, the gap between the first two, or the top
//! ten's mean, on the known-item questions of examples/retrieval_eval.rs (a document's first 60 words; the
//! same misspelt; 20 words of another document, then 40 of the one to find). On the last, where full text
//! finds the document first 99 % of the time and the vector two times in three, reciprocal rank scored 0.81
//! nDCG@10 and this 0.96; Vaswani's judged queries only measured it after (0.493 both, MRR@10 0.728 →
//! 0.762).
//! docs_corpus/documents-and-search.md gives the table.

use std::collections::HashMap;

/// Reciprocal rank's constant (Cormack et al. 2009): fused order's tie-break, and the whole order when
/// neither ranking's scores say anything (fewer than two, or all equal).
pub const RRF_K: f64 = 60.0;

/// One ranked chunk, as one ranking sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Ranked {
    pub chunk_id: uuid::Uuid,
    pub score: f64,
}

/// A chunk's place in the fused ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub chunk_id: uuid::Uuid,
    pub score: f64,
    pub full_text_rank: Option<u32>,
    pub vector_rank: Option<u32>,
    /// The cosine similarity, when the vector ranking found the chunk.
    pub similarity: Option<f64>,
    /// The BM25 score, when the full-text ranking found the chunk (the relevance floor weighs it).
    pub full_text_score: Option<f64>,
}

/// One ranking's scores standardised: z = (score − mean) / deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Standard {
    mean: f64,
    deviation: f64,
    /// The lowest z-score: what a chunk this ranking did not find is given.
    lowest: f64,
    /// How much the ranking decides: its best z-score (how far its best chunk stands out).
    weight: f64,
}

impl Standard {
    /// `None` when the scores say nothing: fewer than two, or all (nearly) equal.
    fn of(ranking: &[Ranked]) -> Option<Self> {
        if ranking.len() < 2 {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "a ranking holds at most a few hundred chunks")]
        let count = ranking.len() as f64;
        let mean = ranking.iter().map(|ranked| ranked.score).sum::<f64>() / count;
        let variance = ranking.iter().map(|ranked| (ranked.score - mean).powi(2)).sum::<f64>() / count;
        let deviation = variance.sqrt();
        if !deviation.is_finite() || deviation <= 1e-9 * mean.abs().max(1.0) {
            return None;
        }
        let (lowest, highest) = ranking.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), ranked| {
            (low.min(ranked.score), high.max(ranked.score))
        });
        Some(Self { mean, deviation, lowest: (lowest - mean) / deviation, weight: (highest - mean) / deviation })
    }

    fn z(&self, score: Option<f64>) -> f64 {
        score.map_or(self.lowest, |score| (score - self.mean) / self.deviation)
    }
}

/// Fuses the two rankings (each best first), best first: the confidence-weighted mean of each chunk's
/// z-scores (module doc); ties, and rankings whose scores say nothing, by reciprocal rank, then by the
/// lower chunk id so results are stable. With one ranking empty, the other's order.
pub fn hybrid(full_text: &[Ranked], vector: &[Ranked]) -> Vec<Fused> {
    let mut fused: HashMap<uuid::Uuid, (Fused, f64)> = HashMap::new();
    for (ranking, is_full_text) in [(full_text, true), (vector, false)] {
        for (rank, ranked) in (1u32..).zip(ranking) {
            let (entry, reciprocal) = fused.entry(ranked.chunk_id).or_insert((
                Fused {
                    chunk_id: ranked.chunk_id,
                    score: 0.0,
                    full_text_rank: None,
                    vector_rank: None,
                    similarity: None,
                    full_text_score: None,
                },
                0.0,
            ));
            *reciprocal += 1.0 / (RRF_K + f64::from(rank));
            if is_full_text {
                entry.full_text_rank = Some(rank);
                entry.full_text_score = Some(ranked.score);
            } else {
                entry.vector_rank = Some(rank);
                entry.similarity = Some(ranked.score);
            }
        }
    }
    let standards = [Standard::of(full_text), Standard::of(vector)];
    let total: f64 = standards.iter().flatten().map(|standard| standard.weight).sum();
    let mut fused: Vec<(Fused, f64)> = fused.into_values().collect();
    for (entry, reciprocal) in &mut fused {
        entry.score = if total > 0.0 {
            let [full_text, vector] = standards;
            let part = |standard: Option<Standard>, score: Option<f64>| {
                standard.map_or(0.0, |standard| standard.weight * standard.z(score))
            };
            (part(full_text, entry.full_text_score) + part(vector, entry.similarity)) / total
        } else {
            *reciprocal
        };
    }
    fused.sort_by(|(a, a_reciprocal), (b, b_reciprocal)| {
        b.score.total_cmp(&a.score).then(b_reciprocal.total_cmp(a_reciprocal)).then(a.chunk_id.cmp(&b.chunk_id))
    });
    fused.into_iter().map(|(entry, _)| entry).collect()
}

/// One ranking alone, keeping its own scores.
pub fn single(ranking: &[Ranked], is_full_text: bool) -> Vec<Fused> {
    (1u32..)
        .zip(ranking)
        .map(|(rank, ranked)| Fused {
            chunk_id: ranked.chunk_id,
            score: ranked.score,
            full_text_rank: is_full_text.then_some(rank),
            vector_rank: (!is_full_text).then_some(rank),
            similarity: (!is_full_text).then_some(ranked.score),
            full_text_score: is_full_text.then_some(ranked.score),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ranking of (chunk id, score), best first.
    fn ranking(scored: &[(u128, f64)]) -> Vec<Ranked> {
        scored.iter().map(|(id, score)| Ranked { chunk_id: uuid::Uuid::from_u128(*id), score: *score }).collect()
    }

    fn order(fused: &[Fused]) -> Vec<u128> {
        fused.iter().map(|fused| fused.chunk_id.as_u128()).collect()
    }

    #[test]
    fn a_ranking_that_cannot_tell_chunks_apart_leaves_the_order_to_the_other() {
        let full_text = ranking(&[(1, 4.0), (2, 4.0), (3, 4.0), (4, 4.0)]);
        let vector = ranking(&[(4, 0.8), (3, 0.6), (5, 0.5), (1, 0.3)]);
        assert_eq!(order(&hybrid(&full_text, &vector)), [4, 3, 5, 1, 2]);
        assert_eq!(order(&hybrid(&vector, &full_text)), [4, 3, 5, 1, 2], "either side");
    }

    #[test]
    fn a_chunk_both_rankings_place_near_the_top_comes_first() {
        let full_text = ranking(&[(1, 9.0), (2, 8.8), (3, 3.0), (4, 2.9), (5, 2.8), (6, 2.7)]);
        let vector = ranking(&[(7, 0.71), (2, 0.70), (8, 0.52), (9, 0.51), (10, 0.50), (11, 0.49)]);
        let fused = hybrid(&full_text, &vector);
        assert_eq!(order(&fused)[0], 2);
        assert_eq!((fused[0].full_text_rank, fused[0].vector_rank), (Some(2), Some(2)));
        assert_eq!((fused[0].full_text_score, fused[0].similarity), (Some(8.8), Some(0.70)));
    }

    #[test]
    fn a_chunk_far_ahead_in_one_ranking_outweighs_an_evenly_spread_other() {
        // Full text finds one chunk far above the rest; the vector ranking spreads its chunks evenly and
        // has that chunk last.
        let full_text = ranking(&[(1, 20.0), (2, 3.0), (3, 2.9), (4, 2.8), (5, 2.7)]);
        let vector = ranking(&[(6, 0.52), (7, 0.51), (8, 0.51), (9, 0.50), (1, 0.49)]);
        let fused = hybrid(&full_text, &vector);
        assert_eq!(order(&fused)[0], 1);
        assert_eq!(fused[0].vector_rank, Some(5));
        // And the other way round.
        let vector = ranking(&[(1, 0.9), (2, 0.31), (3, 0.3), (4, 0.3), (5, 0.29)]);
        let full_text = ranking(&[(6, 5.2), (7, 5.1), (8, 5.1), (9, 5.0), (1, 4.9)]);
        assert_eq!(order(&hybrid(&full_text, &vector))[0], 1);
    }

    #[test]
    fn one_empty_ranking_keeps_the_other_order() {
        let full_text = ranking(&[(5, 3.0), (3, 2.0), (9, 1.0)]);
        assert_eq!(order(&hybrid(&full_text, &[])), [5, 3, 9]);
        assert_eq!(order(&hybrid(&[], &full_text)), [5, 3, 9]);
        assert!(hybrid(&[], &[]).is_empty());
    }

    #[test]
    fn scores_that_say_nothing_fall_back_to_reciprocal_rank_and_stable_ties() {
        // One chunk each: no spread to standardise. 1 is first in one ranking and second in the other.
        let fused = hybrid(&ranking(&[(1, 7.0)]), &ranking(&[(2, 0.9)]));
        assert_eq!(order(&fused), [1, 2], "equal reciprocal ranks: the lower id");
        let fused = hybrid(&ranking(&[(3, 1.0), (1, 1.0)]), &ranking(&[(1, 0.5), (2, 0.5)]));
        assert_eq!(order(&fused), [1, 3, 2], "1 is found by both");
        assert!(fused.iter().all(|fused| fused.score.is_finite()));
    }
}
