//! Retrieval: documents, their chunks, and search over them. The shared documentation corpus belongs to
//! the system tenant and is readable by every tenant; each tenant's own documents only by it.
//!
//! Search is hybrid: BM25 over PostgreSQL full text and cosine similarity over pgvector, fused by their
//! standardised scores, each ranking weighed by how sure it is (`fusion`); the `Retriever` holds the
//! embedders and runs it.

pub mod backfill;
pub mod chunking;
pub mod citations;
pub mod corpus;
pub mod formats;
pub mod fusion;
pub mod on_request;
pub mod relevance;
pub mod rerank;
mod retriever;
pub mod search;
pub mod store;
pub mod vectors;
pub mod writer;

pub use retriever::{FUSION_DEPTH, RerankBill, Retriever, Searched};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::background;
use crate::budgets::{CallReservation, Payer, RunBudgets};
use crate::collections::{self, CollectionError};
use crate::db;
use crate::embeddings::{Embedded, Embedder, EmbeddingModel, Purpose};
use crate::ids::TenantId;
use crate::providers::Passage;

/// The largest document accepted, in bytes of UTF-8.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error("{0}")]
    Invalid(String),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("no such document")]
    NotFound,
    #[error("vector search is unavailable: the embedding model could not be reached (see the server log)")]
    EmbeddingsUnavailable,
    /// An embedding model the request names that this deployment cannot use.
    #[error("{0}")]
    UnknownModel(String),
    /// A search asked to be reranked on a deployment with no reranker.
    #[error(
        "this deployment has no reranker (the operator sets SWITCHBOARD_RERANK_MODEL): search without `rerank: true`"
    )]
    RerankerUnavailable,
    #[error(transparent)]
    BudgetExhausted(crate::budgets::BudgetExhausted),
    /// The embedding model failed to answer a request.
    #[error(transparent)]
    Embedding(crate::embeddings::EmbeddingError),
    /// The document names a collection that does not exist.
    #[error(transparent)]
    Collection(#[from] CollectionError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Document {
    pub id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    /// The collections it belongs to, by id and by name.
    pub collection_ids: Vec<uuid::Uuid>,
    pub collections: Vec<String>,
    pub content_hash: String,
    pub byte_size: i32,
    pub chunk_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The file the text came from: its media type and size (`text/markdown` of `byte_size` for text
    /// sent as such).
    pub original_media_type: String,
    pub original_byte_size: i64,
}

/// A validated document to ingest.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub source_path: String,
    pub title: String,
    pub content: String,
    pub content_hash: String,
    /// The collections it joins, by name (checked); none given: `default`.
    pub collections: Vec<String>,
    /// The file the content was converted from (`formats`), when it was not sent as text.
    pub original: Option<Original>,
}

/// An uploaded file's media type and size, recorded with the document made from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub media_type: String,
    pub byte_size: i64,
}

impl NewDocument {
    pub fn parse(source_path: &str, title: Option<&str>, content: String) -> Result<Self, RetrievalError> {
        let source_path = parse_source_path(source_path)?;
        if content.len() > MAX_DOCUMENT_BYTES {
            return Err(RetrievalError::TooLarge);
        }
        if content.trim().is_empty() {
            return Err(RetrievalError::Invalid("content must not be empty".to_owned()));
        }
        if looks_binary(&content) {
            return Err(RetrievalError::Invalid("content looks binary; send text or markdown".to_owned()));
        }
        let title = match title.map(str::trim) {
            Some(title) if title.is_empty() || title.chars().count() > 300 => {
                return Err(RetrievalError::Invalid("title must be 1 to 300 characters".to_owned()));
            }
            Some(title) => title.to_owned(),
            None => chunking::title_of(&content, &source_path),
        };
        let content_hash = hex::encode(Sha256::digest(format!("{title}\u{0}{content}").as_bytes()));
        Ok(Self {
            source_path,
            title,
            content,
            content_hash,
            collections: vec![collections::DEFAULT.to_owned()],
            original: None,
        })
    }

