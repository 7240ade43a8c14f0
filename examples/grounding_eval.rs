//! The relevance floor, measured: how often a question that no document answers still gets passages, and
//! what the floor costs the questions that have answers. Two tenants: one holding the Vaswani collection
//! (`../shared/data/vaswani/`, physics abstracts), one holding only Switchboard's documentation
//! (`docs_corpus/`). The no-answer sets are the Vaswani questions asked of the documentation tenant, and
//! everyday questions (`examples/data/unrelated_questions.txt`, written for this, not taken from any
//! collection) asked of both tenants. The answerable set is the Vaswani questions asked of the Vaswani
//! tenant; its relevance judgments serve only to measure the floor's cost in nDCG@10, never to choose it.
//!
//! For each mode it prints the top relevance (the best hit's, on the floor's scale) across each set, and
//! for floors from 0.05 to 0.60, the floor in force (the defaults, or
//! `GROUNDING_FLOORS=hybrid,vector,full_text`) and the floor a fixed rule derives from the no-answer
//! questions of even lines (the calibration half: the smallest multiple of 0.05 above 95 % of their top
//! relevances): how often a turn wrongly gets passages, in each half, and the floor's cost in nDCG@10.
//!
//! `cargo run --release --example grounding_eval -- ../shared/data/vaswani`
#![expect(clippy::cast_precision_loss, reason = "metrics over counts far below 2^52")]
#![expect(clippy::too_many_lines, reason = "one measurement, read top to bottom")]

#[path = "common/trec.rs"]
mod trec;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use secrecy::SecretString;
use switchboard::auth::context::CollectionScope;
use switchboard::db::{self, embedded};
use switchboard::embeddings::{EmbedderFactory, EmbeddingModel};
use switchboard::ids::TenantId;
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::relevance::Floors;
use switchboard::retrieval::search::{SearchHit, SearchMode};
use switchboard::retrieval::{self, NewDocument, Retriever, backfill, corpus, search};
use switchboard::tenants::{self, NewTenant};
use trec::{qrels, trec_records};

/// As many passages as a turn searches for (`engine/request.rs`).
const TURN_DEPTH: i64 = 8;

/// nDCG@10 of one ranking with binary relevance.
fn ndcg(ranking: &[String], relevant: &HashSet<String>) -> f64 {
    let gain = |rank: usize| 1.0 / (rank as f64 + 2.0).log2();
    let dcg: f64 =
        ranking.iter().take(10).enumerate().filter(|(_, id)| relevant.contains(*id)).map(|(rank, _)| gain(rank)).sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(gain).sum();
    if ideal > 0.0 { dcg / ideal } else { 0.0 }
}

/// The value at `per_mille` of sorted `values`, nearest rank.
fn quantile(sorted: &[f64], per_mille: usize) -> f64 {
    sorted[(sorted.len() * per_mille).div_ceil(1000).clamp(1, sorted.len()) - 1]
}

/// The floors to measure: `GROUNDING_FLOORS=hybrid,vector,full_text`, else the defaults.
fn floors_in_force() -> Floors {
    let Ok(given) = std::env::var("GROUNDING_FLOORS") else { return Floors::default() };
    let values: Vec<f64> = given.split(',').map(|value| value.trim().parse().expect("a number")).collect();
    let [hybrid, vector, full_text] = values[..] else { panic!("GROUNDING_FLOORS takes three numbers") };
    Floors { hybrid, vector, full_text }
}

/// A tenant and a list of questions asked of it.
struct Set<'a> {
    name: &'a str,
    tenant: TenantId,
    questions: Vec<&'a str>,
}

struct Searcher<'a> {
    pool: &'a sqlx::PgPool,
    retriever: &'a Retriever,
}

