//! Ingestion: documents per second and chunks per second through `POST /api/v1/documents` (chunk, count
//! tokens, embed with the mock, store with full-text and vector indexes), which also builds the corpus the
//! retrieval and turn benchmarks search; one megabyte-sized document without whitespace, the worst shape
//! for the chunker, with `/healthz` asked meanwhile; and the local embedding model's speed on the same text.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::json;
use switchboard::embeddings::local::LocalEmbedder;
use switchboard::retrieval::chunking;

use crate::corpus;
use crate::env::{Service, Tenant};
use crate::load::Percentiles;

#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    pub tenant: String,
    pub documents: usize,
    pub chunks: i64,
    pub elapsed_s: f64,
    pub documents_per_s: f64,
    pub chunks_per_s: f64,
    pub concurrency: usize,
}

/// Adds `documents` generated documents to the tenant, `concurrency` at a time.
pub async fn ingest(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    slug: &str,
    seed: u64,
    documents: usize,
    concurrency: usize,
    owner: &sqlx::PgPool,
) -> anyhow::Result<Ingested> {
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<()>> = futures::stream::iter(0..documents)
        .map(|index| async move {
            let (source_path, content) = corpus::document(seed, index);
            let response = client
                .post(format!("{}/api/v1/documents", service.base))
                .bearer_auth(&tenant.key)
                .json(&json!({ "source_path": source_path, "content": content }))
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "document {index}: HTTP {}", response.status());
            Ok(())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    outcomes.into_iter().collect::<anyhow::Result<()>>()?;
    let elapsed = started.elapsed().as_secs_f64();
    let chunks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM doc_chunks WHERE tenant_id = (SELECT id FROM tenants WHERE slug = $1)",
    )
    .bind(slug)
    .fetch_one(owner)
    .await?;
    Ok(Ingested {
        tenant: slug.to_owned(),
        documents,
        chunks,
        elapsed_s: elapsed,
        documents_per_s: documents as f64 / elapsed,
        chunks_per_s: chunks as f64 / elapsed,
        concurrency,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct LargeDocument {
    pub characters: usize,
    pub chunks: i64,
    pub elapsed_s: f64,
    /// `GET /healthz`, one after another while the document was ingested: how many were answered, how fast.
    pub healthz_answered: usize,
    pub healthz_ms: Option<Percentiles>,
}

/// Adds one document of `characters` characters without whitespace (underscores join its words: one word
/// to the chunker, which once took minutes of an async worker over a megabyte of it) to the tenant, asking
/// `/healthz` one request after another until it is stored: the time it takes, and whether the server
/// answers everyone else meanwhile.
pub async fn large_document(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    characters: usize,
) -> anyhow::Result<LargeDocument> {
    let content: String = "quasar_calibration_".chars().cycle().take(characters).collect();
    let started = Instant::now();
    let ingestion = client
        .post(format!("{}/api/v1/documents", service.base))
        .bearer_auth(&tenant.key)
        .json(&json!({ "source_path": "one-word.md", "content": content }))
        .send();
    tokio::pin!(ingestion);
    let mut healthz: Vec<Duration> = Vec::new();
    let response = loop {
        let asked = Instant::now();
        tokio::select! {
            response = &mut ingestion => break response?,
            answer = client.get(format!("{}/healthz", service.base)).send() => {
                answer?.error_for_status()?;
                healthz.push(asked.elapsed());
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(response.status().is_success(), "the large document: HTTP {}", response.status());
    let added: serde_json::Value = response.json().await?;
    Ok(LargeDocument {
        characters,
        chunks: added["document"]["chunk_count"].as_i64().unwrap_or_default(),
        elapsed_s: elapsed,
        healthz_answered: healthz.len(),
        healthz_ms: Percentiles::of(&mut healthz),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct LocalEmbedding {
    pub documents: usize,
    pub chunks: usize,
    pub elapsed_s: f64,
    pub documents_per_s: f64,
    pub chunks_per_s: f64,
}

/// The local all-MiniLM-L6-v2 embedding `documents` generated documents' chunks, in the backfill's
/// batches of 32, in this process (the model loads first and is not timed).
pub async fn local_embedding(data_dir: &Path, seed: u64, documents: usize) -> anyhow::Result<LocalEmbedding> {
    let embedder = Arc::new(LocalEmbedder::new(data_dir));
    embedder.embed(&["warm up".to_owned()]).await?;
    let texts: Vec<String> = (0..documents)
        .flat_map(|index| chunking::chunk(&corpus::document(seed, index).1))
        .map(|chunk| chunk.content)
        .collect();
    let started = Instant::now();
    for batch in texts.chunks(32) {
        embedder.embed(batch).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(LocalEmbedding {
        documents,
        chunks: texts.len(),
        elapsed_s: elapsed,
        documents_per_s: documents as f64 / elapsed,
        chunks_per_s: texts.len() as f64 / elapsed,
    })
}
