//! An end user's erasure, as the API reports it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::users::Erasure;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// What usage reports and the audit trail call the end user now: `erased-` and 32 hex digits.
    pub pseudonym: String,
    /// Conversations deleted, with their messages.
    pub conversations: u64,
    /// Runs whose text was removed (the runs stay for their usage records).
    pub runs: u64,
    /// Usage records now under the pseudonym, counts and costs unchanged.
    pub usage_records: u64,
    /// Audit events whose mention of the end user now names the pseudonym.
    pub audit_events: u64,
}

impl From<&Erasure> for ErasureView {
    fn from(erasure: &Erasure) -> Self {
        Self {
            pseudonym: erasure.pseudonym.clone(),
            conversations: erasure.conversations,
            runs: erasure.runs,
            usage_records: erasure.usage_records,
            audit_events: erasure.audit_events,
        }
    }
}
