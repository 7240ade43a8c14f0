//! A tenant's settings as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::PolicyProfileId;
use crate::tenants::store::TenantConfig;

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantConfigView {
    /// `local`, `openai`, `anthropic`, `gemini` or `openai_compatible`.
    pub default_provider: String,
    pub default_model: String,
    pub fallback_model: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub active_policy_profile_id: Option<PolicyProfileId>,
    /// A decimal string, so no amount is rounded through a float.
    pub monthly_budget_usd: Option<String>,
    /// Each API key's monthly budget, each end user's, and each agent run's (decimal strings).
    pub key_monthly_budget_usd: Option<String>,
    pub end_user_monthly_budget_usd: Option<String>,
    pub agent_run_budget_usd: Option<String>,
    pub agent_run_max_steps: Option<i32>,
    pub multi_agent_enabled: bool,
    /// Days after their last activity that conversations, with their runs' text, are kept; null: forever.
    pub conversation_retention_days: Option<i32>,
    /// Days usage records are kept; null: forever.
    pub usage_retention_days: Option<i32>,
    /// Days audit events are kept; null: forever.
    pub audit_retention_days: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

impl From<&TenantConfig> for TenantConfigView {
    fn from(config: &TenantConfig) -> Self {
        Self {
            default_provider: config.default_provider.clone(),
            default_model: config.default_model.clone(),
            fallback_model: config.fallback_model.clone(),
            active_policy_profile_id: config.active_policy_profile_id,
            monthly_budget_usd: config.monthly_budget_usd.clone(),
            key_monthly_budget_usd: config.key_monthly_budget_usd.clone(),
            end_user_monthly_budget_usd: config.end_user_monthly_budget_usd.clone(),
            agent_run_budget_usd: config.agent_run_budget_usd.clone(),
            agent_run_max_steps: config.agent_run_max_steps,
            multi_agent_enabled: config.multi_agent_enabled,
            conversation_retention_days: config.conversation_retention_days,
            usage_retention_days: config.usage_retention_days,
            audit_retention_days: config.audit_retention_days,
            updated_at: config.updated_at,
        }
    }
}