    /// The document as converted from `original`. The hash covers the original's type and size too (unless
    /// it was the same Markdown), so a file uploaded again in another format, or changed in what its text
    /// does not show, is recorded as it now is.
    #[must_use]
    pub fn with_original(mut self, original: Original) -> Self {
        let same_as_text = original.media_type == formats::Format::Markdown.media_type()
            && usize::try_from(original.byte_size).is_ok_and(|size| size == self.content.len());
        if !same_as_text {
            let covered = format!("{}\u{0}{}\u{0}{}", self.content_hash, original.media_type, original.byte_size);
            self.content_hash = hex::encode(Sha256::digest(covered.as_bytes()));
        }
        self.original = Some(original);
        self
    }

    /// The document, in the collections `names` rather than `default`.
    pub fn in_collections(mut self, names: &[String]) -> Result<Self, RetrievalError> {
        self.collections =
            collections::parse_names(names).map_err(|error| RetrievalError::Invalid(error.to_string()))?;
        Ok(self)
    }
}

/// A relative path of plain segments: no `..`, no leading `/`, no backslashes or control characters.
fn parse_source_path(path: &str) -> Result<String, RetrievalError> {
    let invalid = |reason: &str| RetrievalError::Invalid(format!("source_path {reason}"));
    if path.is_empty() || path.len() > 500 {
        return Err(invalid("must be 1 to 500 characters"));
    }
    if path.starts_with('/') || path.contains('\\') || path.chars().any(char::is_control) {
        return Err(invalid("must be a relative path with forward slashes"));
    }
    if path.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return Err(invalid("must not contain empty, `.` or `..` segments"));
    }
    Ok(path.to_owned())
}

/// NUL bytes or a high share of control characters mean this is not text.
fn looks_binary(content: &str) -> bool {
    let controls = content.chars().filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')).count();
    content.contains('\0') || controls * 100 > content.chars().count()
}

impl From<search::SearchHit> for Passage {
    fn from(hit: search::SearchHit) -> Self {
        Self { title: hit.title, source_path: hit.source_path, heading_path: hit.heading_path, content: hit.content }
    }
}

/// A retrieved passage as a citation: numbered as in the prompt, with where it came from and, once the
/// answer cites it, where (`citations::attribute`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Citation {
    pub number: u32,
    pub chunk_id: uuid::Uuid,
    pub document_id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub score: f64,
    /// What the relevance floor measured (cosine similarity to the question, or the share of its BM25
    /// ceiling); absent on answers recorded before the floor.
    #[serde(default)]
    pub relevance: Option<f64>,
    /// The start of the passage, for display.
    pub excerpt: String,
    /// The parts of the answer that cite this passage, in bytes of its UTF-8 text (`citations`); absent
    /// before the answer is written and on passages it did not cite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<citations::Span>,
}

/// The passages a turn grounds its answer in: the best hits that pass the relevance floor (judged before,
/// `relevance::Floors::judge`) and fit `token_budget`, at most `limit`.
pub fn select_passages(hits: Vec<search::SearchHit>, token_budget: usize, limit: usize) -> Vec<search::SearchHit> {
    let mut used = 0;
    let mut kept = Vec::new();
    for hit in hits.into_iter().filter(relevance::passes) {
        if kept.len() == limit {
            break;
        }
        let tokens = usize::try_from(hit.token_count).unwrap_or(usize::MAX);
        if used + tokens > token_budget {
            continue;
        }
        used += tokens;
        kept.push(hit);
    }
    kept
}

impl Citation {
    pub fn from_hit(number: u32, hit: &search::SearchHit) -> Self {
        let excerpt: String = hit.content.chars().take(300).collect();
        Self {
            number,
            chunk_id: hit.chunk_id,
            document_id: hit.document_id,
            source_path: hit.source_path.clone(),
            title: hit.title.clone(),
            heading_path: hit.heading_path.clone(),
            score: hit.score,
            relevance: hit.relevance.map(|relevance| relevance.value),
            excerpt,
            spans: Vec::new(),
        }
    }
}

/// What ingesting a document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    Created,
    Updated,
    Unchanged,
}

/// Adds or replaces one of `tenant`'s documents with its chunks and their vectors, atomically, audited
/// when `audit_as` is given and something changed. An unchanged document (same content hash) costs one
/// lookup. Chunking and embedding happen outside any transaction and off the async workers; when the
/// embedder fails the document is stored without vectors (full text finds it at once) and the backfill
/// embeds it later: a failed embedding call never loses a document.
pub async fn ingest(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    document: &NewDocument,
    embedder: Option<&Embedder>,
    audit_as: Option<&TenantContext>,
) -> Result<(Document, IngestOutcome), RetrievalError> {
    match prepare(pool, tenant_id, document, embedder, audit_as).await? {
        Preparation::Done(saved) => Ok(saved),
        Preparation::Write(prepared) => {
            writer::write(pool, tenant_id, vec![*prepared]).await.pop().expect("one result per document")
        }
    }
}

