//! Retrieval quality on a standard test collection in TREC format (the Vaswani collection in
//! `../shared/data/vaswani/`): ingests every document as one tenant's documents, runs every query
//! through Switchboard's search (full text, vector and hybrid, as `POST /api/v1/search` runs them), and
//! reports nDCG@10, Recall@100 and MRR@10 against the relevance judgments, search latency, and the
//! throughput of ingestion and of embedding with the local model. Then 200 long questions (the first 60
//! words of documents of at least 60 words, picked by a seeded generator, as tests/api/bm25_reference.rs
//! makes them), as users paste a paragraph: they have no judgments, so each mode's latency is reported
//! with how many of its top 10 are full text's (exact BM25, which that test checks against a reference).
//!
//! `cargo run --release --example retrieval_eval -- ../shared/data/vaswani`
//! (`EVAL_FULL_TEXT_ONLY=1`: no embedding, full-text search only, in a minute instead of many.) With
//! `SWITCHBOARD_RERANK_MODEL` and its provider's key set (as for the service), a `hybrid + rerank` row too:
//! the best 30 hybrid candidates of each query reranked by the hosted model (the collection's text is sent
//! to the provider, and each query costs a rerank call).
#![expect(clippy::cast_precision_loss, reason = "metrics over counts far below 2^52")]

#[path = "common/trec.rs"]
mod trec;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng as _;
use secrecy::SecretString;
use switchboard::auth::context::CollectionScope;
use switchboard::db::{self, embedded};
use switchboard::embeddings::{EmbedderFactory, EmbeddingModel};
use switchboard::ids::TenantId;
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::search::SearchMode;
use switchboard::retrieval::{self, NewDocument, RerankBill, Retriever, backfill, search};
use switchboard::tenants::{self, NewTenant};
use trec::{qrels, trec_records};

/// nDCG@10, Recall@100 and reciprocal rank@10 of one ranking with binary relevance.
fn metrics(ranking: &[String], relevant: &HashSet<String>) -> (f64, f64, f64) {
    let gain = |rank: usize| 1.0 / (rank as f64 + 2.0).log2();
    let dcg: f64 =
        ranking.iter().take(10).enumerate().filter(|(_, id)| relevant.contains(*id)).map(|(rank, _)| gain(rank)).sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(gain).sum();
    let found = ranking.iter().take(100).filter(|id| relevant.contains(*id)).count();
    let reciprocal =
        ranking.iter().take(10).position(|id| relevant.contains(id)).map_or(0.0, |rank| 1.0 / (rank as f64 + 1.0));
    (if ideal > 0.0 { dcg / ideal } else { 0.0 }, found as f64 / relevant.len() as f64, reciprocal)
}

