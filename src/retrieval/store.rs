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

/// The tenant's own documents at `source_paths`, locked in path order (the order every writer takes
/// documents in).
pub async fn lock_by_paths(connection: &mut PgConnection, source_paths: &[&str]) -> Result<Vec<Document>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query
        .push(DOCUMENT_COLUMNS)
        .push(" FROM documents WHERE tenant_id = current_tenant_id() AND source_path = ANY(")
        .push_bind(source_paths)
        .push(") ORDER BY source_path FOR UPDATE");
    query.build_query_as().fetch_all(connection).await
}

/// Stores a new document's row; its chunks follow ([`insert_chunks`]).
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    (document, collection_ids): (&NewDocument, &[CollectionId]),
    chunks: &[Chunk],
) -> Result<Document, sqlx::Error> {
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
    query.build_query_as().fetch_one(connection).await
}

/// Replaces a document's row, after its old chunks were removed ([`remove_chunks`]); its new chunks follow
/// ([`insert_chunks`]). The collections change before the new chunks are written, which take them from
/// the document.
pub async fn replace(
    connection: &mut PgConnection,
    id: uuid::Uuid,
    (document, collection_ids): (&NewDocument, &[CollectionId]),
    chunks: &[Chunk],
) -> Result<Document, sqlx::Error> {
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
    query.build_query_as().fetch_one(connection).await
}

/// What removed chunks took out of the BM25 statistics: per lexeme, how many of them held it; and their
/// number and length. Given back to [`apply_statistics`] with the chunks that replace them.
#[derive(Debug, Default)]
pub struct Removed {
    lexemes: Vec<String>,
    chunks_per_lexeme: Vec<i64>,
    chunks: i64,
    tokens: i64,
}

/// Deletes the chunks of `document_ids` (their vectors go with them) and counts what they held.
pub async fn remove_chunks(connection: &mut PgConnection, document_ids: &[uuid::Uuid]) -> Result<Removed, sqlx::Error> {
    if document_ids.is_empty() {
        return Ok(Removed::default());
    }
    // One row per lexeme, and one with no lexeme for the chunks' number and length.
    let rows: Vec<(Option<String>, i64, i64)> = sqlx::query_as(
        "WITH gone AS (DELETE FROM doc_chunks WHERE document_id = ANY($1) RETURNING search_vector, token_count) \
         SELECT lexeme, count(*), 0::bigint FROM gone, unnest(tsvector_to_array(gone.search_vector)) AS lexeme \
         GROUP BY lexeme \
         UNION ALL SELECT NULL, count(*), coalesce(sum(token_count), 0)::bigint FROM gone",
    )
    .bind(document_ids)
    .fetch_all(connection)
    .await?;
    let mut removed = Removed::default();
    for (lexeme, chunks, tokens) in rows {
        match lexeme {
            Some(lexeme) => {
                removed.lexemes.push(lexeme);
                removed.chunks_per_lexeme.push(chunks);
            }
            None => (removed.chunks, removed.tokens) = (chunks, tokens),
        }
    }
    Ok(removed)
}

