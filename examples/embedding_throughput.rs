//! The local embedder's speed on this machine: documents per second when embedding in the backfill's
//! batches, and the latency of embedding one question (what every turn pays before it searches).
//!
//! `cargo run --release --example embedding_throughput -- ../shared/data/vaswani [DOCUMENTS]`
#![expect(clippy::cast_precision_loss, reason = "rates over counts far below 2^52")]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use switchboard::embeddings::local::LocalEmbedder;
use switchboard::embeddings::{Embedder, Purpose};

/// The text of each `<DOC>` (or `<top>`) record, after its id, without tags.
fn records(text: &str, record: &str, id_close: &str) -> Vec<String> {
    let (open, close) = (format!("<{record}>"), format!("</{record}>"));
    text.split(&open)
        .filter_map(|chunk| chunk.split(&close).next())
        .filter_map(|body| body.split_once(id_close).map(|(_, rest)| rest))
        .map(|rest| rest.replace("<title>", " ").replace("</title>", " ").trim().to_owned())
        .filter(|body| !body.is_empty())
        .collect()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let folder = args.next().unwrap_or_else(|| "../shared/data/vaswani".to_owned());
    let limit: usize = args.next().map_or(2000, |count| count.parse().expect("a number of documents"));
    let read = |name: &str| std::fs::read_to_string(Path::new(&folder).join(name)).expect(name);
    let documents: Vec<String> = records(&read("doc-text.trec"), "DOC", "</DOCNO>").into_iter().take(limit).collect();
    let questions = records(&read("query-text.trec"), "top", "</num>");

    let embedder = Embedder::Local(Arc::new(LocalEmbedder::new(Path::new("target/bench-data"))));
    embedder.embed_query("warm up: install and load the model").await.unwrap();

    let started = Instant::now();
    for batch in documents.chunks(256) {
        embedder.embed(batch, Purpose::Document).await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let words: usize = documents.iter().map(|document| document.split_whitespace().count()).sum();
    println!(
        "{} documents ({:.0} words on average) in {elapsed:.1} s: {:.1} documents/s",
        documents.len(),
        words as f64 / documents.len() as f64,
        documents.len() as f64 / elapsed
    );

    let mut latencies = Vec::new();
    for question in &questions {
        let asked = Instant::now();
        embedder.embed_query(question).await.unwrap();
        latencies.push(asked.elapsed());
    }
    latencies.sort();
    let at = |per_mille: usize| latencies[(latencies.len() * per_mille).div_ceil(1000).clamp(1, latencies.len()) - 1];
    println!(
        "one question ({} questions): p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        at(500).as_secs_f64() * 1e3,
        at(990).as_secs_f64() * 1e3
    );
}
