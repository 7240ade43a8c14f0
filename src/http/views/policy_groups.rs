//! Policy groups as the API shows them: a group of end users and the profile it gets.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::PolicyProfileId;
use crate::policy::profiles::PolicyGroup;

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyGroupView {
    /// The group's name, as end users are put in it (`PUT /api/v1/end-users/{id}/policy-group`).
    pub group: String,
    #[schema(value_type = uuid::Uuid)]
    pub policy_profile_id: PolicyProfileId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&PolicyGroup> for PolicyGroupView {
    fn from(group: &PolicyGroup) -> Self {
        Self {
            group: group.name.clone(),
            policy_profile_id: group.policy_profile_id,
            created_at: group.created_at,
            updated_at: group.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyGroupList {
    pub policy_groups: Vec<PolicyGroupView>,
}

impl PolicyGroupList {
    pub fn new(groups: &[PolicyGroup]) -> Self {
        Self { policy_groups: groups.iter().map(PolicyGroupView::from).collect() }
    }
}
