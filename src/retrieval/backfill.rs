//! Which embedding model serves, and the backfill that completes a new one. At start the configured model
//! is registered (with its HNSW index); if it is not complete yet and an earlier model is, the earlier one
//! keeps answering questions while the backfill embeds every chunk with the new one in the background,
//! tenant by tenant under row-level security; once done, the new model serves. The same sweep also
//! embeds chunks whose embedding failed at ingestion.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};

use super::{Retriever, vectors};
use crate::db;
use crate::embeddings::{EmbedderFactory, EmbeddingError, EmbeddingModel, Purpose};
use crate::ids::TenantId;

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
    let documents = match factory.build(configured.clone()) {
        Ok(embedder) => embedder,
        Err(error) => {
            tracing::error!(%error, "no embedding model: search is full text only");
            return Retriever::full_text_only();
        }
    };
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

/// Runs a sweep now and then every `interval`, for as long as the runtime lives.
pub fn spawn(pool: PgPool, retriever: Retriever, interval: Duration) {
    tokio::spawn(async move {
        loop {
            match sweep(&pool, &retriever).await {
                Ok(0) => {}
                Ok(embedded) => tracing::info!(embedded, "backfill embedded chunks"),
                Err(error) => tracing::warn!(%error, "embedding backfill failed; it will try again"),
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// Embeds every chunk the document model has no vector for, in every tenant, then marks the model complete
/// and lets it answer questions. Returns how many chunks it embedded.
pub async fn sweep(pool: &PgPool, retriever: &Retriever) -> Result<usize, BackfillError> {
    let Some(embedder) = retriever.document_embedder() else {
        return Ok(0);
    };
    let model = embedder.model().clone();
    let tenants: Vec<TenantId> = sqlx::query_scalar("SELECT id FROM tenants ORDER BY id").fetch_all(pool).await?;
    let mut done = 0;
    for tenant in tenants {
        loop {
            let mut transaction = db::begin_tenant(pool, tenant).await?;
            let pending = vectors::unembedded(&mut transaction, &model, BATCH).await?;
            transaction.commit().await?;
            if pending.is_empty() {
                break;
            }
            let texts: Vec<String> =
                pending.iter().map(|chunk| vectors::embedding_text(&chunk.heading_path, &chunk.content)).collect();
            let vectors = embedder.embed(&texts, Purpose::Document).await?;
            let ids: Vec<uuid::Uuid> = pending.iter().map(|chunk| chunk.id).collect();
            let mut transaction = db::begin_tenant(pool, tenant).await?;
            vectors::store(&mut transaction, tenant, &model, &ids, vectors).await?;
            transaction.commit().await?;
            done += ids.len();
        }
    }
    // Every chunk that existed when the sweep began has a vector now; later ones got theirs at ingestion
    // (or the next sweep gives them one).
    let mut connection = pool.acquire().await?;
    vectors::mark_complete(&mut connection, &model).await?;
    if retriever.question_embedder().is_some_and(|serving| serving.model().id != model.id) {
        retriever.promote_document_model();
        tracing::info!(model = %model.id, "every chunk has a vector from the new embedding model; it serves now");
    }
    Ok(done)
}
