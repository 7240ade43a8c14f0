//! Which embedding model serves, and the backfill that completes a new one. At start the configured model
//! is registered (with its HNSW index); if it is not complete yet and an earlier model is, the earlier one
//! keeps answering questions while the backfill embeds every chunk with the new one in the background,
//! tenant by tenant under row-level security; once done, the new model serves. The same sweep also
//! embeds the documents whose embedding failed at ingestion, which the writer lists
//! (`documents_owed_vectors`), so that a sweep with nothing to do costs two small statements, not a look
//! at every chunk.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};

use super::{Retriever, vectors};
use crate::background::Background;
use crate::db;
use crate::embeddings::{Embedder, EmbedderFactory, EmbeddingError, EmbeddingModel, EmbeddingSpend, Purpose};
use crate::ids::TenantId;
use crate::usage::{self, EmbeddingPayer};

/// Chunks embedded per round trip of the backfill: enough for the local model to group them by length.
const BATCH: i64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Registers the configured model and returns the retriever that serves with it, or with the newest
/// complete earlier model while the configured one fills in. With no usable embedder, full text only.
pub async fn prepare(
    owner: &PgConnectOptions,
    pool: &PgPool,
    factory: &EmbedderFactory,
    configured: EmbeddingModel,
) -> Retriever {
    choose_embedders(owner, pool, factory, configured).await.with_factory(factory.clone())
}

async fn choose_embedders(
    owner: &PgConnectOptions,
    pool: &PgPool,
    factory: &EmbedderFactory,
    configured: EmbeddingModel,
) -> Retriever {
    let documents = match factory.build(configured.clone()) {
        Ok(embedder) => embedder,
        Err(error) => {
            tracing::error!(%error, "no embedding model: search is full text only");
            return Retriever::full_text_only();
        }
    };
    // One text now: installs and loads the local model before the first question, and shows a model
    // that answers other dimensions than configured before any vector is stored.
    match documents.embed_query("Switchboard checks its embedding model.").await {
        Ok(_) => {}
        Err(error @ (EmbeddingError::Mismatch { .. } | EmbeddingError::Local(_))) => {
            tracing::error!(%error, model = %configured.id, "the embedding model is unusable: search is full text only");
            return Retriever::full_text_only();
        }
        Err(error) => {
            tracing::warn!(%error, model = %configured.id, "the embedding model did not answer at start; trying on");
        }
    }
    let registered = async {
        let mut connection = PgConnection::connect_with(owner).await?;
        vectors::register_model(&mut connection, &configured).await?;
        connection.close().await?;
        let mut connection = pool.acquire().await?;
        vectors::stored_models(&mut connection).await
    };
    let stored = match registered.await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%error, model = %configured.id, "cannot register the embedding model: full text only");
            return Retriever::full_text_only();
        }
    };
    if stored.iter().any(|model| model.id == configured.id && model.complete) {
        return Retriever::new(documents.clone(), documents);
    }
    let earlier = stored
        .iter()
        .filter(|model| model.complete && model.id != configured.id)
        .filter_map(|model| EmbeddingModel::from_stored(&model.id, model.dimensions))
        .find_map(|model| factory.build(model).ok());
    match earlier {
        Some(earlier) => {
            tracing::info!(
                new = %configured.id,
                serving = %earlier.model().id,
                "embedding every chunk with the new model in the background; the earlier one serves meanwhile"
            );
            Retriever::new(documents, earlier)
        }
        None => Retriever::new(documents.clone(), documents),
    }
}