/// Inserts each document's chunks and returns their ids, document by document, in order.
pub async fn insert_chunks(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    documents: &[(uuid::Uuid, &[Chunk])],
) -> Result<Vec<Vec<uuid::Uuid>>, sqlx::Error> {
    let ids: Vec<Vec<uuid::Uuid>> =
        documents.iter().map(|(_, chunks)| chunks.iter().map(|_| uuid::Uuid::now_v7()).collect()).collect();
    let rows: Vec<(uuid::Uuid, &Chunk, uuid::Uuid)> = documents
        .iter()
        .zip(&ids)
        .flat_map(|((document_id, chunks), ids)| chunks.iter().zip(ids).map(|(chunk, id)| (*document_id, chunk, *id)))
        .collect();
    // Bound parameters per row: 8; PostgreSQL allows 65,535 per statement.
    for batch in rows.chunks(1000) {
        let mut query = QueryBuilder::<Postgres>::new(
            "INSERT INTO doc_chunks \
             (id, tenant_id, document_id, chunk_index, content, token_count, heading_path, heading_text) ",
        );
        query.push_values(batch, |mut row, (document_id, chunk, id)| {
            row.push_bind(*id)
                .push_bind(tenant_id)
                .push_bind(*document_id)
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

/// Brings the tenant's BM25 statistics in step with a write: the chunks of `document_ids` (stored in this
/// transaction) in, the `removed` ones out, as one net change per term (`term_stats`) and one to the
/// corpus size and length (`corpus_stats`). Every ingestion into a tenant changes the rows of its common
/// words, so the caller does this last, just before committing: the rows stay locked for the least time.
/// The terms' rows are taken in one pass in lexeme order and the corpus row last, so concurrent writers
/// queue on the first row they share instead of deadlocking (a replacement that took its old terms out
/// and put its new ones in as two ordered passes did deadlock, and was run again up to three times).
pub async fn apply_statistics(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    document_ids: &[uuid::Uuid],
    removed: &Removed,
) -> Result<(), sqlx::Error> {
    // One pass, in lexeme order; a removed term's negative change always finds its row (it was counted
    // when its chunk was stored), which is why `term_stats` has no `chunks >= 0` check (migration 0045):
    // PostgreSQL checks a proposed row before it finds the conflict that makes it an update.
    // Each term's bounds (migration 0048) widen to the new chunks' even when its count does not change (a
    // chunk replaced by one that holds it more often); a count that stays unknown (NULL) stays unknown
    // while chunks counted before it was kept remain.
    sqlx::query(
        "INSERT INTO term_stats (tenant_id, lexeme, chunks, max_occurrences, min_tokens) \
         SELECT $1, lexeme, sum(chunks)::integer, max(most)::integer, min(fewest)::integer FROM ( \
             SELECT t.lexeme, count(*) AS chunks, max(coalesce(array_length(t.positions, 1), 1)) AS most, \
                    min(c.token_count) AS fewest \
             FROM doc_chunks AS c, unnest(c.search_vector) AS t \
             WHERE c.document_id = ANY($2) GROUP BY t.lexeme \
             UNION ALL \
             SELECT lexeme, -chunks, NULL, NULL FROM unnest($3::text[], $4::bigint[]) AS removed (lexeme, chunks) \
         ) AS parts GROUP BY lexeme HAVING sum(chunks) <> 0 OR max(most) IS NOT NULL ORDER BY lexeme \
         ON CONFLICT (tenant_id, lexeme) DO UPDATE SET chunks = term_stats.chunks + excluded.chunks, \
             max_occurrences = CASE WHEN term_stats.max_occurrences IS NULL AND term_stats.chunks > 0 THEN NULL \
                                    ELSE greatest(term_stats.max_occurrences, excluded.max_occurrences) END, \
             min_tokens = CASE WHEN term_stats.min_tokens IS NULL AND term_stats.chunks > 0 THEN NULL \
                               ELSE least(term_stats.min_tokens, excluded.min_tokens) END",
    )
    .bind(tenant_id)
    .bind(document_ids)
    .bind(&removed.lexemes)
    .bind(&removed.chunks_per_lexeme)
    .execute(&mut *connection)
    .await?;
    // An update where the row exists, since a change may be negative (which `chunks >= 0` would refuse
    // to insert, even where the insert would have become an update).
    sqlx::query(
        "WITH change AS ( \
             SELECT count(*) - $3 AS chunks, coalesce(sum(token_count), 0) - $4 AS tokens \
             FROM doc_chunks WHERE document_id = ANY($2) \
         ), updated AS ( \
             UPDATE corpus_stats SET chunks = corpus_stats.chunks + change.chunks, \
                 tokens = corpus_stats.tokens + change.tokens \
             FROM change WHERE corpus_stats.tenant_id = $1 RETURNING 1 \
         ) \
         INSERT INTO corpus_stats (tenant_id, chunks, tokens) \
         SELECT $1, chunks, tokens FROM change WHERE NOT EXISTS (SELECT 1 FROM updated) \
         ON CONFLICT (tenant_id) DO UPDATE \
         SET chunks = corpus_stats.chunks + excluded.chunks, tokens = corpus_stats.tokens + excluded.tokens",
    )
    .bind(tenant_id)
    .bind(document_ids)
    .bind(removed.chunks)
    .bind(removed.tokens)
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
    // The document's row first, as every writer takes it before the statistics' rows.
    let owner: Option<TenantId> = sqlx::query_scalar(
        "SELECT tenant_id FROM documents WHERE id = $1 AND tenant_id = current_tenant_id() FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(tenant_id) = owner else {
        return Ok(false);
    };
    let removed = remove_chunks(&mut *connection, &[id]).await?;
    apply_statistics(&mut *connection, tenant_id, &[], &removed).await?;
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
