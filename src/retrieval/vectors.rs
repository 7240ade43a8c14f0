//! Chunk vectors in pgvector, one row per chunk and embedding model. Each model has its own partial HNSW
//! index (cosine) over `embedding::halfvec(n)`, made at start by the owner, so two models can be searched
//! side by side while the new one fills in. The table keeps full precision: the index, at half the size
//! (and up to 4,000 dimensions), finds the candidates, and their exact distances order them. The index's
//! settings come from the benchmark suite's `vectors` runs (crates/bench/README.md): on the corpus's
//! 100k vectors searched at `ef_search` 200, `ef_construction` 128 finds 0.98 of the exact ten where
//! pgvector's default 64 finds 0.90; a wider graph (`m` 24) adds little (0.987) and builds 40 % slower.
//!
//! Row-level security filters *after* the index: the nearest vectors of a shared index may all belong to
//! other tenants, leaving a small tenant with nothing. pgvector's iterative scan keeps walking the graph
//! until enough visible rows are found (up to `hnsw.max_scan_tuples`); when it still finds fewer than
//! asked, an exact scan of the tenant's own and the shared vectors (few, by then) finishes the job, so a
//! search always returns `depth` results when that many exist.

use pgvector::Vector;
use sqlx::{AssertSqlSafe, PgConnection};

use super::fusion::Ranked;
use crate::embeddings::EmbeddingModel;
use crate::ids::TenantId;

/// The HNSW graph's degree and build-time breadth (pgvector's `m` and `ef_construction`).
pub const HNSW_M: u32 = 16;
pub const HNSW_EF_CONSTRUCTION: u32 = 128;

/// How wide a search of `depth` results looks (`hnsw.ef_search`): four times as deep, and never under 400.
/// Through the service (row-level security drops the other tenants' vectors the graph walk meets), at
/// 200 wide the benchmark's large tenant (116,718 of 143,972 chunks) got 0.92–0.93 of the exact ten at a
/// p50 of 10 ms; at 400 wide, 0.97 at 15 ms (crates/bench/README.md, 2026-12-07).
pub fn ef_search(depth: i64) -> i64 {
    (depth * 4).clamp(400, 1000)
}

/// Records the model and makes its HNSW index, as the database owner (the application role owns no table).
/// The model's indexes of an earlier layout (full precision) or other settings are dropped once the new one
/// is built; one left invalid by an interrupted build is built again.
pub async fn register_model(owner: &mut PgConnection, model: &EmbeddingModel) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO embedding_models (id, dimensions) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(&model.id)
        .bind(i32::try_from(model.dimensions).unwrap_or(i32::MAX))
        .execute(&mut *owner)
        .await?;
    // One process at a time: a build in progress looks invalid to another, which must not drop it. Tried,
    // not waited for, so that no statement of ours holds a snapshot the concurrent build would wait on.
    while !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(REGISTRATION_LOCK)
        .fetch_one(&mut *owner)
        .await?
    {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let registered = build_index(owner, model).await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(REGISTRATION_LOCK).execute(&mut *owner).await?;
    registered
}

/// The advisory lock that serializes index builds between processes.
const REGISTRATION_LOCK: i64 = 0x5357_4944_5845_4e31;

async fn build_index(owner: &mut PgConnection, model: &EmbeddingModel) -> Result<(), sqlx::Error> {
    let name = index_name(model);
    // `None`: no such index; `Some(false)`: left invalid by an interrupted build.
    let valid: Option<bool> = sqlx::query_scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)")
        .bind(&name)
        .fetch_optional(&mut *owner)
        .await?;
    if valid == Some(false) {
        tracing::warn!(index = %name, "the vector index was left invalid by an interrupted build: building it again");
        sqlx::query(AssertSqlSafe(format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))).execute(&mut *owner).await?;
    }
    if valid != Some(true) {
        // After an upgrade from the full-precision index, the vectors already stored are indexed now.
        tracing::info!(index = %name, model = %model.id, "building the vector index (once; about a minute per 100,000 chunks)");
    }
    let statement = format!(
        // Concurrently: other instances keep writing vectors while a new model's index is built.
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON chunk_embeddings \
         USING hnsw ({} halfvec_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) \
         WHERE model = {}",
        indexed_expression(model),
        literal(&model.id),
    );
    sqlx::query(AssertSqlSafe(statement)).execute(&mut *owner).await?;
    // The model's indexes of earlier layouts or settings, which its searches no longer use.
    let earlier: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'chunk_embeddings' \
         AND indexname LIKE 'chunk_embeddings_hnsw_%' AND right(indexname, 16) = $1 AND indexname <> $2",
    )
    .bind(&model_digest(model)[..16])
    .bind(&name)
    .fetch_all(&mut *owner)
    .await?;
    for index in earlier {
        sqlx::query(AssertSqlSafe(format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quoted(&index))))
            .execute(&mut *owner)
            .await?;
    }
    Ok(())
}

