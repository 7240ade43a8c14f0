//! Ingestion: documents per second and chunks per second through `POST /api/v1/documents` (chunk, count
//! tokens, embed with the mock, store with full-text and vector indexes), which also builds the corpus the
//! retrieval and turn benchmarks search; one megabyte-sized document without whitespace, the worst shape
//! for the chunker, with `/healthz` asked meanwhile; and the local embedding model's speed on the same text
//! and on questions, one at a time and many at once.

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
    /// Words per chunk on average (a Vaswani abstract has about 34).
    pub words_per_chunk: f64,
    pub elapsed_s: f64,
    pub documents_per_s: f64,
    pub chunks_per_s: f64,
    /// One question at a time, as a turn embeds it before searching.
    pub question_ms: Option<Percentiles>,
    /// [`CONCURRENT_QUESTIONS`] questions asked at once, again and again: each one's latency, and
    /// questions answered per second (they share passes of the model).
    pub concurrent_questions: usize,
    pub concurrent_question_ms: Option<Percentiles>,
    pub concurrent_questions_per_s: f64,
}

/// Questions in flight at once in the concurrent measurement.
const CONCURRENT_QUESTIONS: usize = 16;
/// Questions asked one at a time, and rounds of concurrent ones.
const QUESTIONS: usize = 100;
const ROUNDS: usize = 10;

/// The local all-MiniLM-L6-v2 embedding `documents` generated documents' chunks, in the backfill's
/// batches of 32, in this process (the model loads first and is not timed); then questions, one at a
/// time and [`CONCURRENT_QUESTIONS`] at once.
pub async fn local_embedding(data_dir: &Path, seed: u64, documents: usize) -> anyhow::Result<LocalEmbedding> {
    let embedder = Arc::new(LocalEmbedder::new(data_dir));
    embedder.embed(&["warm up".to_owned()]).await?;
    let texts: Vec<String> = (0..documents)
        .flat_map(|index| chunking::chunk(&corpus::document(seed, index).1))
        .map(|chunk| chunk.content)
        .collect();
    let words: usize = texts.iter().map(|text| text.split_whitespace().count()).sum();
    let started = Instant::now();
    for batch in texts.chunks(32) {
        embedder.embed(batch).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut question_times = Vec::with_capacity(QUESTIONS);
    for index in 0..QUESTIONS {
        let question = [corpus::question(seed, index)];
        let asked = Instant::now();
        embedder.embed(&question).await?;
        question_times.push(asked.elapsed());
    }
    let mut concurrent_times = Vec::with_capacity(ROUNDS * CONCURRENT_QUESTIONS);
    let concurrent_started = Instant::now();
    for round in 0..ROUNDS {
        let asked: Vec<_> = (0..CONCURRENT_QUESTIONS)
            .map(|index| {
                let embedder = Arc::clone(&embedder);
                let question = [corpus::question(seed, QUESTIONS + round * CONCURRENT_QUESTIONS + index)];
                async move {
                    let asked = Instant::now();
                    embedder.embed(&question).await.map(|_| asked.elapsed())
                }
            })
            .collect();
        for time in futures::future::join_all(asked).await {
            concurrent_times.push(time?);
        }
    }
    let concurrent_elapsed = concurrent_started.elapsed().as_secs_f64();
    Ok(LocalEmbedding {
        documents,
        chunks: texts.len(),
        words_per_chunk: words as f64 / texts.len().max(1) as f64,
        elapsed_s: elapsed,
        documents_per_s: documents as f64 / elapsed,
        chunks_per_s: texts.len() as f64 / elapsed,
        question_ms: Percentiles::of(&mut question_times),
        concurrent_questions: CONCURRENT_QUESTIONS,
        concurrent_question_ms: Percentiles::of(&mut concurrent_times),
        concurrent_questions_per_s: concurrent_times.len() as f64 / concurrent_elapsed,
    })
}
