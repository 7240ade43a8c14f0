//! Retrieval quality on a standard test collection in TREC format (the Vaswani collection in
//! `../shared/data/vaswani/`): ingests every document as one tenant's documents, runs every query
//! through Switchboard's search (full text, vector and hybrid, as `POST /api/v1/search` runs them), and
//! reports nDCG@10, Recall@100 and MRR@10 against the relevance judgments, search latency, and the
//! throughput of ingestion and of embedding with the local model.
//!
//! `cargo run --release --example retrieval_eval -- ../shared/data/vaswani`
//! (`EVAL_FULL_TEXT_ONLY=1`: no embedding, full-text search only, in a minute instead of many.)
#![expect(clippy::cast_precision_loss, reason = "metrics over counts far below 2^52")]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use secrecy::SecretString;
use switchboard::db::{self, embedded};
use switchboard::embeddings::{EmbedderFactory, EmbeddingModel};
use switchboard::ids::TenantId;
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::search::SearchMode;
use switchboard::retrieval::{self, NewDocument, Retriever, backfill, search};
use switchboard::tenants::{self, NewTenant};

/// `<DOC><DOCNO>id</DOCNO> text </DOC>` records (queries use the same shape with `<TOP><NUM>`).
fn trec_records(text: &str, record: &str, id_tag: &str) -> Vec<(String, String)> {
    let open = format!("<{record}>");
    let close = format!("</{record}>");
    let (id_open, id_close) = (format!("<{id_tag}>"), format!("</{id_tag}>"));
    text.split(&open)
        .filter_map(|chunk| chunk.split(&close).next())
        .filter_map(|body| {
            let start = body.find(&id_open)? + id_open.len();
            let end = body.find(&id_close)?;
            let id = body[start..end].trim().to_owned();
            let rest = body[end + id_close.len()..].replace("<title>", " ").replace("</title>", " ");
            Some((id, rest.trim().to_owned()))
        })
        .collect()
}

fn qrels(text: &str) -> HashMap<String, HashSet<String>> {
    let mut relevant: HashMap<String, HashSet<String>> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [query, _, document, grade] = fields[..]
            && grade != "0"
        {
            relevant.entry(query.to_owned()).or_default().insert(document.to_owned());
        }
    }
    relevant
}

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

    let judged: Vec<_> = queries.iter().filter(|(id, _)| judgments.contains_key(id)).collect();
    println!("| method | nDCG@10 | Recall@100 | MRR@10 | search p50 | search p99 |");
    println!("|---|---|---|---|---|---|");
    for (mode, name) in [
        (SearchMode::FullText, "full text (stemmed terms OR-ed, BM25 k1 1.2 b 0.75)"),
        (SearchMode::Vector, "vector (all-MiniLM-L6-v2, HNSW cosine)"),
        (SearchMode::Hybrid, "hybrid (reciprocal-rank fusion, k = 60)"),
    ] {
        if full_text_only && mode != SearchMode::FullText {
            continue;
        }
        let mut totals = (0.0, 0.0, 0.0);
        let mut latencies = Vec::new();
        for (id, text) in &judged {
            // Timed as a search request is served: the question embedded, then both rankings and fusion.
            let asked = Instant::now();
            let vector = if mode == SearchMode::FullText { None } else { retriever.embed_question(text).await };
            let mut transaction = db::begin_tenant(&pool, TenantId(tenant.id.0)).await.unwrap();
            let hits =
                Retriever::search_in(&mut transaction, text, vector.as_ref(), search::MAX_K, mode).await.unwrap();
            transaction.commit().await.unwrap();
            latencies.push(asked.elapsed());
            let ranking: Vec<String> = hits.into_iter().map(|hit| hit.source_path).collect();
            let (ndcg, recall, rr) = metrics(&ranking, &judgments[id.as_str()]);
            totals = (totals.0 + ndcg, totals.1 + recall, totals.2 + rr);
        }
        latencies.sort();
        let at =
            |per_mille: usize| latencies[(latencies.len() * per_mille).div_ceil(1000).clamp(1, latencies.len()) - 1];
        let count = judged.len() as f64;
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.1} ms | {:.1} ms |",
            totals.0 / count,
            totals.1 / count,
            totals.2 / count,
            at(500).as_secs_f64() * 1e3,
            at(990).as_secs_f64() * 1e3
        );
    }
    println!("{} queries with judgments, {} documents", judged.len(), documents.len());
    server.stop();
}
