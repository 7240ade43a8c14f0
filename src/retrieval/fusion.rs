//! Reciprocal-rank fusion: a chunk scores Σ 1 / (k + rank) over the rankings that found it. It needs no
//! calibration between BM25 scores and cosine similarities, which live on unrelated scales, and rewards
//! chunks both rankings agree on. k = 60 is the constant of Cormack et al. (2009), kept as published rather
//! than tuned on the evaluation queries (examples/retrieval_eval.rs reports what it gives).

use std::collections::HashMap;

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

/// Fuses the two rankings, best first; ties go to the lower chunk id so results are stable.
pub fn reciprocal_rank(full_text: &[Ranked], vector: &[Ranked]) -> Vec<Fused> {
    let mut fused: HashMap<uuid::Uuid, Fused> = HashMap::new();
    for (ranking, is_full_text) in [(full_text, true), (vector, false)] {
        for (rank, ranked) in (1u32..).zip(ranking) {
            let entry = fused.entry(ranked.chunk_id).or_insert(Fused {
                chunk_id: ranked.chunk_id,
                score: 0.0,
                full_text_rank: None,
                vector_rank: None,
                similarity: None,
                full_text_score: None,
            });
            entry.score += 1.0 / (RRF_K + f64::from(rank));
            if is_full_text {
                entry.full_text_rank = Some(rank);
                entry.full_text_score = Some(ranked.score);
            } else {
                entry.vector_rank = Some(rank);
                entry.similarity = Some(ranked.score);
            }
        }
    }
    let mut fused: Vec<Fused> = fused.into_values().collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk_id.cmp(&b.chunk_id)));
    fused
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

    fn ranking(ids: &[u128]) -> Vec<Ranked> {
        ids.iter().map(|id| Ranked { chunk_id: uuid::Uuid::from_u128(*id), score: 0.0 }).collect()
    }

    #[test]
    fn agreement_outranks_one_first_place() {
        let fused = reciprocal_rank(&ranking(&[1, 2, 3]), &ranking(&[4, 2, 1]));
        let order: Vec<u128> = fused.iter().map(|f| f.chunk_id.as_u128()).collect();
        // 2 is second in both; 1 first and third: 1/61 + 1/63 > 2/62 by a hair, so 1 leads.
        assert_eq!(order, [1, 2, 4, 3]);
        assert_eq!(fused[1].full_text_rank, Some(2));
        assert_eq!(fused[1].vector_rank, Some(2));
        assert_eq!(fused[2].full_text_rank, None);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);
    }

    #[test]
    fn one_empty_ranking_keeps_the_other_order() {
        let fused = reciprocal_rank(&ranking(&[5, 3, 9]), &[]);
        let order: Vec<u128> = fused.iter().map(|f| f.chunk_id.as_u128()).collect();
        assert_eq!(order, [5, 3, 9]);
    }
}
