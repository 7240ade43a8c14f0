//! SQL for documents and chunks; every function runs inside a tenant-bound transaction.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::chunking::Chunk;
use super::{Document, NewDocument};
use crate::ids::{CollectionId, TenantId};

/// `original_byte_size` is null where a writer did not set it (text sent as such): the text's own size.
const DOCUMENT_COLUMNS: &str = "id, source_path, title, collection_ids, \
     ARRAY(SELECT name FROM collections WHERE collections.id = ANY(collection_ids) ORDER BY name) AS collections, \
     content_hash, byte_size, chunk_count, \
     created_at, updated_at, original_media_type, coalesce(original_byte_size, byte_size) AS original_byte_size";

/// The tenant's own document at `source_path` (never a shared one: the caller writes its own tenant).
pub async fn find_by_path(connection: &mut PgConnection, source_path: &str) -> Result<Option<Document>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query
        .push(DOCUMENT_COLUMNS)
        .push(" FROM documents WHERE tenant_id = current_tenant_id() AND source_path = ")
        .push_bind(source_path);
    query.build_query_as().fetch_optional(connection).await
}

pub async fn list(connection: &mut PgConnection) -> Result<Vec<Document>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query.push(DOCUMENT_COLUMNS).push(" FROM documents WHERE tenant_id = current_tenant_id() ORDER BY source_path");
    query.build_query_as().fetch_all(connection).await
}

fn byte_size(document: &NewDocument) -> i32 {
    i32::try_from(document.content.len()).unwrap_or(i32::MAX)
}

/// The original file's media type and size; text sent as such is Markdown of its own size.
fn original(document: &NewDocument) -> (&str, i64) {
    match &document.original {
        Some(original) => (&original.media_type, original.byte_size),
        None => (super::formats::Format::Markdown.media_type(), i64::from(byte_size(document))),
    }
}

fn chunk_count(chunks: &[Chunk]) -> i32 {
    i32::try_from(chunks.len()).unwrap_or(i32::MAX)
}

/// Stores a new document and its chunks; the caller then adds them to the statistics
/// ([`add_to_statistics`]), last.
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    (document, collection_ids): (&NewDocument, &[CollectionId]),
    chunks: &[Chunk],
) -> Result<(Document, Vec<uuid::Uuid>), sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO documents (id, tenant_id, source_path, title, collection_ids, content_hash, byte_size, \
         chunk_count, original_media_type, original_byte_size) VALUES (",
    );
    let (media_type, original_size) = original(document);
    let mut values = query.separated(", ");
    values
        .push_bind(uuid::Uuid::now_v7())
        .push_bind(tenant_id)
        .push_bind(&document.source_path)
        .push_bind(&document.title)
        .push_bind(collection_ids)
        .push_bind(&document.content_hash)
        .push_bind(byte_size(document))
        .push_bind(chunk_count(chunks))
        .push_bind(media_type)
        .push_bind(original_size);
    query.push(") RETURNING ").push(DOCUMENT_COLUMNS);
    let created: Document = query.build_query_as().fetch_one(&mut *connection).await?;
    let chunk_ids = insert_chunks(connection, tenant_id, created.id, chunks).await?;
    Ok((created, chunk_ids))
}

/// Replaces a document's content and all its chunks (their vectors go with them), taking the old chunks
/// out of the statistics; the caller adds the new ones ([`add_to_statistics`]), last.
pub async fn replace(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    id: uuid::Uuid,
    (document, collection_ids): (&NewDocument, &[CollectionId]),
    chunks: &[Chunk],
) -> Result<(Document, Vec<uuid::Uuid>), sqlx::Error> {
    remove_from_statistics(&mut *connection, tenant_id, id).await?;
    sqlx::query("DELETE FROM doc_chunks WHERE document_id = $1").bind(id).execute(&mut *connection).await?;
    // The collections change before the new chunks are written, which take them from the document.
    let mut query = QueryBuilder::<Postgres>::new("UPDATE documents SET updated_at = now(), title = ");
    query
        .push_bind(&document.title)
        .push(", collection_ids = ")
        .push_bind(collection_ids)
        .push(", content_hash = ")
        .push_bind(&document.content_hash)
        .push(", byte_size = ")
        .push_bind(byte_size(document))
        .push(", chunk_count = ")
        .push_bind(chunk_count(chunks))
        .push(", original_media_type = ")
        .push_bind(original(document).0)
        .push(", original_byte_size = ")
        .push_bind(original(document).1)
        .push(" WHERE id = ")
        .push_bind(id)
        .push(" RETURNING ")
        .push(DOCUMENT_COLUMNS);
    let updated: Document = query.build_query_as().fetch_one(&mut *connection).await?;
    let chunk_ids = insert_chunks(connection, tenant_id, id, chunks).await?;
    Ok((updated, chunk_ids))
}

