//! The retriever: which embedder embeds new chunks, which one embeds questions, and the search that uses
//! them. During a change of embedding model the two differ: chunks get the new model's vectors while
//! questions are still answered from a complete earlier model, until the backfill completes the new one.

use std::sync::{Arc, PoisonError, RwLock};

use sqlx::PgConnection;

use super::relevance::Floors;
use super::search::{self, SearchHit, SearchMode};
use super::{RetrievalError, fusion, store, vectors};
use crate::auth::context::{CollectionScope, TenantContext};
use crate::collections;
use crate::db;
use crate::embeddings::{Embedder, EmbedderFactory, EmbeddingModel, EmbeddingSpend};
use crate::usage::{self, EmbeddingPayer};

/// How deep each ranking goes before fusion: fusion needs more than the `k` it returns.
pub const FUSION_DEPTH: i64 = 100;

/// A question waits this long for its vector (retries included) before searching by full text alone: a
/// slow embedding provider must not hold a conversation up.
const QUESTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a search in `vector` mode waits for its question's vector before it answers 503.
const VECTOR_SEARCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct Retriever {
    embedders: Arc<RwLock<Embedders>>,
    /// Builds the embedders `/v1/embeddings` names besides the deployment's own.
    factory: Option<EmbedderFactory>,
}

#[derive(Debug, Clone, Default)]
struct Embedders {
    documents: Option<Embedder>,
    questions: Option<Embedder>,
}

/// A question embedded by the model that serves searches.
#[derive(Debug, Clone)]
pub struct QueryVector {
    pub model: EmbeddingModel,
    pub vector: Vec<f32>,
    /// What embedding the question cost, for its usage record.
    pub spend: EmbeddingSpend,
}

impl Retriever {
    /// Full text only: no embedder could be set up.
    pub fn full_text_only() -> Self {
        Self::default()
    }

    /// `documents` embeds new chunks; `questions` embeds questions (the same one unless a model change is
    /// under way).
    pub fn new(documents: Embedder, questions: Embedder) -> Self {
        let embedders = Embedders { documents: Some(documents), questions: Some(questions) };
        Self { embedders: Arc::new(RwLock::new(embedders)), factory: None }
    }

    /// This retriever, able to build other embedders on request.
    #[must_use]
    pub fn with_factory(self, factory: EmbedderFactory) -> Self {
        Self { factory: Some(factory), ..self }
    }

    pub fn factory(&self) -> Option<&EmbedderFactory> {
        self.factory.as_ref()
    }

    pub fn document_embedder(&self) -> Option<Embedder> {
        self.embedders.read().unwrap_or_else(PoisonError::into_inner).documents.clone()
    }

    pub fn question_embedder(&self) -> Option<Embedder> {
        self.embedders.read().unwrap_or_else(PoisonError::into_inner).questions.clone()
    }

    /// The document model is complete: questions use it from now on.
    pub fn promote_document_model(&self) {
        let mut embedders = self.embedders.write().unwrap_or_else(PoisonError::into_inner);
        let Embedders { documents, questions } = &mut *embedders;
        questions.clone_from(documents);
    }

    /// Embeds a question for vector search; `None` (logged) when there is no embedder or it fails, and
    /// search falls back to full text rather than failing.
    pub async fn embed_question(&self, question: &str) -> Option<QueryVector> {
        self.embed_question_within(question, QUESTION_TIMEOUT).await
    }

    async fn embed_question_within(&self, question: &str, wait: std::time::Duration) -> Option<QueryVector> {
        let embedder = self.question_embedder()?;
        match tokio::time::timeout(wait, embedder.embed_query(question)).await {
            Ok(Ok((vector, spend))) => Some(QueryVector { model: embedder.model().clone(), vector, spend }),
            Ok(Err(error)) => {
                tracing::warn!(%error, model = %embedder.model().id, "embedding the question failed; full text only");
                None
            }
            Err(_) => {
                tracing::warn!(model = %embedder.model().id, "embedding the question timed out; full text only");
                None
            }
        }
    }

    /// The `k` best chunks for `query` among those the transaction's tenant sees within `scope`, by
    /// `mode`. Without a question vector, hybrid search is full text alone. The scope holds for the rest
    /// of the transaction: PostgreSQL hides every chunk outside it.
    #[tracing::instrument(name = "retrieval", skip_all, fields(mode = ?mode, k, vector = vector.is_some()))]
    pub async fn search_in(
        connection: &mut PgConnection,
        query: &str,
        vector: Option<&QueryVector>,
        k: i64,
        mode: SearchMode,
        scope: &CollectionScope,
    ) -> Result<Vec<SearchHit>, sqlx::Error> {
        let started = std::time::Instant::now();
        collections::store::limit_reads(&mut *connection, scope).await?;
        let depth = FUSION_DEPTH.max(k);
        let full_text = if mode == SearchMode::Vector {
            search::FullText::default()
        } else {
            search::full_text(&mut *connection, query, depth).await?
        };
        let nearest = match vector {
            Some(vector) if mode != SearchMode::FullText => {
                vectors::nearest(&mut *connection, &vector.model, &vector.vector, depth).await?
            }
            _ => Vec::new(),
        };
        let mut ranking = match mode {
            SearchMode::Hybrid => fusion::reciprocal_rank(&full_text.ranked, &nearest),
            SearchMode::FullText => fusion::single(&full_text.ranked, true),
            SearchMode::Vector => fusion::single(&nearest, false),
        };
        ranking.truncate(usize::try_from(k).unwrap_or(0));
        let question = search::Asked {
            ceiling: full_text.ceiling,
            vector: vector.map(|vector| (&vector.model, vector.vector.as_slice())),
        };
        let hits = search::hits(connection, &ranking, question).await;
        crate::metrics::retrieval(mode.as_str(), started.elapsed());
        hits
    }

    /// `POST /api/v1/search`: validates, embeds the question, searches as the tenant within `scope` (the
    /// caller's, or narrower).
    pub async fn search(
        &self,
        pool: &sqlx::PgPool,
        context: &TenantContext,
        query: &str,
        k: i64,
        mode: SearchMode,
        scope: &CollectionScope,
    ) -> Result<Vec<SearchHit>, RetrievalError> {
        if query.trim().is_empty() || query.len() > 10_000 {
            return Err(RetrievalError::Invalid("query must be 1 to 10000 characters".to_owned()));
        }
        if !(1..=search::MAX_K).contains(&k) {
            return Err(RetrievalError::Invalid(format!("k must be between 1 and {}", search::MAX_K)));
        }
        let vector = match mode {
            SearchMode::FullText => None,
            SearchMode::Hybrid => self.embed_question(query).await,
            // Asked for by name: there is no full text to fall back on, so a busy embedder is waited for.
            SearchMode::Vector => self.embed_question_within(query, VECTOR_SEARCH_TIMEOUT).await,
        };
        if mode == SearchMode::Vector && vector.is_none() {
            return Err(RetrievalError::EmbeddingsUnavailable);
        }
        let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
        let mut hits = Self::search_in(&mut transaction, query, vector.as_ref(), k, mode, scope).await?;
        // Reported, not applied: a search shows what a turn would give the model and what it would not.
        Floors::from(store::tenant_floors(&mut transaction).await?).judge(&mut hits, mode);
        if let Some(vector) = &vector {
            let payer = EmbeddingPayer { api_key_id: context.actor().api_key_id(), ..EmbeddingPayer::default() };
            usage::record_embedding(&mut transaction, context.tenant_id(), payer, &vector.model, vector.spend).await?;
        }
        transaction.commit().await?;
        Ok(hits)
    }
}
