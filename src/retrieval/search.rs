//! Full-text search over the tenant's chunks and the shared corpus: the question's stemmed terms are
//! OR-ed (an AND of every word of a natural question matches almost nothing) and ranked with `ts_rank`,
//! headings weighing more than body text.

use serde::Serialize;
use sqlx::PgConnection;

/// One ranked chunk.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SearchHit {
    pub chunk_id: uuid::Uuid,
    pub document_id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub content: String,
    pub token_count: i32,
    pub score: f64,
    /// Whether the chunk belongs to the shared corpus rather than the tenant.
    pub shared: bool,
}

pub const MAX_K: i64 = 50;

/// The `k` best chunks for `query` (fewer only when fewer match), visible to the transaction's tenant.
pub async fn search(connection: &mut PgConnection, query: &str, k: i64) -> Result<Vec<SearchHit>, sqlx::Error> {
    sqlx::query_as(
        "WITH terms AS ( \
             SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS query \
             FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS lexeme \
         ) \
         SELECT c.id AS chunk_id, c.document_id, d.source_path, d.title, c.heading_path, c.content, c.token_count, \
                ts_rank(c.search_vector, terms.query)::float8 AS score, \
                c.tenant_id = '00000000-0000-0000-0000-000000000000' AS shared \
         FROM terms, doc_chunks AS c JOIN documents AS d ON d.id = c.document_id \
         WHERE terms.query IS NOT NULL AND c.search_vector @@ terms.query \
         ORDER BY score DESC, c.id \
         LIMIT $2",
    )
    .bind(query)
    .bind(k.clamp(1, MAX_K))
    .fetch_all(connection)
    .await
}