/// Inserts the chunks and returns their ids, in order.
async fn insert_chunks(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    document_id: uuid::Uuid,
    chunks: &[Chunk],
) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = chunks.iter().map(|_| uuid::Uuid::now_v7()).collect();
    // Bound parameters per row: 8; PostgreSQL allows 65,535 per statement.
    for (batch, batch_ids) in chunks.chunks(1000).zip(ids.chunks(1000)) {
        let mut query = QueryBuilder::<Postgres>::new(
            "INSERT INTO doc_chunks \
             (id, tenant_id, document_id, chunk_index, content, token_count, heading_path, heading_text) ",
        );
        query.push_values(batch.iter().zip(batch_ids), |mut row, (chunk, id)| {
            row.push_bind(*id)
                .push_bind(tenant_id)
                .push_bind(document_id)
                .push_bind(i32::try_from(chunk.index).unwrap_or(i32::MAX))
                .push_bind(&chunk.content)
                .push_bind(i32::try_from(chunk.token_count).unwrap_or(i32::MAX))
                .push_bind(&chunk.heading_path)
                .push_bind(chunk.heading_path.join(" "));
        });
        query.build().execute(&mut *connection).await?;
    }
    Ok(ids)
}

/// Adds a document's chunks (after [`insert`] or [`replace`]) to the tenant's BM25 statistics: its terms'
/// chunk counts (`term_stats`), the corpus size and length (`corpus_stats`). Every
/// ingestion into a tenant updates the rows of its common words, so the caller does this last, just before
/// committing: the rows stay locked for the least time (done before the vectors were stored, it serialised
/// concurrent ingestions behind each other's HNSW inserts). Rows are taken in lexeme order, here and in
/// [`remove_from_statistics`]: taken in different orders, they deadlocked (both found by the ingestion
/// benchmark).
pub async fn add_to_statistics(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    document_id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO term_stats (tenant_id, lexeme, chunks) \
         SELECT $1, lexeme, count(*) FROM doc_chunks AS c, unnest(tsvector_to_array(c.search_vector)) AS lexeme \
         WHERE c.document_id = $2 GROUP BY lexeme ORDER BY lexeme \
         ON CONFLICT (tenant_id, lexeme) DO UPDATE SET chunks = term_stats.chunks + excluded.chunks",
    )
    .bind(tenant_id)
    .bind(document_id)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO corpus_stats (tenant_id, chunks, tokens) \
         SELECT $1, count(*), coalesce(sum(token_count), 0) FROM doc_chunks WHERE document_id = $2 \
         ON CONFLICT (tenant_id) DO UPDATE \
         SET chunks = corpus_stats.chunks + excluded.chunks, tokens = corpus_stats.tokens + excluded.tokens",
    )
    .bind(tenant_id)
    .bind(document_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes a document's chunks from the tenant's BM25 statistics (before the chunks are deleted): its
/// terms' chunk counts, the corpus size and length.
async fn remove_from_statistics(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    document_id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH counted AS ( \
             SELECT lexeme, count(*) AS chunks \
             FROM doc_chunks AS c, unnest(tsvector_to_array(c.search_vector)) AS lexeme \
             WHERE c.document_id = $2 GROUP BY lexeme \
         ), locked AS ( \
             SELECT t.lexeme FROM term_stats AS t JOIN counted USING (lexeme) \
             WHERE t.tenant_id = $1 ORDER BY t.lexeme FOR UPDATE OF t \
         ) \
         UPDATE term_stats SET chunks = term_stats.chunks - counted.chunks \
         FROM counted JOIN locked USING (lexeme) \
         WHERE term_stats.tenant_id = $1 AND term_stats.lexeme = counted.lexeme",
    )
    .bind(tenant_id)
    .bind(document_id)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "UPDATE corpus_stats SET chunks = corpus_stats.chunks - gone.chunks, tokens = corpus_stats.tokens - gone.tokens \
         FROM (SELECT count(*) AS chunks, coalesce(sum(token_count), 0) AS tokens FROM doc_chunks \
               WHERE document_id = $2) AS gone \
         WHERE corpus_stats.tenant_id = $1",
    )
    .bind(tenant_id)
    .bind(document_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Moves a document into `collection_ids`; its chunks and vectors follow (a trigger, migration 0026).
pub async fn set_collections(
    connection: &mut PgConnection,
    id: uuid::Uuid,
    collection_ids: &[CollectionId],
) -> Result<Document, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("UPDATE documents SET updated_at = now(), collection_ids = ");
    query.push_bind(collection_ids).push(" WHERE id = ").push_bind(id).push(" RETURNING ").push(DOCUMENT_COLUMNS);
    query.build_query_as().fetch_one(connection).await
}

/// Deletes one of the tenant's own documents with its chunks.
pub async fn delete(connection: &mut PgConnection, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
    let owner: Option<TenantId> =
        sqlx::query_scalar("SELECT tenant_id FROM documents WHERE id = $1 AND tenant_id = current_tenant_id()")
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
    let Some(tenant_id) = owner else {
        return Ok(false);
    };
    remove_from_statistics(&mut *connection, tenant_id, id).await?;
    let deleted = sqlx::query("DELETE FROM documents WHERE id = $1 AND tenant_id = current_tenant_id()")
        .bind(id)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// What the transaction tenant set for its searches and turns: its own relevance floors (`None` where it
/// keeps the default), and whether they are reranked when a request does not say.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct SearchSettings {
    #[sqlx(flatten)]
    pub floors: super::relevance::TenantFloors,
    pub rerank: bool,
}

/// The transaction tenant's [`SearchSettings`], in one read.
pub async fn search_settings(connection: &mut PgConnection) -> Result<SearchSettings, sqlx::Error> {
    let settings = sqlx::query_as(
        "SELECT relevance_floor_hybrid, relevance_floor_vector, relevance_floor_full_text, rerank \
         FROM tenant_configs",
    )
    .fetch_optional(connection)
    .await?;
    Ok(settings.unwrap_or_default())
}