/// Runs a sweep now and then every `interval`, until shutdown (which also stops a sweep midway: each
/// batch commits on its own, and the next start goes on from there).
pub fn spawn(background: &Background, pool: PgPool, retriever: Retriever, interval: Duration) {
    let stopping = background.stopping().clone();
    background.spawn(async move {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                swept = sweep(&pool, &retriever) => match swept {
                    Ok(0) => {}
                    Ok(embedded) => tracing::info!(embedded, "backfill embedded chunks"),
                    Err(error) => tracing::warn!(%error, "embedding backfill failed; it will try again"),
                },
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// Embeds every chunk the document model has no vector for, then marks the model complete and lets it
/// answer questions. A complete model lacks vectors only for the documents written without them (their
/// embedding failed), which the writer lists: only those are read. A model that is not complete (new, or
/// switched back to) is checked chunk by chunk in every tenant, and complete only after a pass without
/// failures. A tenant that fails is logged and the others go on. Returns how many chunks it embedded.
pub async fn sweep(pool: &PgPool, retriever: &Retriever) -> Result<usize, BackfillError> {
    let Some(embedder) = retriever.document_embedder() else {
        return Ok(0);
    };
    let model = embedder.model().clone();
    let stored = vectors::stored_models(&mut *pool.acquire().await?).await?;
    let complete = stored.iter().any(|stored| stored.id == model.id && stored.complete);
    let owing = vectors::tenants_owed(pool).await?;
    let (tenants, owed) = if complete {
        (owing.clone(), vectors::Owed::WrittenWithout)
    } else {
        (crate::tenants::store::all_ids(pool).await?, vectors::Owed::EveryChunk)
    };
    let mut done = 0;
    let mut failure = None;
    for tenant in tenants {
        let pass = embed_tenant(pool, &embedder, tenant, owed).await;
        done += pass.embedded;
        if let Some(error) = pass.failure {
            tracing::warn!(%error, %tenant, skipped = pass.skipped, "backfill: some chunks could not be embedded");
            failure = Some(error);
        } else if owing.contains(&tenant) {
            settle_owed(pool, &model, tenant).await?;
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if !complete {
        // Every chunk that existed when the sweep began has a vector now; later ones got theirs at
        // ingestion, or their documents are owed theirs (the next sweep).
        vectors::mark_complete(&mut *pool.acquire().await?, &model).await?;
    }
    // Another process's sweep may have completed it.
    if retriever.question_embedder().is_some_and(|serving| serving.model().id != model.id) {
        retriever.promote_document_model();
        tracing::info!(model = %model.id, "every chunk has a vector from the new embedding model; it serves now");
    }
    Ok(done)
}

async fn settle_owed(pool: &PgPool, model: &EmbeddingModel, tenant: TenantId) -> Result<(), sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, tenant).await?;
    vectors::settle_owed(&mut transaction, model).await?;
    transaction.commit().await
}

#[derive(Debug, Default)]
struct TenantPass {
    embedded: usize,
    skipped: usize,
    failure: Option<BackfillError>,
}

/// One pass over a tenant's chunks (those `owed` names) in id order. A batch the provider refuses is
/// retried text by text, so one bad chunk costs only itself; a chunk deleted meanwhile is simply not
/// stored.
async fn embed_tenant(pool: &PgPool, embedder: &Embedder, tenant: TenantId, owed: vectors::Owed) -> TenantPass {
    let mut pass = TenantPass::default();
    let mut after = uuid::Uuid::nil();
    loop {
        let pending = match pending_after(pool, embedder.model(), tenant, owed, after).await {
            Ok(pending) if pending.is_empty() => return pass,
            Ok(pending) => pending,
            Err(error) => {
                pass.failure = Some(error.into());
                return pass;
            }
        };
        after = pending.last().expect("not empty").id;
        let texts: Vec<String> =
            pending.iter().map(|chunk| vectors::embedding_text(&chunk.heading_path, &chunk.content)).collect();
        let ids: Vec<uuid::Uuid> = pending.iter().map(|chunk| chunk.id).collect();
        let fresh = match embedder.embed_counted(&texts, Purpose::Document).await {
            Ok(answer) => NewVectors { ids, vectors: answer.vectors, spend: answer.spend },
            Err(error) => {
                let kept = one_by_one(embedder, &ids, &texts).await;
                pass.skipped += ids.len() - kept.ids.len();
                pass.failure = Some(error.into());
                kept
            }
        };
        let count = fresh.ids.len();
        if let Err(error) = store(pool, tenant, embedder.model(), fresh).await {
            pass.failure = Some(error.into());
            return pass;
        }
        pass.embedded += count;
    }
}

/// Chunks' new vectors, and what making them cost.
struct NewVectors {
    ids: Vec<uuid::Uuid>,
    vectors: Vec<Vec<f32>>,
    spend: EmbeddingSpend,
}

async fn pending_after(
    pool: &PgPool,
    model: &EmbeddingModel,
    tenant: TenantId,
    owed: vectors::Owed,
    after: uuid::Uuid,
) -> Result<Vec<vectors::Unembedded>, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, tenant).await?;
    let pending = vectors::unembedded(&mut transaction, model, owed, after, BATCH).await?;
    transaction.commit().await?;
    Ok(pending)
}

/// Stores the vectors with the usage record of making them: the tenant's, paid by nobody (the platform's
/// key, the operator's choice of model), so it is spent against no budget.
async fn store(pool: &PgPool, tenant: TenantId, model: &EmbeddingModel, fresh: NewVectors) -> Result<(), sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, tenant).await?;
    let mut vectors_stored = transaction.begin().await?;
    match vectors::store(&mut vectors_stored, tenant, model, &fresh.ids, fresh.vectors).await {
        // A chunk deleted after the join saw it: its document changed; the next pass sees the new chunks.
        // The provider was paid all the same.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23503") => {
            vectors_stored.rollback().await?;
        }
        result => {
            result?;
            vectors_stored.commit().await?;
        }
    }
    if fresh.spend.input_tokens > 0 {
        usage::record_embedding(&mut transaction, tenant, EmbeddingPayer::default(), model, fresh.spend).await?;
    }
    transaction.commit().await
}

/// The texts that embed alone, with their ids and what they cost.
async fn one_by_one(embedder: &Embedder, ids: &[uuid::Uuid], texts: &[String]) -> NewVectors {
    let mut kept = NewVectors { ids: Vec::new(), vectors: Vec::new(), spend: EmbeddingSpend::NOTHING };
    for (id, text) in ids.iter().zip(texts) {
        if let Ok(mut answer) = embedder.embed_counted(std::slice::from_ref(text), Purpose::Document).await {
            kept.ids.push(*id);
            kept.vectors.push(answer.vectors.pop().expect("one vector for one text"));
            kept.spend = kept.spend.plus(answer.spend);
        }
    }
    kept
}
