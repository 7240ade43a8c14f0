//! What a turn is asked to do, decided when it is accepted ([`TurnPlan`], built in one place), and how
//! a turn's steps fail ([`TurnFailure`]). Shared by the turn, its request and its tool steps.

use std::time::Instant;

use super::TurnMode;
use super::resolve::Resolved;
use crate::auth::context::CollectionScope;
use crate::budgets::{BudgetExhausted, RunBudgets};
use crate::ids::{ApiKeyId, RunId, SessionId, TenantId, WorkspaceId};
use crate::providers::{Provider, ProviderError};
use crate::runs::Run;

/// Everything decided when the turn was accepted.
#[derive(Debug, Clone)]
pub(super) struct TurnPlan {
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub session_id: SessionId,
    pub api_key_id: Option<ApiKeyId>,
    /// The provider to call, or why none can be.
    pub provider: Result<Provider, ProviderError>,
    pub provider_name: &'static str,
    pub is_byok: bool,
    pub model: String,
    /// Tried once when the model fails before its first token.
    pub fallback_model: Option<String>,
    /// The models the tenant declared for its own server, found before the catalog's.
    pub declared_models: Vec<std::sync::Arc<crate::catalog::ModelInfo>>,
    pub accepted_at: Instant,
    /// The request that started the run: audit entries made in the background carry it.
    /// The `x-request-id` of the request that started the run (its audit entries carry it).
    pub request_id: Option<String>,
    pub mode: TurnMode,
    /// An agent run's workspace: its built-in tools are offered with the tenant's.
    pub workspace_id: Option<WorkspaceId>,
    /// The budgets the run is under (none set: nothing is reserved).
    pub budgets: RunBudgets,
    /// The end user the run is for (its conversation's): pays with the key, and is counted in usage.
    pub end_user: Option<crate::ids::UserId>,
    /// The tokens the rate limits reserved at the door, corrected when the run is recorded.
    pub rate_reservation: Option<crate::rate_limits::TokenReservation>,
    /// The collections its retrieval may search, as the run recorded them when it started.
    pub collections: CollectionScope,
    /// What was reserved against the budgets for the first model call when the turn was accepted (a
    /// pass-through's, whose request was known then): that call reserves only what it needs beyond.
    pub reserved_ahead: Option<rust_decimal::Decimal>,
    /// The user's message the run answers, when the run was started in this process (else the answer's
    /// record looks it up).
    pub question_id: Option<crate::ids::MessageId>,
}

impl TurnPlan {
    /// The plan of `run` (of `tenant_id`, on its conversation `session_id`) with the provider chosen
    /// for it. `api_key_id` is the key that started the run: it pays, and acts in the audit trail,
    /// whoever resumes the run later. An assistant turn outside any workspace until told otherwise.
    pub(super) fn new(
        run: &Run,
        tenant_id: TenantId,
        session_id: SessionId,
        api_key_id: Option<ApiKeyId>,
        resolved: Resolved,
        accepted_at: Instant,
    ) -> Self {
        Self {
            run_id: run.id,
            tenant_id,
            session_id,
            api_key_id,
            provider: resolved.provider,
            provider_name: resolved.provider_name,
            is_byok: resolved.is_byok,
            model: resolved.model,
            fallback_model: resolved.fallback_model,
            declared_models: resolved.declared_models,
            accepted_at,
            request_id: run.request_id.clone(),
            mode: TurnMode::Assistant,
            workspace_id: None,
            budgets: RunBudgets::default(),
            rate_reservation: None,
            end_user: None,
            collections: CollectionScope::from_stored(run.collection_ids.clone()),
            reserved_ahead: None,
            question_id: None,
        }
    }
}

impl TurnPlan {
    /// What is known of `model` (the planned one, or the fallback): the tenant's declaration, else the
    /// catalog's entry.
    pub(super) fn model_info(
        &self,
        catalog: &crate::catalog::Catalog,
        model: &str,
    ) -> Option<std::sync::Arc<crate::catalog::ModelInfo>> {
        known_model(&self.declared_models, self.provider_name, catalog, model)
    }
}

/// What is known of `model` of `provider_name`: the tenant's declaration among `declared`, else the
/// catalog's entry.
pub(super) fn known_model(
    declared: &[std::sync::Arc<crate::catalog::ModelInfo>],
    provider_name: &str,
    catalog: &crate::catalog::Catalog,
    model: &str,
) -> Option<std::sync::Arc<crate::catalog::ModelInfo>> {
    let declared = declared.iter().find(|known| known.name.eq_ignore_ascii_case(model));
    declared.cloned().or_else(|| catalog.find(provider_name, model))
}

/// A tool call as the model streamed it, pieces joined by their index.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(super) struct ToolCallDraft {
    #[serde(skip)]
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum TurnFailure {
    /// A budget has no room for the next model call (or an agent run used its steps).
    #[error(transparent)]
    Budget(#[from] BudgetExhausted),
    #[error("this agent run has used its {0} model steps")]
    StepsExhausted(u32),
    #[error(transparent)]
    Provider(ProviderError),
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached: the run ends with `database_unavailable`, never a driver error.
    #[error("the database cannot be reached")]
    DatabaseUnavailable,
}

impl From<sqlx::Error> for TurnFailure {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&error) { Self::DatabaseUnavailable } else { Self::Internal(Box::new(error)) }
    }
}
