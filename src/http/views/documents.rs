//! The tenant's documents and search results as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::retrieval::relevance::{self, Measure};
use crate::retrieval::rerank::RerankFallback;
use crate::retrieval::search::{SearchHit, SearchMode};
use crate::retrieval::{Document, IngestOutcome, Searched};

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    /// The collections it belongs to, by name.
    pub collections: Vec<String>,
    pub content_hash: String,
    pub byte_size: i32,
    pub chunk_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The media type of the file the document was made from (`text/markdown` for text sent as JSON).
    pub original_media_type: String,
    /// The size of that file in bytes (`byte_size`, the text's, for text sent as JSON).
    pub original_byte_size: i64,
}

impl From<&Document> for DocumentView {
    fn from(document: &Document) -> Self {
        Self {
            id: document.id,
            source_path: document.source_path.clone(),
            title: document.title.clone(),
            collections: document.collections.clone(),
            content_hash: document.content_hash.clone(),
            byte_size: document.byte_size,
            chunk_count: document.chunk_count,
            created_at: document.created_at,
            updated_at: document.updated_at,
            original_media_type: document.original_media_type.clone(),
            original_byte_size: document.original_byte_size,
        }
    }
}

/// The answer to adding a document: the document as stored, and whether it was new, changed or the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentAdded {
    pub document: DocumentView,
    pub outcome: IngestOutcome,
}

impl DocumentAdded {
    pub fn new(document: &Document, outcome: IngestOutcome) -> Self {
        Self { document: DocumentView::from(document), outcome }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentView>,
}

impl DocumentList {
    pub fn new(documents: &[Document]) -> Self {
        Self { documents: documents.iter().map(DocumentView::from).collect() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitView {
    pub chunk_id: uuid::Uuid,
    pub document_id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub content: String,
    pub token_count: i32,
    pub score: f64,
    pub full_text_rank: Option<u32>,
    pub vector_rank: Option<u32>,
    pub similarity: Option<f64>,
    pub shared: bool,
    /// What the relevance floor judged the passage by: `similarity` (cosine similarity to the question,
    /// when it has a vector) or `term_coverage` (the share of the question's BM25 ceiling it scores).
    pub relevance_measure: Option<Measure>,
    /// The passage's value on that measure, and the floor of the search's mode (the tenant's or the default).
    pub relevance: Option<f64>,
    pub floor: Option<f64>,
    /// Whether a turn would give this passage to the model.
    pub passes_floor: bool,
    /// The reranker's relevance score (higher is better; its scale is the provider's), or null when the
    /// passage was not reranked.
    pub rerank_score: Option<f64>,
}

impl SearchHitView {
    fn new(hit: &SearchHit, rerank_score: Option<f64>) -> Self {
        Self {
            chunk_id: hit.chunk_id,
            document_id: hit.document_id,
            source_path: hit.source_path.clone(),
            title: hit.title.clone(),
            heading_path: hit.heading_path.clone(),
            content: hit.content.clone(),
            token_count: hit.token_count,
            score: hit.score,
            full_text_rank: hit.full_text_rank,
            vector_rank: hit.vector_rank,
            similarity: hit.similarity,
            shared: hit.shared,
            relevance_measure: hit.relevance.map(|relevance| relevance.measure),
            relevance: hit.relevance.map(|relevance| relevance.value),
            floor: hit.relevance.map(|relevance| relevance.floor),
            passes_floor: relevance::passes(hit),
            rerank_score,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub results: Vec<SearchHitView>,
    pub mode: SearchMode,
    /// Whether the results are in the reranker's order. False when reranking was not asked for, or was and
    /// could not be done (`rerank_fallback` says why): the results are then in the fused order.
    pub reranked: bool,
    /// Why reranking was asked for and not done; null otherwise.
    pub rerank_fallback: Option<RerankFallbackView>,
}

/// Why a search kept the fused order: the reranker did not answer in time (`timeout`), answered an error
/// (`provider_error`), a budget is used up (`budget_exhausted`: no paid call was made), or the tenant's
/// setting is on and the deployment has no reranker (`reranker_unavailable`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RerankFallbackView {
    Timeout,
    ProviderError,
    BudgetExhausted,
    RerankerUnavailable,
}

impl From<RerankFallback> for RerankFallbackView {
    fn from(fallback: RerankFallback) -> Self {
        match fallback {
            RerankFallback::Timeout => Self::Timeout,
            RerankFallback::ProviderError => Self::ProviderError,
            RerankFallback::BudgetExhausted => Self::BudgetExhausted,
            RerankFallback::Unavailable => Self::RerankerUnavailable,
        }
    }
}

impl SearchResults {
    pub fn new(searched: &Searched, mode: SearchMode) -> Self {
        let results = searched
            .hits
            .iter()
            .zip(searched.rerank_scores.iter().copied().chain(std::iter::repeat(None)))
            .map(|(hit, score)| SearchHitView::new(hit, score))
            .collect();
        Self {
            results,
            mode,
            reranked: searched.reranked,
            rerank_fallback: searched.fallback.map(RerankFallbackView::from),
        }
    }
}
