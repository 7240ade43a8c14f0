//! Retrieval quality on a standard test collection in TREC format (the Vaswani collection in
//! `../shared/data/vaswani/`): ingests every document as one tenant's documents, runs every query
//! through Switchboard's search (full text, vector and hybrid, as `POST /api/v1/search` runs them), and
//! reports nDCG@10, MRR@10 and Recall@100 against the relevance judgments, search latency, and the
//! throughput of ingestion and of embedding with the local model. Then 200 long questions (the first 60
//! words of documents of at least 60 words, picked by a seeded generator, as tests/api/bm25_reference.rs
//! makes them), as users paste a paragraph: a known-item set, each question judged by the one document it
//! was cut from, so each mode gets the same three measures there too, its latency, and how many of its
//! top 10 are full text's (exact BM25, which that test checks against a reference). Then the same
//! documents asked for twice more: the questions misspelt, and 20 words of another document before 40 of
//! the one to find (where the vector is the weak ranking). These generated sets, not the judged queries,
//! are what hybrid fusion was chosen on (src/retrieval/fusion.rs).
//!
//! `cargo run --release --example retrieval_eval -- ../shared/data/vaswani`
//! (`EVAL_FULL_TEXT_ONLY=1`: no embedding, full-text search only, in a minute instead of many.
//! `EVAL_DUMP=file.jsonl`: every question's full-text and vector rankings, 100 deep with their scores, one
//! JSON line each, to study fusion without searching again.) With
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
use switchboard::retrieval::search::{SearchHit, SearchMode};
use switchboard::retrieval::{self, NewDocument, RerankBill, Retriever, backfill, search};
use switchboard::tenants::{self, NewTenant};
use trec::{qrels, trec_records};

/// nDCG@10, Recall@100 and reciprocal rank@10 of one ranking with binary relevance.
/// A document with several chunks counts once, where its best chunk is.
fn metrics(ranking: &[String], relevant: &HashSet<String>) -> (f64, f64, f64) {
    let mut seen = HashSet::new();
    let ranking: Vec<bool> =
        ranking.iter().filter(|id| seen.insert(id.as_str())).map(|id| relevant.contains(id)).collect();
    let gain = |rank: usize| 1.0 / (rank as f64 + 2.0).log2();
    let dcg: f64 = ranking.iter().take(10).enumerate().filter(|(_, hit)| **hit).map(|(rank, _)| gain(rank)).sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(gain).sum();
    let found = ranking.iter().take(100).filter(|hit| **hit).count();
    let reciprocal = ranking.iter().take(10).position(|hit| *hit).map_or(0.0, |rank| 1.0 / (rank as f64 + 1.0));
    (if ideal > 0.0 { dcg / ideal } else { 0.0 }, found as f64 / relevant.len() as f64, reciprocal)
}

/// One evaluation question and the documents judged relevant to it.
struct Question {
    id: String,
    text: String,
    relevant: HashSet<String>,
}

/// The 200 long questions: the first 60 words of documents of at least 60 words, picked with seed 19,
/// each judged by the document it was cut from (known-item retrieval).
fn long_questions(documents: &[(String, String)]) -> Vec<Question> {
    let long_enough: Vec<&(String, String)> =
        documents.iter().filter(|(_, text)| text.split_whitespace().count() >= 60).collect();
    let mut random = rand::rngs::StdRng::seed_from_u64(19);
    rand::seq::index::sample(&mut random, long_enough.len(), 200)
        .into_iter()
        .map(|at| {
            let (id, text) = long_enough[at];
            Question {
                id: format!("long-{id}"),
                text: text.split_whitespace().take(60).collect::<Vec<_>>().join(" "),
                relevant: HashSet::from([id.clone()]),
            }
        })
        .collect()
}

/// The same 200 documents asked about harder: 20 words from the start of another document (a pasted
/// paragraph's unrelated context), then the document's first 40 words; judged by the document only.
fn mixed_questions(documents: &[(String, String)]) -> Vec<Question> {
    let long_enough: Vec<&(String, String)> =
        documents.iter().filter(|(_, text)| text.split_whitespace().count() >= 60).collect();
    let mut random = rand::rngs::StdRng::seed_from_u64(19);
    let picked = rand::seq::index::sample(&mut random, long_enough.len(), 200);
    let mut random = rand::rngs::StdRng::seed_from_u64(20);
    picked
        .into_iter()
        .map(|at| {
            let (id, text) = long_enough[at];
            let other = loop {
                let other = rand::Rng::random_range(&mut random, 0..long_enough.len());
                if other != at {
                    break long_enough[other];
                }
            };
            let words = other.1.split_whitespace().take(20).chain(text.split_whitespace().take(40));
            Question {
                id: format!("mixed-{id}"),
                text: words.collect::<Vec<_>>().join(" "),
                relevant: HashSet::from([id.clone()]),
            }
        })
        .collect()
}