impl Searcher<'_> {
    /// The question's hits, judged on the floor's scale (and passing or not at `floors`).
    async fn hits(
        &self,
        tenant: TenantId,
        question: &str,
        k: i64,
        mode: SearchMode,
        floors: &Floors,
    ) -> Vec<SearchHit> {
        let vector = if mode == SearchMode::FullText { None } else { self.retriever.embed_question(question).await };
        let mut transaction = db::begin_tenant(self.pool, tenant).await.unwrap();
        let mut hits =
            Retriever::search_in(&mut transaction, question, vector.as_ref(), k, mode, &CollectionScope::All)
                .await
                .unwrap();
        transaction.commit().await.unwrap();
        floors.judge(&mut hits, mode);
        hits
    }

    /// The best hit's relevance for each question of the set, as a turn searches.
    async fn top_relevances(&self, set: &Set<'_>, mode: SearchMode) -> Vec<f64> {
        let mut tops = Vec::new();
        for question in &set.questions {
            let hits = self.hits(set.tenant, question, TURN_DEPTH, mode, &Floors::NONE).await;
            let top = hits.iter().filter_map(|hit| hit.relevance).map(|relevance| relevance.value).fold(0.0, f64::max);
            tops.push(top);
        }
        tops
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
    let unrelated_text = std::fs::read_to_string("examples/data/unrelated_questions.txt").unwrap();
    let unrelated: Vec<&str> =
        unrelated_text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect();

    let data_dir = Path::new("target/bench-data");
    let server = tokio::task::spawn_blocking(move || {
        let layout = embedded::Layout::throwaway(data_dir, &format!("{}-grounding", std::process::id())).unwrap();
        embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Throwaway).unwrap()
    })
    .await
    .unwrap();
    let password = SecretString::from("eval-app-password");
    db::create_database_if_missing(&server.maintenance_options(), "eval").await.unwrap();
    let owner = server.maintenance_options().database("eval");
    db::prepare(&owner, &password).await.unwrap();
    let pool = db::connect_app_pool(&owner, &password).await.unwrap();
    let (vaswani, _) = tenants::create(&pool, &NewTenant::parse("Vaswani", "vaswani").unwrap(), None).await.unwrap();
    let (docs, _) = tenants::create(&pool, &NewTenant::parse("Docs", "docs").unwrap(), None).await.unwrap();
    let (vaswani, docs) = (TenantId(vaswani.id.0), TenantId(docs.id.0));
    let factory = EmbedderFactory::new(
        HashMap::new(),
        HttpClient::new(UpstreamSettings::default()),
        data_dir,
        switchboard::catalog::Catalog::built_in(),
    );
    let retriever = backfill::prepare(&owner, &pool, &factory, EmbeddingModel::local()).await;

    for (id, text) in &documents {
        let document = NewDocument::parse(id, Some(id), text.clone()).unwrap();
        retrieval::ingest(&pool, vaswani, &document, None, None).await.unwrap();
    }
    // The documentation as a tenant's own documents (not the shared corpus, which every tenant would see).
    corpus::sync(&pool, docs, Path::new("docs_corpus"), None, false, |_, _, _| {}).await.unwrap();
    let started = std::time::Instant::now();
    let embedded = backfill::sweep(&pool, &retriever).await.unwrap();
    eprintln!("embedded {embedded} chunks in {:.0} s", started.elapsed().as_secs_f64());

    let judged: Vec<(&str, &str)> = queries
        .iter()
        .filter(|(id, _)| judgments.contains_key(id))
        .map(|(id, text)| (id.as_str(), text.as_str()))
        .collect();
    let vaswani_questions: Vec<&str> = judged.iter().map(|(_, text)| *text).collect();
    let no_answer = [
        Set { name: "Vaswani questions → docs_corpus", tenant: docs, questions: vaswani_questions.clone() },
        Set { name: "everyday questions → Vaswani", tenant: vaswani, questions: unrelated.clone() },
        Set { name: "everyday questions → docs_corpus", tenant: docs, questions: unrelated.clone() },
    ];
    let answerable = Set { name: "Vaswani questions → Vaswani", tenant: vaswani, questions: vaswani_questions };
    let searcher = Searcher { pool: &pool, retriever: &retriever };
    let floors = floors_in_force();

    println!(
        "{} judged Vaswani questions, {} everyday questions; a turn searches {TURN_DEPTH} passages.\n",
        judged.len(),
        unrelated.len()
    );
    println!(
        "Top relevance per question (the best of a turn's hits), p50 / p90 / p95 / max; answerable p5 / p10 / p50:\n"
    );
    println!("| mode | set | p50 | p90 | p95 | max |");
    println!("|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for mode in [SearchMode::Hybrid, SearchMode::Vector, SearchMode::FullText] {
        let mut calibration = Vec::new();
        let mut per_set = Vec::new();
        for set in &no_answer {
            let tops = searcher.top_relevances(set, mode).await;
            calibration.extend(tops.iter().step_by(2).copied());
            let mut sorted = tops.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                mode.as_str(),
                set.name,
                quantile(&sorted, 500),
                quantile(&sorted, 900),
                quantile(&sorted, 950),
                quantile(&sorted, 1000)
            );
            per_set.push(tops);
        }
        let mut sorted = searcher.top_relevances(&answerable, mode).await;
        sorted.sort_by(f64::total_cmp);
        println!(
            "| {} | {} (p5 / p10 / p50) | {:.3} | {:.3} | {:.3} | |",
            mode.as_str(),
            answerable.name,
            quantile(&sorted, 50),
            quantile(&sorted, 100),
            quantile(&sorted, 500)
        );
        calibration.sort_by(f64::total_cmp);
        let derived = (quantile(&calibration, 950) / 0.05).floor().mul_add(0.05, 0.05);
        rows.push((mode, per_set, derived));
    }

    // Each answerable question searched once with no floor: a floor then keeps the hits at or above it,
    // so every floor's nDCG@10 comes from the same rankings.
    println!(
        "\nShare of no-answer questions whose turn gets at least one passage (calibration half: even lines; held \
         out: odd lines; all), and nDCG@10 on the answerable questions without and with the floor, by floor \
         (* the floor in force: hybrid {}, vector {}, full_text {}; r the rule's floor):\n",
        floors.hybrid, floors.vector, floors.full_text
    );
    println!("| mode | floor | wrongly grounded (calibration) | (held out) | (all) | nDCG@10 | with floor | cost |");
    println!("|---|---|---|---|---|---|---|---|");
    for (mode, per_set, derived) in rows {
        let in_force = match mode {
            SearchMode::Hybrid => floors.hybrid,
            SearchMode::Vector => floors.vector,
            SearchMode::FullText => floors.full_text,
        };
        let mut rankings = Vec::new();
        for (id, question) in &judged {
            let hits = searcher.hits(vaswani, question, search::MAX_K, mode, &Floors::NONE).await;
            let ranked: Vec<(String, f64)> = hits
                .iter()
                .map(|hit| {
                    (hit.source_path.clone(), hit.relevance.map_or(f64::NEG_INFINITY, |relevance| relevance.value))
                })
                .collect();
            rankings.push((*id, ranked));
        }
        let mut candidates: Vec<f64> = (1..=12).map(|step| f64::from(step) * 0.05).collect();
        candidates.extend([in_force, derived]);
        candidates.sort_by(f64::total_cmp);
        candidates.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        for floor in candidates {
            // A turn gets passages when its best hit passes; tops were measured with no floor, so compare here.
            let grounded = |half: Option<usize>| {
                let (mut wrong, mut total) = (0_u32, 0_u32);
                for tops in &per_set {
                    for (index, top) in tops.iter().enumerate() {
                        if half.is_some_and(|half| index % 2 != half) {
                            continue;
                        }
                        total += 1;
                        wrong += u32::from(*top >= floor);
                    }
                }
                100.0 * f64::from(wrong) / f64::from(total)
            };
            let (mut without, mut with) = (0.0, 0.0);
            for (id, ranked) in &rankings {
                let all: Vec<String> = ranked.iter().map(|(path, _)| path.clone()).collect();
                let kept: Vec<String> =
                    ranked.iter().filter(|(_, value)| *value >= floor).map(|(path, _)| path.clone()).collect();
                without += ndcg(&all, &judgments[*id]);
                with += ndcg(&kept, &judgments[*id]);
            }
            let count = judged.len() as f64;
            let marks = match ((floor - in_force).abs() < 1e-9, (floor - derived).abs() < 1e-9) {
                (true, true) => " * r",
                (true, false) => " *",
                (false, true) => " r",
                (false, false) => "",
            };
            println!(
                "| {} | {floor:.2}{marks} | {:.1} % | {:.1} % | {:.1} % | {:.3} | {:.3} | {:.4} |",
                mode.as_str(),
                grounded(Some(0)),
                grounded(Some(1)),
                grounded(None),
                without / count,
                with / count,
                (without - with) / count
            );
        }
    }
    server.stop();
}
