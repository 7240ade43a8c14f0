//! Full-text search is exact BM25: `mode: full_text` through `POST /api/v1/search` gives the same top 10
//! as a reference written here, which scores every chunk of the Vaswani collection (11,429 abstracts) with
//! its own BM25, for the collection's 93 queries and for 200 long questions (the first 60 words of
//! documents a seeded generator picks). Whatever the service prunes to be fast must not change its answer.
//!
//! Only the text analysis is shared: each chunk's lexemes and counts and the question's come from
//! PostgreSQL (`unnest(search_vector)`, `to_tsvector('english', …)`), as stemming must be PostgreSQL's; the
//! statistics (chunks, lengths, chunk frequencies) are counted here from the chunks, not read from
//! `term_stats`, so they are checked too.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use futures::StreamExt as _;
use rand::SeedableRng as _;
use serde_json::{Value, json};
use switchboard::ids::TenantId;
use switchboard::retrieval::{self, NewDocument};

use crate::helpers::{TestApp, TestTenant};

const K1: f64 = 1.2;
const B: f64 = 0.75;
const K3: f64 = 8.0;
/// How many results each search asks for: as deep as hybrid search asks full text.
const DEPTH: usize = 100;
const LONG_QUESTIONS: usize = 200;
const LONG_QUESTION_WORDS: usize = 60;

/// The collection, committed compressed so that a fresh clone has it (`tests/data/vaswani/`).
fn read_gzip(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vaswani").join(name);
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap_or_else(|error| panic!("{name}: {error}")))
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// `<DOC><DOCNO>id</DOCNO> text </DOC>` records (queries: `<top><num>id</num><title> text </title></top>`).
fn trec_records(text: &str, record: &str, id_tag: &str) -> Vec<(String, String)> {
    let (open, close) = (format!("<{record}>"), format!("</{record}>"));
    let (id_open, id_close) = (format!("<{id_tag}>"), format!("</{id_tag}>"));
    text.split(&open)
        .filter_map(|chunk| chunk.split(&close).next())
        .filter_map(|body| {
            let start = body.find(&id_open)? + id_open.len();
            let end = body.find(&id_close)?;
            let rest = body[end + id_close.len()..].replace("<title>", " ").replace("</title>", " ");
            Some((body[start..end].trim().to_owned(), rest.trim().to_owned()))
        })
        .collect()
}

/// Every chunk the tenant sees, as BM25 needs it.
struct Collection {
    /// Token count and the counts of each lexeme, per chunk.
    chunks: HashMap<uuid::Uuid, (f64, HashMap<String, f64>)>,
    /// Chunks holding each lexeme.
    frequencies: HashMap<String, f64>,
    average_length: f64,
}

impl Collection {
    async fn read(app: &TestApp, tenant: &TestTenant) -> Self {
        let mut transaction = switchboard::db::begin_tenant(&app.app_db, TenantId(tenant.id)).await.unwrap();
        let rows: Vec<(uuid::Uuid, i32, String, i32)> = sqlx::query_as(
            "SELECT c.id, c.token_count, entry.lexeme, coalesce(array_length(entry.positions, 1), 1) \
             FROM doc_chunks AS c, unnest(c.search_vector) AS entry",
        )
        .fetch_all(&mut *transaction)
        .await
        .unwrap();
        transaction.commit().await.unwrap();
        let mut chunks: HashMap<uuid::Uuid, (f64, HashMap<String, f64>)> = HashMap::new();
        for (id, tokens, lexeme, count) in rows {
            chunks.entry(id).or_insert_with(|| (f64::from(tokens), HashMap::new())).1.insert(lexeme, f64::from(count));
        }
        let mut frequencies: HashMap<String, f64> = HashMap::new();
        for (_, lexemes) in chunks.values() {
            for lexeme in lexemes.keys() {
                *frequencies.entry(lexeme.clone()).or_default() += 1.0;
            }
        }
        #[expect(clippy::cast_precision_loss, reason = "thousands of chunks")]
        let average_length = chunks.values().map(|(tokens, _)| tokens).sum::<f64>() / chunks.len() as f64;
        Self { chunks, frequencies, average_length }
    }

    /// Every chunk's Okapi BM25 for a question of these (lexeme, occurrences), best first, ties by id;
    /// chunks holding none of its terms are no match.
    fn rank(&self, question: &[(String, f64)]) -> Vec<(uuid::Uuid, f64)> {
        #[expect(clippy::cast_precision_loss, reason = "thousands of chunks")]
        let total = self.chunks.len() as f64;
        let mut ranking: Vec<(uuid::Uuid, f64)> = self
            .chunks
            .iter()
            .filter_map(|(id, (length, counts))| {
                let mut score = 0.0;
                let mut matched = false;
                for (lexeme, in_question) in question {
                    let Some(tf) = counts.get(lexeme) else { continue };
                    matched = true;
                    let holding = self.frequencies[lexeme];
                    let idf = ((total - holding + 0.5) / (holding + 0.5) + 1.0).ln();
                    let saturation = K1 * ((1.0 - B) + B * length / self.average_length);
                    score +=
                        idf * ((K1 + 1.0) * tf / (saturation + tf)) * ((K3 + 1.0) * in_question / (K3 + in_question));
                }
                matched.then_some((*id, score))
            })
            .collect();
        ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranking
    }
}

