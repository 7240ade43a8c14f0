//! The two rankings hybrid search fuses, and the details of the chunks it returns. Full text: the
//! question's stemmed terms are OR-ed (an AND of every word of a natural question matches almost nothing)
//! and ranked with BM25. Vectors: `vectors::nearest`.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::fusion::{Fused, Ranked};

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Vector,
    FullText,
}

impl SearchMode {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Vector => "vector",
            Self::FullText => "full_text",
        }
    }
}

/// One chunk of a search's answer.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SearchHit {
    pub chunk_id: uuid::Uuid,
    pub document_id: uuid::Uuid,
    pub source_path: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub content: String,
    pub token_count: i32,
    /// Higher is better: the fused score in hybrid search, else BM25 or cosine similarity.
    #[sqlx(skip)]
    pub score: f64,
    /// The chunk's place (from 1) in each ranking that found it.
    #[sqlx(skip)]
    pub full_text_rank: Option<u32>,
    #[sqlx(skip)]
    pub vector_rank: Option<u32>,
    /// Cosine similarity to the question, when the vector ranking found the chunk.
    #[sqlx(skip)]
    pub similarity: Option<f64>,
    /// Whether the chunk belongs to the shared corpus rather than the tenant.
    pub shared: bool,
}

/// The most results one search returns.
pub const MAX_K: i64 = 100;

/// The `depth` best chunks for `query` (fewer only when fewer match), visible to the transaction's tenant,
/// ranked by BM25 (k1 = 1.2, b = 0.75). PostgreSQL's own `ts_rank` has no inverse document frequency and
/// ranks far worse (nDCG@10 0.357 against 0.43 on the Vaswani collection: examples/retrieval_eval.rs), so
/// BM25 is computed here: chunk frequencies, corpus size and average length from the statistics ingestion
/// maintains (`term_stats`, `corpus_stats`: the tenant's and the shared corpus's, as RLS shows them), term
/// frequencies from the tsvector positions, lengths from the chunk's token count. BM25 rescores the best
/// candidates by `ts_rank` (at least 500): scoring every matching chunk cost ten times as much for the
/// same quality. Candidates come from the query's selective terms (in at most a tenth of the chunks) when
/// those match enough chunks: a common word matched half of a 100k-chunk corpus and ranking all of those
/// was most of the search's time (benchmark suite), while BM25 gives such words little weight anyway; only
/// when the selective terms match too few chunks are the common ones used too. The statistics are
/// MATERIALIZED so they are computed once, not per candidate row.
pub async fn full_text(connection: &mut PgConnection, query: &str, depth: i64) -> Result<Vec<Ranked>, sqlx::Error> {
    sqlx::query_as(
        "WITH terms AS MATERIALIZED ( \
             SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS lexeme \
         ), any_term AS ( \
             SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS query FROM terms \
         ), corpus AS MATERIALIZED ( \
             SELECT coalesce(sum(chunks), 0)::float8 AS size, \
                    greatest(coalesce(sum(tokens)::float8 / nullif(sum(chunks), 0), 1), 1) AS average_length \
             FROM corpus_stats \
         ), frequencies AS MATERIALIZED ( \
             SELECT lexeme, sum(chunks)::float8 AS chunks FROM term_stats \
             WHERE lexeme IN (SELECT lexeme FROM terms) GROUP BY lexeme \
         ), selective AS ( \
             SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS query \
             FROM frequencies, corpus WHERE frequencies.chunks <= corpus.size * 0.1 \
         ), narrow AS MATERIALIZED ( \
             SELECT c.id, c.token_count, c.search_vector FROM doc_chunks AS c, selective \
             WHERE selective.query IS NOT NULL AND c.search_vector @@ selective.query \
             ORDER BY ts_rank(c.search_vector, selective.query) DESC \
             LIMIT greatest($2 * 5, 500) \
         ), candidates AS MATERIALIZED ( \
             SELECT * FROM narrow \
             UNION ALL ( \
                 SELECT c.id, c.token_count, c.search_vector FROM doc_chunks AS c, any_term \
                 WHERE (SELECT count(*) FROM narrow) < $2 \
                   AND any_term.query IS NOT NULL AND c.search_vector @@ any_term.query \
                   AND c.id NOT IN (SELECT id FROM narrow) \
                 ORDER BY ts_rank(c.search_vector, any_term.query) DESC \
                 LIMIT greatest($2 * 5, 500) \
             ) \
         ), scored AS ( \
             SELECT candidates.id, sum( \
                        ln(1 + (corpus.size - frequencies.chunks + 0.5) / (frequencies.chunks + 0.5)) \
                        * (entry.occurrences * 2.2) \
                        / (entry.occurrences + 1.2 * (0.25 + 0.75 * candidates.token_count / corpus.average_length)) \
                    ) AS score \
             FROM candidates \
             CROSS JOIN LATERAL ( \
                 SELECT lexeme, coalesce(array_length(positions, 1), 1) AS occurrences FROM unnest(candidates.search_vector) \
             ) AS entry \
             JOIN frequencies ON frequencies.lexeme = entry.lexeme \
             CROSS JOIN corpus \
             GROUP BY candidates.id \
         ) \
         SELECT id AS chunk_id, score FROM scored ORDER BY score DESC, id LIMIT $2",
    )
    .bind(query)
    .bind(depth.clamp(1, 1000))
    .fetch_all(connection)
    .await
}

/// The chunks of a fused ranking with their documents, in the ranking's order.
pub async fn hits(connection: &mut PgConnection, ranking: &[Fused]) -> Result<Vec<SearchHit>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ranking.iter().map(|fused| fused.chunk_id).collect();
    let mut found: std::collections::HashMap<uuid::Uuid, SearchHit> = sqlx::query_as::<_, SearchHit>(
        "SELECT c.id AS chunk_id, c.document_id, d.source_path, d.title, c.heading_path, c.content, c.token_count, \
                c.tenant_id = '00000000-0000-0000-0000-000000000000' AS shared \
         FROM doc_chunks AS c JOIN documents AS d ON d.id = c.document_id WHERE c.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(|hit| (hit.chunk_id, hit))
    .collect();
    // A chunk deleted since it was ranked is simply left out.
    Ok(ranking
        .iter()
        .filter_map(|fused| {
            let mut hit = found.remove(&fused.chunk_id)?;
            hit.score = fused.score;
            hit.full_text_rank = fused.full_text_rank;
            hit.vector_rank = fused.vector_rank;
            hit.similarity = fused.similarity;
            Some(hit)
        })
        .collect())
}
