//! Vector indexes at scale, in the database alone: the corpus's chunk vectors (the mock's embeddings of
//! the texts the service would embed) bulk-loaded into a table of their own, then, for each way of
//! indexing them (full or half precision, graph degree `m`, `ef_construction`), the build time, the
//! index's size, and for each `hnsw.ef_search` the recall@10 against an exact scan, the latency of one
//! search at a time, and the searches per second of two at a time (one per core). Each search asks as
//! deep as the service's does (`FUSION_DEPTH`) and orders what the index found by exact distance, as the
//! service does; recall compares its first ten. What the service's index settings are chosen from; the
//! retrieval suite measures the service's own query, under row-level security.

use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use pgvector::Vector;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool};

use switchboard::retrieval::vectors;

use crate::corpus;
use crate::load::Percentiles;

const DIMENSIONS: usize = 384;
/// Vectors per insert statement.
const BATCH: usize = 5_000;
/// How deep a search asks, as the service's fusion does.
const DEPTH: i64 = switchboard::retrieval::FUSION_DEPTH;
/// The results recall counts.
const K: i64 = 10;

#[derive(Debug, Clone)]
pub struct Plan {
    pub vectors: usize,
    pub queries: usize,
    pub indexes: Vec<IndexKind>,
    pub ef_search: Vec<u32>,
}

/// One way of indexing the vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndexKind {
    /// `true`: `halfvec` (2 bytes a dimension) in the index; the table keeps full precision.
    pub half: bool,
    pub m: u32,
    pub ef_construction: u32,
}

impl IndexKind {
    /// The index the service makes (`retrieval::vectors`).
    pub const SERVICE: Self = Self { half: true, m: vectors::HNSW_M, ef_construction: vectors::HNSW_EF_CONSTRUCTION };
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexRun {
    pub index: IndexKind,
    pub vectors: usize,
    pub build_s: f64,
    pub index_mib: f64,
    pub searches: Vec<Searches>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Searches {
    pub ef_search: u32,
    pub recall_at_10: f64,
    pub latency: Percentiles,
    /// Two connections searching at once, each through every query.
    pub per_second: f64,
}

/// Loads the vectors into a database of their own on `server_options`, then measures each index kind.
pub async fn run(server_options: &PgConnectOptions, seed: u64, plan: &Plan) -> anyhow::Result<Vec<IndexRun>> {
    switchboard::db::create_database_if_missing(server_options, "vectors").await?;
    let pool = PgPoolOptions::new().max_connections(2).connect_with(server_options.clone().database("vectors")).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS vector").execute(&pool).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_vectors").execute(&pool).await?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE bench_vectors (id int PRIMARY KEY, embedding vector({DIMENSIONS}) NOT NULL)"
    )))
    .execute(&pool)
    .await?;
    let started = Instant::now();
    load(&pool, seed, plan.vectors).await?;
    sqlx::query("VACUUM ANALYZE bench_vectors").execute(&pool).await?;
    eprintln!("  {} vectors loaded in {:.1} s", plan.vectors, started.elapsed().as_secs_f64());

    let queries: Vec<Vector> = (0..plan.queries)
        .map(|i| Vector::from(mock_upstream::embedding::embed(&corpus::question(seed, i), DIMENSIONS)))
        .collect();
    let started = Instant::now();
    let mut exact = Vec::with_capacity(queries.len());
    for query in &queries {
        exact.push(nearest(&pool, query).await?);
    }
    eprintln!("  exact answers in {:.1} s", started.elapsed().as_secs_f64());

    let mut runs = Vec::new();
    for &index in &plan.indexes {
        runs.push(measure(&pool, index, plan, &queries, &exact).await?);
    }
    pool.close().await;
    Ok(runs)
}

/// Inserts `count` vectors: each document's chunks in order, `BATCH` a statement, computed on the
/// blocking pool while the previous batch is written.
async fn load(pool: &PgPool, seed: u64, count: usize) -> anyhow::Result<()> {
    let batches = count.div_ceil(BATCH);
    futures::stream::iter(0..batches)
        .map(|batch| {
            tokio::task::spawn_blocking(move || {
                let first = batch * BATCH;
                let last = (first + BATCH).min(count);
                let mut texts = Vec::with_capacity(BATCH);
                let mut document = first / corpus::SECTIONS_PER_DOCUMENT;
                let mut skip = first % corpus::SECTIONS_PER_DOCUMENT;
                while texts.len() < last - first {
                    texts.extend(
                        corpus::chunk_texts(seed, document).into_iter().skip(skip).take(last - first - texts.len()),
                    );
                    document += 1;
                    skip = 0;
                }
                let ids: Vec<i32> = (first..last).map(|id| i32::try_from(id).unwrap_or(i32::MAX)).collect();
                let vectors: Vec<Vector> =
                    texts.iter().map(|text| Vector::from(mock_upstream::embedding::embed(text, DIMENSIONS))).collect();
                (ids, vectors)
            })
        })
        .buffered(2)
        .map_err(anyhow::Error::from)
        .try_for_each(|(ids, vectors)| async move {
            sqlx::query("INSERT INTO bench_vectors SELECT * FROM unnest($1::int[], $2::vector[])")
                .bind(ids)
                .bind(vectors)
                .execute(pool)
                .await?;
            Ok(())
        })
        .await
}

