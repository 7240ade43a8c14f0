//! Feedback on answers: a thumbs up or down, with an optional comment and tags, given on an assistant
//! message by an API key (`chat` scope) or by an end user through a widget token (their own conversations
//! only). One per message per giver; giving it again replaces it. Each keeps what made the answer (model,
//! provider, prompt template, cited chunks), so an evaluation reads it without joining what may have
//! changed since. It goes with its message: erasure, retention and deleting a conversation or a tenant
//! delete messages, and the database cascades (migration 0031). [`export`] reads it all as JSON lines.

pub mod store;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::audit::{self, AuditEntry};
use crate::auth::context::{Actor, TenantContext};
use crate::conversations::{self, Role};
use crate::db;
use crate::ids::{FeedbackId, MessageId, RunId, TenantId};

/// The limits, documented in `docs_corpus/chat-api.md`.
pub const MAX_COMMENT: usize = 2_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG: usize = 50;

/// Rows per page of the export: each page is one short transaction, so a slow reader holds no connection.
const EXPORT_PAGE: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such message")]
    MessageNotFound,
    #[error("feedback is given on the assistant's answers; this message is not one")]
    NotAnAnswer,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Rating {
    Up,
    Down,
}

/// Feedback as a client gives it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedback {
    pub rating: Rating,
    pub comment: Option<String>,
    pub tags: Vec<String>,
}

impl NewFeedback {
    /// The comment trimmed (blank is none), at most [`MAX_COMMENT`] characters; at most [`MAX_TAGS`] tags,
    /// each one line of 1 to [`MAX_TAG`] characters, none twice.
    pub fn parse(rating: Rating, comment: Option<String>, tags: Option<Vec<String>>) -> Result<Self, FeedbackError> {
        let invalid = |message: String| FeedbackError::Invalid(message);
        // Lengths are counted as sent, before trimming, as the API document's `maxLength` counts.
        if comment.as_ref().is_some_and(|comment| comment.chars().count() > MAX_COMMENT) {
            return Err(invalid(format!("comment must be at most {MAX_COMMENT} characters")));
        }
        let comment = comment.map(|comment| comment.trim().to_owned()).filter(|comment| !comment.is_empty());
        if let Some(comment) = &comment
            && comment.chars().any(|character| character.is_control() && !matches!(character, '\n' | '\r' | '\t'))
        {
            return Err(invalid("comment must not contain control characters".to_owned()));
        }
        let tags = tags.unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(invalid(format!("tags holds at most {MAX_TAGS} tags")));
        }
        let mut kept: Vec<String> = Vec::with_capacity(tags.len());
        for tag in tags {
            let too_long = tag.chars().count() > MAX_TAG;
            let tag = tag.trim();
            if tag.is_empty() || too_long || tag.chars().any(char::is_control) {
                return Err(invalid(format!("each tag must be one line of 1 to {MAX_TAG} characters")));
            }
            if kept.iter().any(|seen| seen == tag) {
                return Err(invalid(format!("tags names `{tag}` twice")));
            }
            kept.push(tag.to_owned());
        }
        Ok(Self { rating, comment, tags: kept })
    }
}

/// Feedback as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Feedback {
    pub id: FeedbackId,
    pub message_id: MessageId,
    pub run_id: Option<RunId>,
    pub rating: Rating,
    pub comment: Option<String>,
    pub tags: Vec<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub prompt_template: Option<String>,
    pub prompt_version: Option<i32>,
    pub cited_chunk_ids: Vec<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who gives feedback: one row per message for each.
#[derive(Debug, Clone, Copy)]
pub struct Giver {
    pub kind: &'static str,
    pub id: uuid::Uuid,
}

impl Giver {
    fn of(context: &TenantContext) -> Result<Self, FeedbackError> {
        match context.actor() {
            Actor::ApiKey(id) => Ok(Self { kind: "api_key", id: id.0 }),
            Actor::EndUser(id) => Ok(Self { kind: "user", id: id.0 }),
            Actor::Operator => {
                Err(FeedbackError::Invalid("feedback is given with an API key or a widget token".into()))
            }
        }
    }
}

