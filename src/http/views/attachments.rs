//! Resources attached to a conversation as the API shows them: what the model is given, and the policy
//! it went through.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{AttachmentId, ConnectorId, PolicyProfileId, SessionId};
use crate::policy::PolicySource;
use crate::tools::attachments::Attachment;

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    #[schema(value_type = uuid::Uuid)]
    pub id: AttachmentId,
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = uuid::Uuid)]
    pub connector_id: ConnectorId,
    /// The connector's name.
    pub connector: String,
    pub uri: String,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    /// The text every later turn gives the model: the resource as the policy left it.
    pub content: String,
    /// Fields the policy's `blocked_fields` removed.
    pub removed_fields: i32,
    /// Lists the policy's `max_rows_per_query` cut.
    pub truncated_arrays: i32,
    pub policy: AttachmentPolicyView,
    pub attached_at: DateTime<Utc>,
}

/// The policy profile the resource was read through.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentPolicyView {
    #[schema(value_type = uuid::Uuid)]
    pub profile_id: PolicyProfileId,
    pub version: i32,
    pub source: PolicySource,
}

impl From<&Attachment> for AttachmentView {
    fn from(attachment: &Attachment) -> Self {
        Self {
            id: attachment.id,
            session_id: attachment.session_id,
            connector_id: attachment.connector_id,
            connector: attachment.connector.clone(),
            uri: attachment.uri.clone(),
            name: attachment.name.clone(),
            mime_type: attachment.mime_type.clone(),
            content: attachment.content.clone(),
            removed_fields: attachment.removed_fields,
            truncated_arrays: attachment.truncated_arrays,
            policy: AttachmentPolicyView {
                profile_id: attachment.policy_profile_id,
                version: attachment.policy_version,
                source: attachment.policy_source,
            },
            attached_at: attachment.attached_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentList {
    pub resources: Vec<AttachmentView>,
}

impl AttachmentList {
    pub fn new(attachments: &[Attachment]) -> Self {
        Self { resources: attachments.iter().map(AttachmentView::from).collect() }
    }
}