/// The ten nearest ids to `query` by a full scan (before any index exists).
async fn nearest(pool: &PgPool, query: &Vector) -> anyhow::Result<Vec<i32>> {
    Ok(sqlx::query_scalar("SELECT id FROM bench_vectors ORDER BY embedding <=> $1, id LIMIT $2")
        .bind(query)
        .bind(K)
        .fetch_all(pool)
        .await?)
}

impl IndexKind {
    fn expression(self) -> String {
        if self.half { format!("(embedding::halfvec({DIMENSIONS}))") } else { "embedding".to_owned() }
    }

    fn query_type(self) -> String {
        if self.half { format!("halfvec({DIMENSIONS})") } else { format!("vector({DIMENSIONS})") }
    }

    fn operators(self) -> &'static str {
        if self.half { "halfvec_cosine_ops" } else { "vector_cosine_ops" }
    }

    /// The search through the index: the index finds, exact distances order what it found (as the
    /// service does, so half precision costs no order among the found).
    fn search_statement(self) -> String {
        format!(
            "WITH found AS MATERIALIZED (SELECT id, embedding FROM bench_vectors \
             ORDER BY {expression} <=> $1::vector({DIMENSIONS})::{query_type} LIMIT $2) \
             SELECT id FROM found ORDER BY embedding <=> $1, id",
            expression = self.expression(),
            query_type = self.query_type(),
        )
    }
}

/// Builds `index`, measures every `ef_search` of the plan, and drops it.
async fn measure(
    pool: &PgPool,
    index: IndexKind,
    plan: &Plan,
    queries: &[Vector],
    exact: &[Vec<i32>],
) -> anyhow::Result<IndexRun> {
    let mut connection = pool.acquire().await?;
    // Room for the whole graph in memory, and the second core building beside the leader.
    sqlx::query("SET maintenance_work_mem = '4GB'").execute(&mut *connection).await?;
    sqlx::query("SET max_parallel_maintenance_workers = 1").execute(&mut *connection).await?;
    let started = Instant::now();
    sqlx::query(AssertSqlSafe(format!(
        "CREATE INDEX bench_vectors_hnsw ON bench_vectors USING hnsw ({} {}) WITH (m = {}, ef_construction = {})",
        index.expression(),
        index.operators(),
        index.m,
        index.ef_construction
    )))
    .execute(&mut *connection)
    .await?;
    let build_s = started.elapsed().as_secs_f64();
    let index_bytes: i64 =
        sqlx::query_scalar("SELECT pg_relation_size('bench_vectors_hnsw')").fetch_one(&mut *connection).await?;
    drop(connection);
    let index_mib = index_bytes as f64 / (1024.0 * 1024.0);
    eprintln!("  {index:?}: built in {build_s:.1} s, {index_mib:.1} MiB");

    let statement = index.search_statement();
    let mut searches = Vec::new();
    for &ef_search in &plan.ef_search {
        let mut connection = pool.acquire().await?;
        sqlx::query(AssertSqlSafe(format!("SET hnsw.ef_search = {ef_search}"))).execute(&mut *connection).await?;
        // Warm: the index read once, so the first ef_search is not charged for reading it from disk.
        for query in queries.iter().take(20) {
            sqlx::query(AssertSqlSafe(statement.clone())).bind(query).bind(DEPTH).execute(&mut *connection).await?;
        }
        let mut latencies = Vec::with_capacity(queries.len());
        let mut found = 0usize;
        let mut expected = 0usize;
        for (query, exact) in queries.iter().zip(exact) {
            let started = Instant::now();
            let ids: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(statement.clone()))
                .bind(query)
                .bind(DEPTH)
                .fetch_all(&mut *connection)
                .await?;
            latencies.push(started.elapsed());
            let first = &ids[..ids.len().min(K as usize)];
            found += exact.iter().filter(|id| first.contains(id)).count();
            expected += exact.len();
        }
        drop(connection);
        let per_second = throughput(pool, &statement, ef_search, queries).await?;
        let latency = Percentiles::of(&mut latencies).unwrap_or_default();
        let recall_at_10 = found as f64 / expected.max(1) as f64;
        eprintln!(
            "    ef_search {ef_search}: recall@10 {recall_at_10:.3}, p50 {:.2} ms, p99 {:.2} ms, {per_second:.0}/s",
            latency.p50, latency.p99
        );
        searches.push(Searches { ef_search, recall_at_10, latency, per_second });
    }
    sqlx::query("DROP INDEX bench_vectors_hnsw").execute(pool).await?;
    Ok(IndexRun { index, vectors: plan.vectors, build_s, index_mib, searches })
}

/// Searches per second with two connections each going through every query.
async fn throughput(pool: &PgPool, statement: &str, ef_search: u32, queries: &[Vector]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let worker = || async {
        let mut connection = pool.acquire().await?;
        sqlx::query(AssertSqlSafe(format!("SET hnsw.ef_search = {ef_search}"))).execute(&mut *connection).await?;
        for query in queries {
            sqlx::query(AssertSqlSafe(statement.to_owned())).bind(query).bind(DEPTH).execute(&mut *connection).await?;
        }
        anyhow::Ok(())
    };
    tokio::try_join!(worker(), worker())?;
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    Ok((2 * queries.len()) as f64 / elapsed.as_secs_f64())
}