/// The index's name says its layout and settings, so that changing them builds a new one.
fn index_name(model: &EmbeddingModel) -> String {
    format!("chunk_embeddings_hnsw_h{HNSW_M}_{HNSW_EF_CONSTRUCTION}_{}", &model_digest(model)[..16])
}

fn model_digest(model: &EmbeddingModel) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(model.id.as_bytes()))
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn indexed_expression(model: &EmbeddingModel) -> String {
    format!("(embedding::halfvec({}))", model.dimensions)
}

/// A model id as an SQL literal. Ids are already restricted to letters, digits and `-_./@`
/// (`EmbeddingModel::parse`); quoting is belt and braces.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The text a chunk is embedded from: its headings give the passage its topic.
pub fn embedding_text(heading_path: &[String], content: &str) -> String {
    if heading_path.is_empty() { content.to_owned() } else { format!("{}\n\n{content}", heading_path.join(" > ")) }
}

/// Stores one vector per chunk of `tenant_id` for `model`; a chunk that has one already keeps it, a chunk
/// deleted meanwhile or of another tenant (a shared one, visible but not ours) is skipped.
pub async fn store(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    model: &EmbeddingModel,
    chunk_ids: &[uuid::Uuid],
    vectors: Vec<Vec<f32>>,
) -> Result<(), sqlx::Error> {
    let vectors: Vec<Vector> = vectors.into_iter().map(Vector::from).collect();
    sqlx::query(
        "INSERT INTO chunk_embeddings (chunk_id, tenant_id, model, embedding) \
         SELECT v.chunk_id, $2, $3, v.embedding FROM unnest($1::uuid[], $4::vector[]) AS v (chunk_id, embedding) \
         JOIN doc_chunks AS c ON c.id = v.chunk_id AND c.tenant_id = $2 \
         ON CONFLICT (chunk_id, model) DO NOTHING",
    )
    .bind(chunk_ids)
    .bind(tenant_id)
    .bind(&model.id)
    .bind(vectors)
    .execute(connection)
    .await?;
    Ok(())
}

/// The `depth` chunks nearest to `query` by cosine similarity, among those the transaction's tenant sees.
pub async fn nearest(
    connection: &mut PgConnection,
    model: &EmbeddingModel,
    query: &[f32],
    depth: i64,
) -> Result<Vec<Ranked>, sqlx::Error> {
    let query = Vector::from(query.to_vec());
    sqlx::query(
        "SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
    )
    .bind(ef_search(depth).to_string())
    .execute(&mut *connection)
    .await?;
    let through_index = through_index_statement(model);
    let found: Vec<Ranked> =
        sqlx::query_as(AssertSqlSafe(through_index)).bind(&query).bind(depth).fetch_all(&mut *connection).await?;
    if i64::try_from(found.len()).unwrap_or(i64::MAX) >= depth {
        return Ok(found);
    }
    // Not the indexed expression, so not the index: every visible vector of the model, measured.
    sqlx::query_as(
        "SELECT chunk_id, 1 - (embedding <=> $1) AS score FROM chunk_embeddings \
         WHERE model = $3 AND tenant_id IN (current_tenant_id(), '00000000-0000-0000-0000-000000000000') \
         ORDER BY embedding <=> $1, chunk_id LIMIT $2",
    )
    .bind(&query)
    .bind(depth)
    .bind(&model.id)
    .fetch_all(connection)
    .await
}

/// The search through `model`'s index: `$1` the question's vector, `$2` how many. The index finds in half
/// precision and relaxed order; exact distances order what it found.
pub fn through_index_statement(model: &EmbeddingModel) -> String {
    let expression = indexed_expression(model);
    let dimensions = model.dimensions;
    format!(
        "WITH nearest AS MATERIALIZED ( \
             SELECT chunk_id, embedding FROM chunk_embeddings WHERE model = {model_id} \
             ORDER BY {expression} <=> $1::vector({dimensions})::halfvec({dimensions}) LIMIT $2 \
         ) SELECT chunk_id, 1 - distance AS score \
           FROM (SELECT chunk_id, embedding <=> $1::vector({dimensions}) AS distance FROM nearest) AS measured \
           ORDER BY distance, chunk_id",
        model_id = literal(&model.id),
    )
}