/// Records `feedback` on the answer `message_id`, replacing this giver's earlier feedback on it; returns
/// it and whether it is new. A message of another tenant, or (for a widget token) of another end user's
/// conversation, is `MessageNotFound`; a message that is not the assistant's is `NotAnAnswer`.
pub async fn give(
    pool: &PgPool,
    context: &TenantContext,
    message_id: MessageId,
    feedback: &NewFeedback,
) -> Result<(Feedback, bool), FeedbackError> {
    let giver = Giver::of(context)?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let message =
        conversations::store::get_message(&mut transaction, message_id).await?.ok_or(FeedbackError::MessageNotFound)?;
    conversations::visible_session(&mut transaction, context, message.session_id)
        .await?
        .ok_or(FeedbackError::MessageNotFound)?;
    if message.role != Role::Assistant {
        return Err(FeedbackError::NotAnAnswer);
    }
    // The template and version the answer's run recorded when its system prompt was built.
    let run = match message.run_id {
        Some(run_id) => crate::runs::store::get(&mut transaction, run_id).await?,
        None => None,
    };
    let (prompt_template, prompt_version) = run.map_or((None, None), |run| (run.prompt_template, run.prompt_version));
    let row = store::NewRow {
        message_id,
        run_id: message.run_id,
        giver,
        feedback,
        model: message.model_used.as_deref(),
        provider: message.provider_used.as_deref(),
        prompt_template,
        prompt_version,
        cited_chunk_ids: cited_chunk_ids(&message.citations.0),
    };
    let saved = store::upsert(&mut transaction, context.tenant_id(), &row).await?;
    transaction.commit().await?;
    Ok(saved)
}

/// The chunks an answer cites, from its stored citations (`retrieval::Citation`, by `chunk_id`).
fn cited_chunk_ids(citations: &serde_json::Value) -> Vec<uuid::Uuid> {
    citations
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|citation| citation.get("chunk_id")?.as_str()?.parse().ok())
        .collect()
}

/// Every feedback of the tenant as JSON lines, oldest first (see `store::export_page` for the fields), read a
/// page at a time as the client takes them, each page in a transaction of its own: nothing is held in
/// memory but a page, and no connection is held while the client reads. Feedback given while the export
/// is read may or may not appear. Recorded as `feedback.exported` before the first line.
pub async fn export(
    pool: &PgPool,
    context: &TenantContext,
) -> Result<impl Stream<Item = Result<String, sqlx::Error>> + Send + 'static, FeedbackError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let entry = AuditEntry::new("feedback.exported", "tenant", context.tenant_id().to_string());
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    let reading = Reading { pool: pool.clone(), tenant: context.tenant_id(), after: None };
    Ok(futures::stream::unfold(Some(reading), |reading| async move {
        let mut reading = reading?;
        let page = async {
            let mut transaction = db::begin_tenant(&reading.pool, reading.tenant).await?;
            let rows = store::export_page(&mut transaction, reading.after, EXPORT_PAGE).await?;
            transaction.commit().await?;
            Ok::<_, sqlx::Error>(rows)
        };
        let rows = match page.await {
            Ok(rows) => rows,
            Err(error) => return Some((Err(error), None)),
        };
        let last_page = i64::try_from(rows.len()).is_ok_and(|count| count < EXPORT_PAGE);
        reading.after = rows.last().map(|(id, _)| *id);
        let mut chunk = String::new();
        for (_, line) in &rows {
            chunk.push_str(&line.to_string());
            chunk.push('\n');
        }
        match (chunk.is_empty(), last_page) {
            (true, _) => None,
            (false, true) => Some((Ok(chunk), None)),
            (false, false) => Some((Ok(chunk), Some(reading))),
        }
    }))
}

struct Reading {
    pool: PgPool,
    tenant: TenantId,
    after: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_tags_are_trimmed_and_bounded() {
        let parsed =
            NewFeedback::parse(Rating::Down, Some("  wrong price \n".into()), Some(vec![" outdated ".into()])).unwrap();
        assert_eq!(parsed.comment.as_deref(), Some("wrong price"));
        assert_eq!(parsed.tags, ["outdated"]);
        assert_eq!(NewFeedback::parse(Rating::Up, Some("   ".into()), None).unwrap().comment, None);
        assert!(NewFeedback::parse(Rating::Up, Some("x".repeat(MAX_COMMENT + 1)), None).is_err());
        assert!(NewFeedback::parse(Rating::Up, None, Some(vec!["t".into(); MAX_TAGS + 1])).is_err());
        assert!(NewFeedback::parse(Rating::Up, None, Some(vec![String::new()])).is_err());
        assert!(NewFeedback::parse(Rating::Up, None, Some(vec!["a\nb".into()])).is_err());
        assert!(NewFeedback::parse(Rating::Up, None, Some(vec!["same".into(), "same".into()])).is_err());
    }

    #[test]
    fn the_cited_chunks_are_read_from_the_stored_citations() {
        let chunk = uuid::Uuid::now_v7();
        let citations = serde_json::json!([{ "number": 1, "chunk_id": chunk.to_string() }, { "number": 2 }]);
        assert_eq!(cited_chunk_ids(&citations), [chunk]);
        assert!(cited_chunk_ids(&serde_json::json!({})).is_empty());
    }
}