/// The long questions as typed in a hurry: every other word of five letters or more (on average) has
/// two neighbouring letters swapped, which full text cannot match and an embedding's word pieces partly
/// can; judged by the document.
fn misspelt_questions(documents: &[(String, String)]) -> Vec<Question> {
    let mut random = rand::rngs::StdRng::seed_from_u64(21);
    long_questions(documents)
        .into_iter()
        .map(|question| {
            let words: Vec<String> = question
                .text
                .split_whitespace()
                .map(|word| {
                    let mut letters: Vec<char> = word.chars().collect();
                    if letters.len() >= 5 && rand::Rng::random_bool(&mut random, 0.5) {
                        let at = rand::Rng::random_range(&mut random, 1..letters.len() - 2);
                        letters.swap(at, at + 1);
                    }
                    letters.into_iter().collect()
                })
                .collect();
            Question { id: question.id.replace("long-", "misspelt-"), text: words.join(" "), ..question }
        })
        .collect()
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile(sorted: &[std::time::Duration], per_mille: usize) -> f64 {
    sorted[(sorted.len() * per_mille).div_ceil(1000).clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// One search as a request is served (the question embedded, then both rankings and fusion, then the
/// reranker when `rerank`), timed; its hits, best first.
async fn search_timed(
    pool: &sqlx::PgPool,
    tenant: TenantId,
    retriever: &Retriever,
    text: &str,
    (mode, rerank): (SearchMode, bool),
) -> (Vec<SearchHit>, std::time::Duration) {
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
    (hits, asked.elapsed())
}

/// Where the evaluation searches.
struct Eval<'a> {
    pool: &'a sqlx::PgPool,
    tenant_id: TenantId,
    retriever: &'a Retriever,
}

/// One table: each mode's nDCG@10, MRR@10 and Recall@100 over `questions`, how many of its top 10 are full
/// text's, and its latency. Full text runs first when it is among the modes: its top 10 are what the
/// others are compared with. With `dump`, each question's full-text and vector rankings are written to it.
async fn table(
    eval: &Eval<'_>,
    title: &str,
    questions: &[Question],
    modes: &[((SearchMode, bool), String)],
    mut dump: Option<&mut std::fs::File>,
) {
    println!();
    println!("| {title} | nDCG@10 | MRR@10 | Recall@100 | top 10 shared with full text | search p50 | search p99 |");
    println!("|---|---|---|---|---|---|---|");
    let mut exact: Vec<Vec<String>> = vec![Vec::new(); questions.len()];
    let mut rankings: Vec<serde_json::Map<String, serde_json::Value>> = vec![serde_json::Map::new(); questions.len()];
    for (mode, name) in modes {
        let (mut totals, mut shared) = ((0.0, 0.0, 0.0), 0);
        let mut latencies = Vec::new();
        for (index, question) in questions.iter().enumerate() {
            let (hits, took) = search_timed(eval.pool, eval.tenant_id, eval.retriever, &question.text, *mode).await;
            latencies.push(took);
            let ranking: Vec<String> = hits.iter().map(|hit| hit.source_path.clone()).collect();
            let (ndcg, recall, rr) = metrics(&ranking, &question.relevant);
            totals = (totals.0 + ndcg, totals.1 + recall, totals.2 + rr);
            let top: Vec<String> = ranking.into_iter().take(10).collect();
            if *mode == (SearchMode::FullText, false) {
                exact[index].clone_from(&top);
            }
            shared += top.iter().filter(|path| exact[index].contains(path)).count();
            let scored = |hit: &SearchHit, score: Option<f64>| {
                serde_json::json!([hit.chunk_id, hit.source_path, score, hit.term_coverage])
            };
            match mode {
                (SearchMode::FullText, false) => {
                    let ranked = hits.iter().map(|hit| scored(hit, hit.full_text_score)).collect();
                    rankings[index].insert("full_text".to_owned(), serde_json::Value::Array(ranked));
                }
                (SearchMode::Vector, false) => {
                    let ranked = hits.iter().map(|hit| scored(hit, hit.similarity)).collect();
                    rankings[index].insert("vector".to_owned(), serde_json::Value::Array(ranked));
                }
                _ => {}
            }
        }
        latencies.sort();
        let count = questions.len() as f64;
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.2} of 10 | {:.1} ms | {:.1} ms |",
            totals.0 / count,
            totals.2 / count,
            totals.1 / count,
            shared as f64 / count,
            percentile(&latencies, 500),
            percentile(&latencies, 990)
        );
    }
    if let Some(dump) = dump.as_mut() {
        use std::io::Write as _;
        for (question, mut line) in questions.iter().zip(rankings) {
            line.insert("id".to_owned(), question.id.clone().into());
            line.insert("text".to_owned(), question.text.clone().into());
            line.insert("relevant".to_owned(), question.relevant.iter().cloned().collect::<Vec<_>>().into());
            writeln!(dump, "{}", serde_json::Value::Object(line)).unwrap();
        }
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
        (SearchMode::Hybrid, "hybrid (z-scores weighted by confidence)"),
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

    let judged: Vec<Question> = queries
        .iter()
        .filter_map(|(id, text)| {
            let relevant = judgments.get(id)?.clone();
            Some(Question { id: id.clone(), text: text.clone(), relevant })
        })
        .collect();
    let mut dump = std::env::var_os("EVAL_DUMP").map(|path| std::fs::File::create(path).unwrap());
    let eval = Eval { pool: &pool, tenant_id, retriever: &retriever };
    let title = format!("method, {} judged queries", judged.len());
    table(&eval, &title, &judged, &judged_modes, dump.as_mut()).await;
    println!("{} queries with judgments, {} documents", judged.len(), documents.len());

    let long = long_questions(&documents);
    let title = format!("method, {} long questions (60 words, known item)", long.len());
    let modes: Vec<_> = modes.iter().map(|(mode, name)| ((*mode, false), (*name).to_owned())).collect();
    table(&eval, &title, &long, &modes, dump.as_mut()).await;
    let mixed = mixed_questions(&documents);
    let title = format!("method, {} mixed questions (20 unrelated words, then 40 of the document)", mixed.len());
    table(&eval, &title, &mixed, &modes, dump.as_mut()).await;
    let misspelt = misspelt_questions(&documents);
    let title = format!("method, {} misspelt long questions", misspelt.len());
    table(&eval, &title, &misspelt, &modes, dump.as_mut()).await;
    server.stop();
}
