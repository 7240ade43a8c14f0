//! SQL for `message_feedback`: one row per message per giver, replaced on a second rating, and the
//! export's keyset pages, built as JSON by PostgreSQL field by field. Runs in tenant-bound transactions.

use sqlx::PgConnection;

use super::{Feedback, Giver, NewFeedback};
use crate::ids::{FeedbackId, MessageId, RunId, TenantId};

/// A feedback row about to be written: what was said, by whom, and what made the answer.
#[derive(Debug)]
pub struct NewRow<'a> {
    pub message_id: MessageId,
    pub run_id: Option<RunId>,
    pub giver: Giver,
    pub feedback: &'a NewFeedback,
    pub model: Option<&'a str>,
    pub provider: Option<&'a str>,
    /// The run's recorded template and version (`runs.prompt_template`, `runs.prompt_version`).
    pub prompt_template: Option<String>,
    pub prompt_version: Option<i32>,
    pub cited_chunk_ids: Vec<uuid::Uuid>,
}

/// Inserts the feedback, or replaces this giver's earlier one on the message (keeping its id and
/// `created_at`); returns it and whether it is new (`xmax = 0`: the row was inserted, not updated).
pub async fn upsert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    row: &NewRow<'_>,
) -> Result<(Feedback, bool), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Saved {
        #[sqlx(flatten)]
        feedback: Feedback,
        inserted: bool,
    }
    let saved: Saved = sqlx::query_as(
        "INSERT INTO message_feedback (id, tenant_id, message_id, run_id, giver_type, giver_id, rating, comment, \
             tags, model, provider, prompt_template, prompt_version, cited_chunk_ids) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (tenant_id, message_id, giver_type, giver_id) DO UPDATE SET rating = EXCLUDED.rating, \
             comment = EXCLUDED.comment, tags = EXCLUDED.tags, model = EXCLUDED.model, \
             provider = EXCLUDED.provider, prompt_template = EXCLUDED.prompt_template, \
             prompt_version = EXCLUDED.prompt_version, cited_chunk_ids = EXCLUDED.cited_chunk_ids, updated_at = now() \
         RETURNING id, message_id, run_id, rating, comment, tags, model, provider, prompt_template, \
             prompt_version, cited_chunk_ids, created_at, updated_at, (xmax = 0) AS inserted",
    )
    .bind(FeedbackId::new())
    .bind(tenant_id)
    .bind(row.message_id)
    .bind(row.run_id)
    .bind(row.giver.kind)
    .bind(row.giver.id)
    .bind(row.feedback.rating)
    .bind(&row.feedback.comment)
    .bind(&row.feedback.tags)
    .bind(row.model)
    .bind(row.provider)
    .bind(&row.prompt_template)
    .bind(row.prompt_version)
    .bind(&row.cited_chunk_ids)
    .fetch_one(connection)
    .await?;
    Ok((saved.feedback, saved.inserted))
}

/// One page of the export: `(id, line)` after `after`, oldest first. A line holds the feedback, the
/// answer it is about and the question that answer answers (its parent; else the user message of the same
/// run, else the last one before it), and the passages the answer cited.
pub async fn export_page(
    connection: &mut PgConnection,
    after: Option<uuid::Uuid>,
    limit: i64,
) -> Result<Vec<(uuid::Uuid, serde_json::Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.id, jsonb_build_object('id', f.id, 'message_id', f.message_id, 'conversation_id', m.session_id, \
             'run_id', f.run_id, \
             'question', coalesce( \
                 (SELECT q.content FROM chat_messages q WHERE q.id = m.parent_message_id AND q.role = 'user'), \
                 (SELECT q.content FROM chat_messages q WHERE q.session_id = m.session_id AND q.role = 'user' \
                    AND q.run_id = m.run_id ORDER BY q.created_at, q.id LIMIT 1), \
                 (SELECT q.content FROM chat_messages q WHERE q.session_id = m.session_id AND q.role = 'user' \
                    AND (q.created_at, q.id) < (m.created_at, m.id) ORDER BY q.created_at DESC, q.id DESC LIMIT 1)), \
             'answer', m.content, 'rating', f.rating, 'comment', f.comment, 'tags', to_jsonb(f.tags), \
             'model', f.model, 'provider', f.provider, 'prompt_template', f.prompt_template, \
             'prompt_version', f.prompt_version, 'cited_chunk_ids', to_jsonb(f.cited_chunk_ids), \
             'cited_chunks', coalesce((SELECT jsonb_agg(jsonb_build_object('number', c.value -> 'number', \
                 'chunk_id', c.value -> 'chunk_id', 'document_id', c.value -> 'document_id', \
                 'source_path', c.value -> 'source_path', 'title', c.value -> 'title', \
                 'excerpt', c.value -> 'excerpt') ORDER BY c.ordinality) \
               FROM jsonb_array_elements(m.citations) WITH ORDINALITY AS c (value, ordinality)), '[]'::jsonb), \
             'giver_type', f.giver_type, 'giver_id', f.giver_id, \
             'created_at', f.created_at, 'updated_at', f.updated_at) \
         FROM message_feedback f JOIN chat_messages m ON m.id = f.message_id \
         WHERE ($1::uuid IS NULL OR f.id > $1) ORDER BY f.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await
}