/// What [`prepare`] left to do.
pub enum Preparation {
    /// Nothing more: the same content was stored already (its collections moved, if they changed).
    Done((Document, IngestOutcome)),
    /// The document, chunked and embedded, to write ([`writer`]).
    Write(Box<writer::Prepared>),
}

/// Everything [`ingest`] does before writing: the unchanged case answered, the collections and the saver's
/// budgets read, the content chunked and embedded.
pub async fn prepare(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    document: &NewDocument,
    embedder: Option<&Embedder>,
    audit_as: Option<&TenantContext>,
) -> Result<Preparation, RetrievalError> {
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let collection_ids = collections::resolve(&mut transaction, &document.collections).await?;
    let existing = store::find_by_path(&mut transaction, &document.source_path).await?;
    if let Some(existing) = existing
        && existing.content_hash == document.content_hash
    {
        // The same content: at most its collections change (its chunks and vectors follow, in SQL).
        let outcome = if same_collections(&existing.collection_ids, &collection_ids) {
            IngestOutcome::Unchanged
        } else {
            IngestOutcome::Updated
        };
        let stored = match outcome {
            IngestOutcome::Updated => {
                let moved = store::set_collections(&mut transaction, existing.id, &collection_ids).await?;
                if let Some(context) = audit_as {
                    audit_saved(&mut transaction, context, &moved, outcome).await?;
                }
                moved
            }
            _ => existing,
        };
        transaction.commit().await?;
        return Ok(Preparation::Done((stored, outcome)));
    }
    let budgets = embedding_budgets(&mut transaction, embedder, audit_as).await?;
    transaction.commit().await?;
    // CPU work linear in the document, up to seconds for a megabyte: on the blocking pool, within the
    // process-wide bound, so that one tenant's large documents hold no async worker.
    let content = document.content.clone();
    let chunks = match background::cpu_bound(move || chunking::chunk(&content)).await {
        Ok(chunks) => chunks,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("chunking never ran: {error}"),
    };
    let (vectors, budgets) = match embedder {
        Some(embedder) => embed_chunks(pool, tenant_id, embedder, &chunks, budgets).await?,
        None => (None, None),
    };
    Ok(Preparation::Write(Box::new(writer::Prepared {
        document: document.clone(),
        collection_ids,
        chunks,
        vectors,
        budgets,
        saver: audit_as.cloned(),
    })))
}

/// The budgets of whoever saves a document, when embedding it has a price: one already used up refuses
/// the document before anything is stored or any provider is asked, as `/v1/embeddings` refuses; the
/// embedding's cost is then reserved against them ([`embed_chunks`]). The shared corpus and the backfill
/// are the platform's.
async fn embedding_budgets(
    connection: &mut sqlx::PgConnection,
    embedder: Option<&Embedder>,
    saver: Option<&TenantContext>,
) -> Result<Option<RunBudgets>, RetrievalError> {
    let priced = embedder.and_then(Embedder::price).is_some_and(|price| !price.is_zero());
    let Some(context) = saver.filter(|_| priced) else { return Ok(None) };
    let budgets = RunBudgets::of(connection, Payer::outside_run(context.actor().api_key_id(), None)).await?;
    budgets.check_open().map_err(RetrievalError::BudgetExhausted)?;
    Ok(Some(budgets))
}

fn same_collections(stored: &[uuid::Uuid], wanted: &[crate::ids::CollectionId]) -> bool {
    let mut stored = stored.to_vec();
    let mut wanted: Vec<uuid::Uuid> = wanted.iter().map(|id| id.0).collect();
    stored.sort_unstable();
    wanted.sort_unstable();
    stored == wanted
}

async fn audit_saved(
    connection: &mut sqlx::PgConnection,
    context: &TenantContext,
    stored: &Document,
    outcome: IngestOutcome,
) -> Result<(), sqlx::Error> {
    let entry = AuditEntry::new("document.saved", "document", stored.id.to_string()).with_details(serde_json::json!({
        "source_path": stored.source_path,
        "outcome": outcome,
        "chunks": stored.chunk_count,
        "collection_ids": stored.collection_ids,
    }));
    audit::record(connection, context, &entry).await
}

