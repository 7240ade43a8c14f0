//! A tenant's settings as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::PolicyProfileId;
use crate::retrieval::relevance::{Floors, TenantFloors};
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
    /// Whether searches and turns also read the shared corpus (the `switchboard-docs` collection).
    pub shared_corpus: bool,
    /// Whether searches and turns are reranked by the deployment's reranker when a request does not say.
    pub rerank: bool,
    /// Days after their last activity that conversations, with their runs' text, are kept; null: forever.
    pub conversation_retention_days: Option<i32>,
    /// Days usage records are kept; null: forever.
    pub usage_retention_days: Option<i32>,
    /// Days audit events are kept; null: forever.
    pub audit_retention_days: Option<i32>,
    /// The relevance floor of each search mode in force (the tenant's own or the default), and the defaults.
    pub relevance_floor: RelevanceFloorView,
    /// The most files each workspace may hold.
    pub workspace_max_files: i32,
    /// The most bytes each workspace's files may hold together.
    pub workspace_max_bytes: i64,
    pub updated_at: DateTime<Utc>,
}

/// Passages below the floor of their search's mode are not given to the model (`POST /api/v1/search`
/// reports them with `passes_floor: false`). `hybrid` and `vector`: cosine similarity to the question;
/// `full_text`: the share of the question's BM25 ceiling a passage scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelevanceFloorView {
    pub hybrid: f64,
    pub vector: f64,
    pub full_text: f64,
    pub defaults: RelevanceFloorDefaults,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelevanceFloorDefaults {
    pub hybrid: f64,
    pub vector: f64,
    pub full_text: f64,
}

impl From<&TenantConfig> for RelevanceFloorView {
    fn from(config: &TenantConfig) -> Self {
        let floors = Floors::from(TenantFloors {
            relevance_floor_hybrid: config.relevance_floor_hybrid,
            relevance_floor_vector: config.relevance_floor_vector,
            relevance_floor_full_text: config.relevance_floor_full_text,
        });
        let defaults = Floors::default();
        Self {
            hybrid: floors.hybrid,
            vector: floors.vector,
            full_text: floors.full_text,
            defaults: RelevanceFloorDefaults {
                hybrid: defaults.hybrid,
                vector: defaults.vector,
                full_text: defaults.full_text,
            },
        }
    }
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
            shared_corpus: config.shared_corpus,
            rerank: config.rerank,
            conversation_retention_days: config.conversation_retention_days,
            usage_retention_days: config.usage_retention_days,
            audit_retention_days: config.audit_retention_days,
            relevance_floor: RelevanceFloorView::from(config),
            workspace_max_files: config.workspace_max_files,
            workspace_max_bytes: config.workspace_max_bytes,
            updated_at: config.updated_at,
        }
    }
}
