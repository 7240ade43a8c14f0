//! The relevance floor: which search hits are related enough to the question to be given to a model.
//! Search always returns its best chunks, however poor; a chunk that shares one word with the question
//! ("spring" in a question about jackets, asked of beekeeping notes) is not grounds for an answer.
//!
//! Every hit is judged on one scale per search: with a question vector, its cosine similarity to the
//! question (measured for every hit, also those only full text found); without one (`full_text` mode, or
//! no embedder), its term coverage, the share of the question's BM25 ceiling it scores. The default
//! floors were measured with `examples/grounding_eval.rs` on questions unrelated to their collections
//! (docs_corpus/documents-and-search.md, "The relevance floor", gives the figures); a tenant may set its own.

pub use super::search::{Measure, Relevance};
use super::search::{SearchHit, SearchMode};

/// The default floors: cosine similarity of all-MiniLM-L6-v2 for `hybrid` and `vector`; term coverage
/// for `full_text` (and for a hybrid search whose question could not be embedded). Each is the rule's
/// floor of `examples/grounding_eval.rs`: the smallest multiple of 0.05 above 95 % of the best relevances
/// that questions without an answer got (the calibration half); the Vaswani judgments only measured what
/// each costs.
pub const DEFAULT_HYBRID_FLOOR: f64 = 0.40;
pub const DEFAULT_VECTOR_FLOOR: f64 = 0.40;
pub const DEFAULT_FULL_TEXT_FLOOR: f64 = 0.25;

/// The floor of each search mode, the defaults or the tenant's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floors {
    pub hybrid: f64,
    pub vector: f64,
    pub full_text: f64,
}

impl Default for Floors {
    fn default() -> Self {
        Self { hybrid: DEFAULT_HYBRID_FLOOR, vector: DEFAULT_VECTOR_FLOOR, full_text: DEFAULT_FULL_TEXT_FLOOR }
    }
}

/// A tenant's own floors; a mode it did not set keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub struct TenantFloors {
    pub relevance_floor_hybrid: Option<f64>,
    pub relevance_floor_vector: Option<f64>,
    pub relevance_floor_full_text: Option<f64>,
}

impl From<TenantFloors> for Floors {
    fn from(own: TenantFloors) -> Self {
        let default = Self::default();
        Self {
            hybrid: own.relevance_floor_hybrid.unwrap_or(default.hybrid),
            vector: own.relevance_floor_vector.unwrap_or(default.vector),
            full_text: own.relevance_floor_full_text.unwrap_or(default.full_text),
        }
    }
}

impl Floors {
    /// No floor at all: every hit passes (the evaluation's baseline).
    pub const NONE: Self = Self { hybrid: f64::NEG_INFINITY, vector: f64::NEG_INFINITY, full_text: f64::NEG_INFINITY };

    /// Sets each hit's [`Relevance`]. A hit without a similarity in a vector-judged search (a chunk the
    /// backfill has not embedded yet) is judged by term coverage, as is every hit of a search whose
    /// question has no vector. A hit with neither measure fails.
    pub fn judge(&self, hits: &mut [SearchHit], mode: SearchMode) {
        for hit in hits {
            hit.relevance = Some(self.judge_one(hit, mode));
        }
    }

    fn judge_one(&self, hit: &SearchHit, mode: SearchMode) -> Relevance {
        let similarity = hit.similarity.filter(|_| mode != SearchMode::FullText);
        let (measure, value, floor) = match (similarity, mode) {
            (Some(similarity), SearchMode::Vector) => (Measure::Similarity, Some(similarity), self.vector),
            (Some(similarity), _) => (Measure::Similarity, Some(similarity), self.hybrid),
            (None, _) => (Measure::TermCoverage, hit.term_coverage, self.full_text),
        };
        let passes = value.is_some_and(|value| value >= floor);
        Relevance { measure, value: value.unwrap_or(0.0), floor, passes }
    }
}

/// Whether the floor kept the hit (a hit never judged is kept: nothing said it was poor).
pub fn passes(hit: &SearchHit) -> bool {
    hit.relevance.is_none_or(|relevance| relevance.passes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(similarity: Option<f64>, term_coverage: Option<f64>) -> SearchHit {
        SearchHit {
            chunk_id: uuid::Uuid::nil(),
            document_id: uuid::Uuid::nil(),
            source_path: "a.md".into(),
            title: "A".into(),
            heading_path: Vec::new(),
            content: "text".into(),
            token_count: 1,
            score: 0.0,
            full_text_rank: term_coverage.map(|_| 1),
            vector_rank: None,
            similarity,
            full_text_score: term_coverage,
            term_coverage,
            relevance: None,
            shared: false,
        }
    }

    #[test]
    fn each_mode_judges_on_its_own_scale_against_its_own_floor() {
        let floors = Floors { hybrid: 0.3, vector: 0.4, full_text: 0.2 };
        let cases = [
            // (similarity, coverage, mode, measure, passes)
            (Some(0.35), Some(0.9), SearchMode::Hybrid, Measure::Similarity, true),
            (Some(0.35), Some(0.9), SearchMode::Vector, Measure::Similarity, false),
            (Some(0.1), Some(0.9), SearchMode::Hybrid, Measure::Similarity, false),
            // Full text is judged by coverage even if a similarity were known.
            (Some(0.9), Some(0.1), SearchMode::FullText, Measure::TermCoverage, false),
            (None, Some(0.25), SearchMode::FullText, Measure::TermCoverage, true),
            // A hybrid search without a question vector, or a chunk not embedded yet.
            (None, Some(0.25), SearchMode::Hybrid, Measure::TermCoverage, true),
            (None, None, SearchMode::Hybrid, Measure::TermCoverage, false),
        ];
        for (similarity, coverage, mode, measure, passes) in cases {
            let mut hits = [hit(similarity, coverage)];
            floors.judge(&mut hits, mode);
            let relevance = hits[0].relevance.unwrap();
            assert_eq!(
                (relevance.measure, relevance.passes),
                (measure, passes),
                "{similarity:?} {coverage:?} {mode:?}"
            );
        }
        let mut hits = [hit(Some(-0.5), None)];
        Floors::NONE.judge(&mut hits, SearchMode::Vector);
        assert!(passes(&hits[0]), "no floor keeps everything");
    }

    #[test]
    fn a_tenant_floor_overrides_only_its_mode() {
        let own = TenantFloors { relevance_floor_vector: Some(0.5), ..TenantFloors::default() };
        let floors = Floors::from(own);
        assert_eq!(floors, Floors { vector: 0.5, ..Floors::default() });
    }
}