async fn question_terms(app: &TestApp, question: &str) -> Vec<(String, f64)> {
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT lexeme, coalesce(array_length(positions, 1), 1) FROM unnest(to_tsvector('english', $1))",
    )
    .bind(question)
    .fetch_all(&app.app_db)
    .await
    .unwrap();
    rows.into_iter().map(|(lexeme, count)| (lexeme, f64::from(count))).collect()
}

/// The service's full-text ranking: (chunk, score), best first.
async fn search(app: &TestApp, tenant: &TestTenant, question: &str) -> Vec<(uuid::Uuid, f64)> {
    let body = json!({"query": question, "k": DEPTH, "mode": "full_text"});
    let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| (hit["chunk_id"].as_str().unwrap().parse().unwrap(), hit["score"].as_f64().unwrap()))
        .collect()
}

fn same_score(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Whether the first `n` results are the reference's: at each place a chunk with the reference's score
/// for that place (so chunks tied in score may come in either order), and the service's score the
/// reference's for that chunk.
fn agrees(found: &[(uuid::Uuid, f64)], reference: &[(uuid::Uuid, f64)], n: usize) -> bool {
    let scores: HashMap<uuid::Uuid, f64> = reference.iter().copied().collect();
    let n = n.min(reference.len());
    found.len() >= n
        && found.iter().zip(reference).take(n).all(|((id, score), (_, expected))| {
            scores.get(id).is_some_and(|truth| same_score(*truth, *expected) && same_score(*score, *truth))
        })
}

#[tokio::test]
async fn full_text_search_ranks_as_bm25_over_every_chunk() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("vaswani").await;
    let documents = trec_records(&read_gzip("doc-text.trec.gz"), "DOC", "DOCNO");
    let queries = trec_records(&read_gzip("query-text.trec.gz"), "top", "num");
    assert_eq!((documents.len(), queries.len()), (11_429, 93));

    // Full text only (no embedder): vectors play no part in this ranking. Four at a time, as the
    // ingestion benchmark does.
    let started = std::time::Instant::now();
    let pool = &app.app_db;
    let stored: Vec<()> = futures::stream::iter(documents.iter())
        .map(|(id, text)| async move {
            let document = NewDocument::parse(id, Some(id), text.clone()).unwrap();
            retrieval::ingest(pool, TenantId(tenant.id), &document, None, None).await.unwrap();
        })
        .buffer_unordered(4)
        .collect()
        .await;
    eprintln!("ingested {} documents in {:.1} s", stored.len(), started.elapsed().as_secs_f64());

    let collection = Collection::read(&app, &tenant).await;
    let mut random = rand::rngs::StdRng::seed_from_u64(19);
    let long_enough: Vec<&(String, String)> =
        documents.iter().filter(|(_, text)| text.split_whitespace().count() >= LONG_QUESTION_WORDS).collect();
    let long_questions: Vec<String> = rand::seq::index::sample(&mut random, long_enough.len(), LONG_QUESTIONS)
        .into_iter()
        .map(|at| long_enough[at].1.split_whitespace().take(LONG_QUESTION_WORDS).collect::<Vec<_>>().join(" "))
        .collect();

    let questions: Vec<(&str, &str)> = queries
        .iter()
        .map(|(_, text)| ("collection", text.as_str()))
        .chain(long_questions.iter().map(|text| ("long", text.as_str())))
        .collect();
    let (mut top_10, mut top_100) = (0, 0);
    let mut differing = Vec::new();
    for (kind, question) in &questions {
        let reference = collection.rank(&question_terms(&app, question).await);
        let found = search(&app, &tenant, question).await;
        if agrees(&found, &reference, 10) {
            top_10 += 1;
        } else {
            differing.push(format!(
                "{kind}: {question:?}: {:?} against {:?}",
                &found[..found.len().min(3)],
                &reference[..reference.len().min(3)]
            ));
        }
        if agrees(&found, &reference, DEPTH) && found.len() == reference.len().min(DEPTH) {
            top_100 += 1;
        }
    }
    eprintln!(
        "{top_10} of {} questions with the reference's top 10, {top_100} with its top {DEPTH}; {:.1} s in all",
        questions.len(),
        started.elapsed().as_secs_f64()
    );
    // At least 99 %: 290 of 293.
    assert!(top_10 * 100 >= questions.len() * 99, "{top_10} of {} agree; differing: {differing:#?}", questions.len());
}
