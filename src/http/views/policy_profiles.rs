//! Policy profiles as the API shows them: name, version and the document as saved.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::PolicyProfileId;
use crate::policy::profiles::PolicyProfile;
use crate::policy::{CustomRule, PolicyDocument};

/// A policy profile: what the assistant may do with tools.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyProfileView {
    #[schema(value_type = uuid::Uuid)]
    pub id: PolicyProfileId,
    pub name: String,
    /// Raised by one on every change.
    pub version: i32,
    pub document: PolicyDocumentView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&PolicyProfile> for PolicyProfileView {
    fn from(profile: &PolicyProfile) -> Self {
        Self {
            id: profile.id,
            name: profile.name.clone(),
            version: profile.version,
            document: PolicyDocumentView::from(&profile.document),
            created_at: profile.created_at,
            updated_at: profile.updated_at,
        }
    }
}

/// A rule the profile document gains is accepted on input at once, but shown here only once named.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDocumentView {
    pub tool_allowlist: Vec<String>,
    pub read_only_mode: bool,
    pub approval_required: Vec<String>,
    pub blocked_fields: Vec<String>,
    pub max_rows_per_query: Option<u32>,
    pub allowed_record_types: Vec<String>,
    pub custom_rules: Vec<CustomRule>,
}

impl From<&PolicyDocument> for PolicyDocumentView {
    fn from(document: &PolicyDocument) -> Self {
        Self {
            tool_allowlist: document.tool_allowlist.clone(),
            read_only_mode: document.read_only_mode,
            approval_required: document.approval_required.clone(),
            blocked_fields: document.blocked_fields.clone(),
            max_rows_per_query: document.max_rows_per_query,
            allowed_record_types: document.allowed_record_types.clone(),
            custom_rules: document.custom_rules.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyProfileList {
    pub policy_profiles: Vec<PolicyProfileView>,
}

impl PolicyProfileList {
    pub fn new(profiles: &[PolicyProfile]) -> Self {
        Self { policy_profiles: profiles.iter().map(PolicyProfileView::from).collect() }
    }
}
