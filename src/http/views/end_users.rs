//! An end user's erasure, and their policy group, as the API reports them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::users::{EndUserGroup, Erasure};

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

/// An end user's policy group.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndUserGroupView {
    pub external_user_id: String,
    /// Null: in no group (their runs use the calling key's profile, else the tenant's active one).
    pub policy_group: Option<String>,
}

impl From<&EndUserGroup> for EndUserGroupView {
    fn from(set: &EndUserGroup) -> Self {
        Self { external_user_id: set.external_user_id.clone(), policy_group: set.policy_group.clone() }
    }
}