/// A chunk that has no vector from the model yet, with the text to embed.
#[derive(Debug, sqlx::FromRow)]
pub struct Unembedded {
    pub id: uuid::Uuid,
    pub heading_path: Vec<String>,
    pub content: String,
}

/// Which chunks a sweep looks at for vectors a model lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// Every chunk of the tenant's: the model is new, or was switched back to.
    EveryChunk,
    /// The chunks of the documents written without vectors ([`owe_vectors`]): the model is complete
    /// otherwise.
    WrittenWithout,
}

/// Up to `limit` of the transaction tenant's own chunks that `model` has not embedded, among those `owed`
/// names, in id order after `after` (so one pass meets each chunk once, even one that cannot be embedded).
pub async fn unembedded(
    connection: &mut PgConnection,
    model: &EmbeddingModel,
    owed: Owed,
    after: uuid::Uuid,
    limit: i64,
) -> Result<Vec<Unembedded>, sqlx::Error> {
    // Two statements, not one with a flag: a generic plan could not drop the unneeded condition, and the
    // owed documents' chunks are found through their documents, not among every chunk.
    let statement = match owed {
        Owed::EveryChunk => {
            "SELECT c.id, c.heading_path, c.content FROM doc_chunks AS c \
             WHERE c.tenant_id = current_tenant_id() AND c.id > $3 \
               AND NOT EXISTS (SELECT 1 FROM chunk_embeddings AS e WHERE e.chunk_id = c.id AND e.model = $1) \
             ORDER BY c.id LIMIT $2"
        }
        Owed::WrittenWithout => {
            "SELECT c.id, c.heading_path, c.content FROM documents_owed_vectors AS owed \
             JOIN doc_chunks AS c ON c.document_id = owed.document_id \
             WHERE c.tenant_id = current_tenant_id() AND c.id > $3 \
               AND NOT EXISTS (SELECT 1 FROM chunk_embeddings AS e WHERE e.chunk_id = c.id AND e.model = $1) \
             ORDER BY c.id LIMIT $2"
        }
    };
    sqlx::query_as(statement).bind(&model.id).bind(limit).bind(after).fetch_all(connection).await
}

/// Notes that `documents` of the transaction's tenant were written without vectors, for the backfill.
pub async fn owe_vectors(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    documents: &[uuid::Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO documents_owed_vectors (tenant_id, document_id) SELECT $1, unnest($2::uuid[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(documents)
    .execute(connection)
    .await?;
    Ok(())
}

/// Forgets the transaction tenant's documents owed vectors that have every one from `model` now.
pub async fn settle_owed(connection: &mut PgConnection, model: &EmbeddingModel) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM documents_owed_vectors AS owed WHERE NOT EXISTS ( \
             SELECT 1 FROM doc_chunks AS c WHERE c.document_id = owed.document_id \
               AND NOT EXISTS (SELECT 1 FROM chunk_embeddings AS e WHERE e.chunk_id = c.id AND e.model = $1))",
    )
    .bind(&model.id)
    .execute(connection)
    .await?;
    Ok(())
}

/// The tenants with documents written without vectors, across tenants (the sweeper's policy).
pub async fn tenants_owed(pool: &sqlx::PgPool) -> Result<Vec<TenantId>, sqlx::Error> {
    let mut transaction = crate::db::begin_with_setting(pool, "app.backfill_sweeper", "on").await?;
    let tenants = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM documents_owed_vectors ORDER BY tenant_id")
        .fetch_all(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(tenants)
}

/// A model this database has held, and whether every chunk has its vector.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredModel {
    pub id: String,
    pub dimensions: i32,
    pub complete: bool,
}

/// Every model, the most recently completed first.
pub async fn stored_models(connection: &mut PgConnection) -> Result<Vec<StoredModel>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, dimensions, complete_at IS NOT NULL AS complete FROM embedding_models \
         ORDER BY complete_at DESC NULLS LAST, created_at DESC",
    )
    .fetch_all(connection)
    .await
}

/// Chunks were stored with vectors from `model` only (or, with `None`, from none): every other model lacks
/// them now, so none of them may pass for complete when the configuration changes back.
pub async fn mark_others_incomplete(
    connection: &mut PgConnection,
    model: Option<&EmbeddingModel>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE embedding_models SET complete_at = NULL \
         WHERE complete_at IS NOT NULL AND id IS DISTINCT FROM $1",
    )
    .bind(model.map(|model| model.id.as_str()))
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn mark_complete(connection: &mut PgConnection, model: &EmbeddingModel) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE embedding_models SET complete_at = now() WHERE id = $1 AND complete_at IS NULL")
        .bind(&model.id)
        .execute(connection)
        .await?;
    Ok(())
}