/// The chunks' vectors (with their tokens and cost), or `None` (logged) when the embedder fails. Their
/// cost is reserved first against the saver's budgets when embedding is priced: a budget without room for
/// it refuses the document before any provider is asked or anything stored. An embedding that fails gives
/// the reservation back and leaves the document to the backfill.
async fn embed_chunks(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    embedder: &Embedder,
    chunks: &[chunking::Chunk],
    budgets: Option<RunBudgets>,
) -> Result<(Option<(EmbeddingModel, Embedded)>, Option<(RunBudgets, CallReservation)>), RetrievalError> {
    let texts: Vec<String> =
        chunks.iter().map(|chunk| vectors::embedding_text(&chunk.heading_path, &chunk.content)).collect();
    let reserved = match budgets {
        Some(budgets) => {
            let estimate = embedder.estimated_cost(texts.iter().map(String::as_str));
            let call = budgets.reserve_call(pool, tenant_id, estimate).await?;
            Some((budgets, call.map_err(RetrievalError::BudgetExhausted)?))
        }
        None => None,
    };
    match embedder.embed_counted(&texts, Purpose::Document).await {
        Ok(vectors) => Ok((Some((embedder.model().clone(), vectors)), reserved)),
        Err(error) => {
            tracing::warn!(%error, model = %embedder.model().id, "embedding failed; the backfill will retry");
            if let Some((budgets, call)) = reserved {
                budgets.release_call(pool, tenant_id, call).await;
            }
            Ok((None, None))
        }
    }
}

/// Adds or replaces one of the tenant's documents, audited unless nothing changed.
pub async fn add_document(
    pool: &sqlx::PgPool,
    retriever: &Retriever,
    background: &background::Background,
    context: &TenantContext,
    document: &NewDocument,
) -> Result<(Document, IngestOutcome), RetrievalError> {
    let embedder = retriever.document_embedder();
    let tenant_id = context.tenant_id();
    match prepare(pool, tenant_id, document, embedder.as_ref(), Some(context)).await? {
        Preparation::Done(saved) => Ok(saved),
        Preparation::Write(prepared) => retriever.document_writer().save(background, pool, tenant_id, *prepared).await,
    }
}

/// The tenant's own documents (not the shared corpus).
pub async fn list_documents(pool: &sqlx::PgPool, context: &TenantContext) -> Result<Vec<Document>, RetrievalError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let documents = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(documents)
}

/// Removes one of the tenant's documents and its chunks, audited.
pub async fn delete_document(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    id: uuid::Uuid,
) -> Result<(), RetrievalError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::delete(&mut transaction, id).await? {
        return Err(RetrievalError::NotFound);
    }
    audit::record(&mut transaction, context, &AuditEntry::new("document.deleted", "document", id.to_string())).await?;
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_documents_are_refused() {
        let text = || "Some text.".to_owned();
        assert!(NewDocument::parse("guides/keys.md", None, text()).is_ok());
        for path in ["", "/etc/passwd", "../secret.md", "a/../../b", "a//b", "a\\b", "./a", "a\u{7}b"] {
            assert!(NewDocument::parse(path, None, text()).is_err(), "{path:?}");
        }
        assert!(NewDocument::parse("a.md", None, "  \n ".to_owned()).is_err());
        assert!(NewDocument::parse("a.md", None, "bin\0ary".to_owned()).is_err());
        assert!(NewDocument::parse("a.md", None, "\u{1}\u{2}\u{3}abc".to_owned()).is_err());
        assert!(matches!(
            NewDocument::parse("a.md", None, "x".repeat(MAX_DOCUMENT_BYTES + 1)),
            Err(RetrievalError::TooLarge)
        ));
        assert!(NewDocument::parse("a.md", Some(" "), text()).is_err());
    }

    #[test]
    fn the_hash_covers_title_and_content() {
        let one = NewDocument::parse("a.md", Some("A"), "x".to_owned()).unwrap();
        let two = NewDocument::parse("b.md", Some("A"), "x".to_owned()).unwrap();
        let three = NewDocument::parse("a.md", Some("B"), "x".to_owned()).unwrap();
        assert_eq!(one.content_hash, two.content_hash);
        assert_ne!(one.content_hash, three.content_hash);
    }
}
