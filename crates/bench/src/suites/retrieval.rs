//! Retrieval: hybrid search latency through `POST /api/v1/search`, for a tenant with the large corpus and
//! for tiny tenants beside it; recall@10 of the approximate vector search (HNSW with iterative scans,
//! under row-level security, exactly the service's query) against exact search over the same rows; and
//! full-text search alone (exact BM25), for the short questions and for long ones (60 words of a corpus
//! document, as a user pasting a paragraph asks).

use std::collections::HashSet;
use std::time::Instant;

use pgvector::Vector;
use serde::Serialize;
use serde_json::json;
use switchboard::db;
use switchboard::embeddings::EmbeddingModel;
use switchboard::ids::TenantId;
use switchboard::retrieval::{FUSION_DEPTH, search, vectors};

use crate::corpus;
use crate::env::{self, Service, Tenant};
use crate::load::{self, Percentiles, StreamKind, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct TenantRetrieval {
    pub tenant: String,
    pub chunks: i64,
    /// `POST /api/v1/search`, k = 10, one at a time: embedding the question (mock), BM25 + HNSW, fusion.
    pub hybrid_search: Summary,
    /// The vector search alone, in the database, as deep as a search asks (`FUSION_DEPTH`), in milliseconds.
    pub vector_search_p50_ms: f64,
    pub vector_search_p99_ms: f64,
    pub recall_at_10: f64,
    /// The same, a result counted when it is as near as the exact tenth (ties with it are as right: which
    /// of several equally near chunks the exact scan lists first is the chunk id's order, nothing more).
    pub recall_at_10_ties: f64,
    pub queries: usize,
    /// `search::full_text` alone, in the database, as deep as a search asks: one row per kind of question.
    pub full_text: Vec<FullTextSearch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FullTextSearch {
    pub questions: &'static str,
    /// How many results were asked for: a search asks `FUSION_DEPTH`; fewer shows what the depth costs.
    pub depth: i64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub queries: usize,
}

/// Words in a long question.
const LONG_QUESTION_WORDS: usize = 60;

/// Long question `index`: the first words of the text of a document of the corpus picked by `seed`.
fn long_question(seed: u64, index: usize, documents: usize) -> String {
    let mut random = corpus::Seeded::new(seed ^ 0x1019_0000 ^ u64::try_from(index).unwrap_or(u64::MAX));
    let picked = usize::try_from(random.next() % u64::try_from(documents.max(1)).unwrap_or(1)).unwrap_or(0);
    let (_, content) = corpus::document(seed, picked);
    let words: Vec<&str> = content
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .take(LONG_QUESTION_WORDS)
        .collect();
    words.join(" ")
}

/// Times `search::full_text` for each question, as the tenant, in a transaction of its own.
async fn full_text(
    app: &sqlx::PgPool,
    tenant_id: uuid::Uuid,
    kind: &'static str,
    questions: &[String],
    depth: i64,
) -> anyhow::Result<FullTextSearch> {
    let mut latencies = Vec::with_capacity(questions.len());
    for question in questions {
        let started = Instant::now();
        let mut transaction = db::begin_tenant(app, TenantId(tenant_id)).await?;
        search::full_text(&mut transaction, question, depth).await?;
        transaction.commit().await?;
        latencies.push(started.elapsed());
    }
    let percentiles = Percentiles::of(&mut latencies).unwrap_or_default();
    eprintln!(
        "  full text, {kind} questions, {depth} deep: p50 {:.2} ms, p99 {:.2} ms",
        percentiles.p50, percentiles.p99
    );
    Ok(FullTextSearch {
        questions: kind,
        depth,
        p50_ms: percentiles.p50,
        p99_ms: percentiles.p99,
        queries: questions.len(),
    })
}

/// Measures one tenant: `queries` searches over HTTP, then `queries` vector searches with recall.
pub async fn measure(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    slug: &str,
    seed: u64,
    queries: usize,
    owner: &sqlx::PgPool,
    app: &sqlx::PgPool,
) -> anyhow::Result<TenantRetrieval> {
    let url = format!("{}/api/v1/search", service.base);
    let hybrid_search = load::sequential(queries, |i, intended| {
        let request =
            client.post(&url).bearer_auth(&tenant.key).json(&json!({ "query": corpus::question(seed, i), "k": 10 }));
        load::send(request, intended, None::<StreamKind>)
    })
    .await;

    let tenant_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1").bind(slug).fetch_one(owner).await?;
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM doc_chunks WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(owner)
        .await?;
    let model = EmbeddingModel::parse(env::EMBEDDING_MODEL, Some(env::EMBEDDING_DIMENSIONS))?;
    let mut found_total = 0usize;
    let mut found_or_tied_total = 0usize;
    let mut expected_total = 0usize;
    let mut latencies = Vec::with_capacity(queries);
    for i in 0..queries {
        let query = mock_upstream::embedding::embed(&corpus::question(seed, i), env::EMBEDDING_DIMENSIONS as usize);
        let started = Instant::now();
        let mut transaction = db::begin_tenant(app, TenantId(tenant_id)).await?;
        // As a search asks it: as deep as fusion wants; its first ten are what recall@10 compares.
        if i == 0 && std::env::var_os("BENCH_EXPLAIN").is_some() {
            explain(&mut transaction, &model, &query).await?;
        }
        let approximate = vectors::nearest(&mut transaction, &model, &query, FUSION_DEPTH).await?;
        transaction.commit().await?;
        latencies.push(started.elapsed());
        let exact = exact_nearest(app, &model, tenant_id, &query).await?;
        let tenth = exact.last().map_or(f64::INFINITY, |(_, distance)| *distance);
        found_or_tied_total +=
            approximate.iter().take(10).filter(|ranked| 1.0 - ranked.score <= tenth + TIED_DISTANCE).count();
        let approximate: HashSet<uuid::Uuid> = approximate.iter().take(10).map(|ranked| ranked.chunk_id).collect();
        found_total += exact.iter().filter(|(id, _)| approximate.contains(id)).count();
        expected_total += exact.len();
    }
    let vector_search = Percentiles::of(&mut latencies).unwrap_or_default();
    // The tenant's documents, from its chunks: each document of the corpus is about that many chunks.
    let documents = usize::try_from(chunks).unwrap_or(0).div_ceil(corpus::SECTIONS_PER_DOCUMENT);
    let short: Vec<String> = (0..queries).map(|i| corpus::question(seed, i)).collect();
    let long: Vec<String> = (0..queries).map(|i| long_question(seed, i, documents)).collect();
    eprintln!("  {slug}: {chunks} chunks");
    let full_text = vec![
        full_text(app, tenant_id, "short (5 words)", &short, FUSION_DEPTH).await?,
        full_text(app, tenant_id, "long (60 words)", &long, FUSION_DEPTH).await?,
        full_text(app, tenant_id, "long (60 words)", &long, 30).await?,
        full_text(app, tenant_id, "long (60 words)", &long, 10).await?,
    ];
    Ok(TenantRetrieval {
        tenant: slug.to_owned(),
        chunks,
        hybrid_search,
        vector_search_p50_ms: vector_search.p50,
        vector_search_p99_ms: vector_search.p99,
        recall_at_10: found_total as f64 / expected_total.max(1) as f64,
        recall_at_10_ties: found_or_tied_total as f64 / expected_total.max(1) as f64,
        queries,
        full_text,
    })
}

/// Prints the plan of the service's vector search (`BENCH_EXPLAIN=1`): what the index did.
async fn explain(connection: &mut sqlx::PgConnection, model: &EmbeddingModel, query: &[f32]) -> anyhow::Result<()> {
    sqlx::query(
        "SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
    )
    .bind(vectors::ef_search(FUSION_DEPTH).to_string())
    .execute(&mut *connection)
    .await?;
    let statement = format!("EXPLAIN (ANALYZE, BUFFERS) {}", vectors::through_index_statement(model));
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .bind(Vector::from(query.to_vec()))
        .bind(FUSION_DEPTH)
        .fetch_all(connection)
        .await?;
    eprintln!("{}", plan.join("\n"));
    Ok(())
}

/// Distances this close to the exact tenth's are ties with it (both sides compute them in full precision).
const TIED_DISTANCE: f64 = 1e-6;

/// The true 10 nearest among the rows the tenant sees (under row-level security, as the service's search:
/// its own chunks, and the shared corpus's when it has opted in), by a full scan, with their distances.
async fn exact_nearest(
    app: &sqlx::PgPool,
    model: &EmbeddingModel,
    tenant_id: uuid::Uuid,
    query: &[f32],
) -> anyhow::Result<Vec<(uuid::Uuid, f64)>> {
    let mut transaction = db::begin_tenant(app, TenantId(tenant_id)).await?;
    sqlx::query("SET LOCAL enable_indexscan = off").execute(&mut *transaction).await?;
    let ids = sqlx::query_as(
        "SELECT chunk_id, embedding <=> $2 FROM chunk_embeddings WHERE model = $1 \
         ORDER BY embedding <=> $2, chunk_id LIMIT 10",
    )
    .bind(&model.id)
    .bind(Vector::from(query.to_vec()))
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(ids)
}