/// The 200 long questions: the first 60 words of documents of at least 60 words, picked with seed 19.
fn long_questions(documents: &[(String, String)]) -> Vec<String> {
    let long_enough: Vec<&(String, String)> =
        documents.iter().filter(|(_, text)| text.split_whitespace().count() >= 60).collect();
    let mut random = rand::rngs::StdRng::seed_from_u64(19);
    rand::seq::index::sample(&mut random, long_enough.len(), 200)
        .into_iter()
        .map(|at| long_enough[at].1.split_whitespace().take(60).collect::<Vec<_>>().join(" "))
        .collect()
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile(sorted: &[std::time::Duration], per_mille: usize) -> f64 {
    sorted[(sorted.len() * per_mille).div_ceil(1000).clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// One search as a request is served (the question embedded, then both rankings and fusion, then the
/// reranker when `rerank`), timed; the results' source paths, best first.
async fn search_timed(
    pool: &sqlx::PgPool,
    tenant: TenantId,
    retriever: &Retriever,
    text: &str,
    (mode, rerank): (SearchMode, bool),
) -> (Vec<String>, std::time::Duration) {
    let asked = Instant::now();
    let vector = if mode == SearchMode::FullText { None } else { retriever.embed_question(text).await };
    let mut transaction = db::begin_tenant(pool, tenant).await.unwrap();
    let hits =
        Retriever::search_in(&mut transaction, text, vector.as_ref(), search::MAX_K, mode, &CollectionScope::All)
            .await
            .unwrap();
    transaction.commit().await.unwrap();
    let hits = if rerank {
        let by = switchboard::audit::Recorder {
            tenant_id: tenant,
            actor_type: "system",
            actor_id: None,
            request_id: None,
            trace_id: None,
        };
        let bill = RerankBill { tenant_id: tenant, payer: switchboard::usage::EmbeddingPayer::default(), by };
        let k = usize::try_from(search::MAX_K).unwrap_or(usize::MAX);
        let searched = retriever.rerank(pool, &bill, text, hits, k).await.unwrap();
        assert!(searched.reranked, "the reranker failed ({:?}): see the log", searched.fallback);
        searched.hits
    } else {
        hits
    };
    (hits.into_iter().map(|hit| hit.source_path).collect(), asked.elapsed())
}

/// The long questions' table: each mode's latency, and how many of its top 10 are full text's.
async fn long_question_table(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    retriever: &Retriever,
    documents: &[(String, String)],
    modes: &[(SearchMode, &str)],
) {
    let long = long_questions(documents);
    let mut exact: Vec<Vec<String>> = Vec::new();
    println!();
    println!(
        "| method, {} questions of 60 words | top 10 shared with full text | search p50 | search p99 |",
        long.len()
    );
    println!("|---|---|---|---|");
    for (mode, name) in modes {
        let mut shared = 0;
        let mut latencies = Vec::new();
        for (index, text) in long.iter().enumerate() {
            let (ranking, took) = search_timed(pool, tenant_id, retriever, text, (*mode, false)).await;
            latencies.push(took);
            let top: Vec<String> = ranking.into_iter().take(10).collect();
            // Full text runs first: its top 10 are what the other modes are compared with.
            if *mode == SearchMode::FullText {
                exact.push(top.clone());
            }
            shared += top.iter().filter(|path| exact[index].contains(path)).count();
        }
        latencies.sort();
        println!(
            "| {name} | {:.2} of 10 | {:.1} ms | {:.1} ms |",
            shared as f64 / long.len() as f64,
            percentile(&latencies, 500),
            percentile(&latencies, 990)
        );
    }
}

#[tokio::main]
async fn main() {
    let folder = std::env::args().nth(1).unwrap_or_else(|| "../shared/data/vaswani".to_owned());
    let folder = Path::new(&folder);
    let read =
        |name: &str| std::fs::read_to_string(folder.join(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    let documents = trec_records(&read("doc-text.trec"), "DOC", "DOCNO");
    let queries = trec_records(&read("query-text.trec"), "top", "num");
    let judgments = qrels(&read("qrels"));

    let data_dir = Path::new("target/bench-data");
    let server = tokio::task::spawn_blocking(move || {
        let layout = embedded::Layout::throwaway(data_dir, &format!("{}-eval", std::process::id())).unwrap();
        embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Throwaway).unwrap()
    })
    .await
    .unwrap();
    let password = SecretString::from("eval-app-password");
    db::create_database_if_missing(&server.maintenance_options(), "eval").await.unwrap();
    let owner = server.maintenance_options().database("eval");
    db::prepare(&owner, &password).await.unwrap();
    let pool = db::connect_app_pool(&owner, &password).await.unwrap();
    let (tenant, _) = tenants::create(&pool, &NewTenant::parse("Eval", "eval").unwrap(), None).await.unwrap();
    let factory = EmbedderFactory::new(
        HashMap::new(),
        HttpClient::new(UpstreamSettings::default()),
        data_dir,
        switchboard::catalog::Catalog::built_in(),
    );
    let retriever = backfill::prepare(&owner, &pool, &factory, EmbeddingModel::local()).await;
    let reranker = switchboard::config::rerank_settings().expect("the rerank settings are valid").map(|settings| {
        let http = HttpClient::new(UpstreamSettings::default());
        switchboard::retrieval::rerank::Reranker::new(settings, http, &switchboard::catalog::Catalog::built_in())
    });
    let reranking = reranker.is_some();
    let retriever = retriever.with_reranker(reranker);

    // Ingested first without vectors, then embedded by the backfill in batches: two throughputs.
    let started = Instant::now();
    let mut chunks = 0;
    for (id, text) in &documents {
        let document = NewDocument::parse(id, Some(id), text.clone()).unwrap();
        let (stored, _) = retrieval::ingest(&pool, tenant.id, &document, None, None).await.unwrap();
        chunks += stored.chunk_count;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} documents ({chunks} chunks) without vectors in {elapsed:.1} s: {:.0} chunks/s",
        documents.len(),
        f64::from(chunks) / elapsed
    );
    let full_text_only = std::env::var_os("EVAL_FULL_TEXT_ONLY").is_some();
    let started = Instant::now();
    let embedded = if full_text_only { 0 } else { backfill::sweep(&pool, &retriever).await.unwrap() };
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "embedded {embedded} chunks with {} in {elapsed:.1} s: {:.0} chunks/s",
        EmbeddingModel::local().id,
        embedded as f64 / elapsed
    );

    let tenant_id = TenantId(tenant.id.0);
    let modes = [
        (SearchMode::FullText, "full text (BM25 k1 1.2 b 0.75 k3 8, exact)"),
        (SearchMode::Vector, "vector (all-MiniLM-L6-v2, HNSW cosine)"),
        (SearchMode::Hybrid, "hybrid (reciprocal-rank fusion, k = 60)"),
    ];
    let modes: Vec<_> =
        modes.into_iter().filter(|(mode, _)| !full_text_only || *mode == SearchMode::FullText).collect();
    // The judged queries' table also has the reranked row when a reranker is configured.
    let mut judged_modes: Vec<((SearchMode, bool), String)> =
        modes.iter().map(|(mode, name)| ((*mode, false), (*name).to_owned())).collect();
    if reranking && !full_text_only {
        let reranker_id = retriever.reranker().map(|reranker| reranker.model().id()).unwrap_or_default();
        judged_modes.push(((SearchMode::Hybrid, true), format!("hybrid + rerank ({reranker_id}, best 30)")));
    }

    let judged: Vec<_> = queries.iter().filter(|(id, _)| judgments.contains_key(id)).collect();
    println!("| method | nDCG@10 | Recall@100 | MRR@10 | search p50 | search p99 |");
    println!("|---|---|---|---|---|---|");
    for (mode, name) in &judged_modes {
        let mut totals = (0.0, 0.0, 0.0);
        let mut latencies = Vec::new();
        for (id, text) in &judged {
            let (ranking, took) = search_timed(&pool, tenant_id, &retriever, text, *mode).await;
            latencies.push(took);
            let (ndcg, recall, rr) = metrics(&ranking, &judgments[id.as_str()]);
            totals = (totals.0 + ndcg, totals.1 + recall, totals.2 + rr);
        }
        latencies.sort();
        let count = judged.len() as f64;
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.1} ms | {:.1} ms |",
            totals.0 / count,
            totals.1 / count,
            totals.2 / count,
            percentile(&latencies, 500),
            percentile(&latencies, 990)
        );
    }
    println!("{} queries with judgments, {} documents", judged.len(), documents.len());

    long_question_table(&pool, tenant_id, &retriever, &documents, &modes).await;
    server.stop();
}
