//! Feedback on an answer as the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::feedback::{Feedback, Rating};
use crate::ids::{FeedbackId, MessageId, RunId};

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackView {
    #[schema(value_type = uuid::Uuid)]
    pub id: FeedbackId,
    #[schema(value_type = uuid::Uuid)]
    pub message_id: MessageId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub run_id: Option<RunId>,
    pub rating: Rating,
    pub comment: Option<String>,
    pub tags: Vec<String>,
    /// The model and provider that wrote the answer.
    pub model: Option<String>,
    pub provider: Option<String>,
    /// The system prompt template the answer's run was built with: the built-in one's id (`system.md.j2@`
    /// and a hash of its content) or `tenant`; null when the run recorded none.
    pub prompt_template: Option<String>,
    /// The version of the tenant's own template the run used; null for the built-in one.
    pub prompt_version: Option<i32>,
    /// The chunks the answer cited.
    pub cited_chunk_ids: Vec<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
    /// When it was last replaced (equal to `created_at` until then).
    pub updated_at: DateTime<Utc>,
}

impl From<&Feedback> for FeedbackView {
    fn from(feedback: &Feedback) -> Self {
        Self {
            id: feedback.id,
            message_id: feedback.message_id,
            run_id: feedback.run_id,
            rating: feedback.rating,
            comment: feedback.comment.clone(),
            tags: feedback.tags.clone(),
            model: feedback.model.clone(),
            provider: feedback.provider.clone(),
            prompt_template: feedback.prompt_template.clone(),
            prompt_version: feedback.prompt_version,
            cited_chunk_ids: feedback.cited_chunk_ids.clone(),
            created_at: feedback.created_at,
            updated_at: feedback.updated_at,
        }
    }
}
