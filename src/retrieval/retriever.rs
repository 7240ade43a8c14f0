//! The retriever: which embedder embeds new chunks, which one embeds questions, and the search that uses
//! them. During a change of embedding model the two differ: chunks get the new model's vectors while
//! questions are still answered from a complete earlier model, until the backfill completes the new one.
//! With a reranker configured, the best fused candidates of a search a tenant or request wants reranked
//! are reordered by it (`rerank.rs`), within its timeout; if it fails, the fused order stands.

use std::sync::{Arc, PoisonError, RwLock};

use sqlx::PgConnection;

use super::relevance::Floors;
use super::rerank::{RERANK_CANDIDATES, RerankError, RerankFallback, Reranker};
use super::search::{self, SearchHit, SearchMode};
use super::{RetrievalError, fusion, store, vectors};
use crate::audit::Recorder;
use crate::auth::context::{CollectionScope, TenantContext};
use crate::budgets::{Payer, RunBudgets};
use crate::collections;
use crate::db;
use crate::embeddings::{Embedder, EmbedderFactory, EmbeddingModel, EmbeddingSpend};
use crate::ids::TenantId;
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
    /// The deployment's reranker (`SWITCHBOARD_RERANK_MODEL`), if any.
    reranker: Option<Reranker>,
    /// Writes the documents saved through the API, a tenant's concurrent saves in one transaction.
    writer: Arc<super::writer::DocumentWriter>,
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
        Self { embedders: Arc::new(RwLock::new(embedders)), ..Self::default() }
    }

    /// This retriever, reranking with `reranker` the searches that want it.
    #[must_use]
    pub fn with_reranker(self, reranker: Option<Reranker>) -> Self {
        Self { reranker, ..self }
    }

    pub fn reranker(&self) -> Option<&Reranker> {
        self.reranker.as_ref()
    }

    /// How many fused candidates a search of `k` fetches: enough for the reranker to reorder when the
    /// search is to be reranked and there is one.
    pub fn candidates(&self, k: i64, reranked: bool) -> i64 {
        if reranked && self.reranker.is_some() {
            k.max(i64::try_from(RERANK_CANDIDATES).unwrap_or(i64::MAX))
        } else {
            k
        }
    }

    /// This retriever, able to build other embedders on request.
    #[must_use]
    pub fn with_factory(self, factory: EmbedderFactory) -> Self {
        Self { factory: Some(factory), ..self }
    }

    pub fn factory(&self) -> Option<&EmbedderFactory> {
        self.factory.as_ref()
    }

    pub fn document_writer(&self) -> &Arc<super::writer::DocumentWriter> {
        &self.writer
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
            SearchMode::Hybrid => fusion::hybrid(&full_text.ranked, &nearest),
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
    /// caller's, or narrower), and reranks the best candidates when `rerank` says so (absent: the
    /// tenant's setting). `Some(true)` on a deployment without a reranker is refused.
    #[expect(clippy::too_many_arguments, reason = "a search's every parameter, named by the API")]
    pub async fn search(
        &self,
        pool: &sqlx::PgPool,
        context: &TenantContext,
        query: &str,
        k: i64,
        mode: SearchMode,
        scope: &CollectionScope,
        rerank: Option<bool>,
    ) -> Result<Searched, RetrievalError> {
        if query.trim().is_empty() || query.len() > 10_000 {
            return Err(RetrievalError::Invalid("query must be 1 to 10000 characters".to_owned()));
        }
        if !(1..=search::MAX_K).contains(&k) {
            return Err(RetrievalError::Invalid(format!("k must be between 1 and {}", search::MAX_K)));
        }
        if rerank == Some(true) && self.reranker.is_none() {
            return Err(RetrievalError::RerankerUnavailable);
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
        let settings = store::search_settings(&mut transaction).await?;
        let wanted = rerank.unwrap_or(settings.rerank);
        let depth = self.candidates(k, wanted);
        let mut hits = Self::search_in(&mut transaction, query, vector.as_ref(), depth, mode, scope).await?;
        // Reported, not applied: a search shows what a turn would give the model and what it would not.
        Floors::from(settings.floors).judge(&mut hits, mode);
        let payer = EmbeddingPayer { api_key_id: context.actor().api_key_id(), ..EmbeddingPayer::default() };
        if let Some(vector) = &vector {
            usage::record_embedding(&mut transaction, context.tenant_id(), payer, &vector.model, vector.spend).await?;
            // Spent against the searcher's budgets, as a charge of its own (nothing was reserved for it).
            if vector.spend.cost_usd.is_some_and(|cost| !cost.is_zero()) {
                let budgets = RunBudgets::of(&mut transaction, Payer::outside_run(payer.api_key_id, None)).await?;
                budgets.charge(&mut transaction, &Recorder::of(context), vector.spend.cost_usd).await?;
            }
        }
        transaction.commit().await?;
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        if !wanted {
            return Ok(Searched::fused(hits, k, None));
        }
        let bill = RerankBill { tenant_id: context.tenant_id(), payer, by: Recorder::of(context) };
        Ok(self.rerank(pool, &bill, query, hits, k).await?)
    }

    /// Reorders the best [`RERANK_CANDIDATES`] of `hits` (fused, best first) by the reranker's scores and
    /// keeps `k`. The call is made only when the payer's budgets have room for its estimated cost, which
    /// is reserved until it is recorded as usage (and spent against the budgets) or fails. When there is
    /// no reranker, or it fails or times out, the fused order stands (logged, and said in
    /// [`Searched::fallback`]): a search is never failed for its reranker.
    pub async fn rerank(
        &self,
        pool: &sqlx::PgPool,
        bill: &RerankBill<'_>,
        query: &str,
        hits: Vec<SearchHit>,
        k: usize,
    ) -> Result<Searched, sqlx::Error> {
        let Some(reranker) = &self.reranker else {
            return Ok(Searched::fused(hits, k, Some(RerankFallback::Unavailable)));
        };
        if hits.is_empty() {
            // Nothing to reorder: no call, nothing to pay.
            return Ok(Searched { hits, rerank_scores: Vec::new(), reranked: true, fallback: None });
        }
        // Charged like a request outside any run, without touching a turn's reservation.
        let budget_payer = Payer::outside_run(bill.payer.api_key_id, bill.payer.end_user);
        let mut transaction = db::begin_tenant(pool, bill.tenant_id).await?;
        let budgets = RunBudgets::of(&mut transaction, budget_payer).await?;
        transaction.commit().await?;
        if let Err(exhausted) = budgets.check_open() {
            tracing::warn!(reason = %exhausted, "a budget is used up: the fused order is kept without reranking");
            return Ok(Searched::fused(hits, k, Some(RerankFallback::BudgetExhausted)));
        }
        let mut hits = hits;
        let rest = hits.split_off(RERANK_CANDIDATES.min(hits.len()));
        let texts: Vec<String> =
            hits.iter().map(|hit| vectors::embedding_text(&hit.heading_path, &hit.content)).collect();
        let estimate = reranker.estimated_cost(query, &texts);
        let call = match budgets.reserve_call(pool, bill.tenant_id, estimate).await? {
            Ok(call) => call,
            Err(exhausted) => {
                tracing::warn!(reason = %exhausted, "a budget has no room for the rerank: the fused order is kept");
                hits.extend(rest);
                return Ok(Searched::fused(hits, k, Some(RerankFallback::BudgetExhausted)));
            }
        };
        let scores = match reranker.score(query, &texts).await {
            Ok(scores) => scores,
            Err(error) => {
                budgets.release_call(pool, bill.tenant_id, call).await;
                let model = reranker.model().id();
                let fallback = match &error {
                    RerankError::Timeout(_) => RerankFallback::Timeout,
                    RerankError::Provider(_) => RerankFallback::ProviderError,
                };
                tracing::warn!(%error, %model, "reranking failed: the fused order is kept");
                hits.extend(rest);
                return Ok(Searched::fused(hits, k, Some(fallback)));
            }
        };
        let model = reranker.model();
        let mut transaction = db::begin_tenant(pool, bill.tenant_id).await?;
        let used = (model.provider.as_str(), model.name.as_str());
        usage::record_rerank(&mut transaction, bill.tenant_id, bill.payer, used, scores.spend).await?;
        budgets.settle_call(&mut transaction, &bill.by, call, scores.spend.cost_usd).await?;
        transaction.commit().await?;
        let (mut hits, mut rerank_scores): (Vec<SearchHit>, Vec<Option<f64>>) =
            super::rerank::reorder(hits, &scores.scores).into_iter().unzip();
        rerank_scores.extend(rest.iter().map(|_| None));
        hits.extend(rest);
        hits.truncate(k);
        rerank_scores.truncate(k);
        Ok(Searched { hits, rerank_scores, reranked: true, fallback: None })
    }
}

/// Who pays for a rerank call: its usage record's payer, and who its budget thresholds are audited as.
#[derive(Debug)]
pub struct RerankBill<'a> {
    pub tenant_id: TenantId,
    pub payer: EmbeddingPayer,
    pub by: Recorder<'a>,
}

/// A search's hits, best first, with the reranker's score of each (when reranked).
#[derive(Debug, Clone)]
pub struct Searched {
    pub hits: Vec<SearchHit>,
    /// One per hit: its relevance score by the reranker, `None` when it was not reranked.
    pub rerank_scores: Vec<Option<f64>>,
    /// Whether the hits are in the reranker's order.
    pub reranked: bool,
    /// Why reranking was asked for and not done: the hits are in the fused order.
    pub fallback: Option<RerankFallback>,
}

impl Searched {
    /// The fused order, cut to `k`.
    fn fused(mut hits: Vec<SearchHit>, k: usize, fallback: Option<RerankFallback>) -> Self {
        hits.truncate(k);
        Self { rerank_scores: vec![None; hits.len()], hits, reranked: false, fallback }
    }
}
