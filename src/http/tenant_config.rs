//! `/api/v1/tenant/config` (admin): the tenant's settings.

use axum::extract::State;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use super::views::tenant_config::TenantConfigView;
use crate::auth::context::Scope;
use crate::tenants;

/// What `PATCH /api/v1/tenant/config` takes (read as a map, so that an absent field and `null` differ):
/// absent fields stay as they are, `null` clears the clearable ones.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema: the handler reads the object with `tenants::update_config`.
pub struct TenantConfigPatch {
    /// The provider turns use unless a request names one.
    #[schema(required = false)]
    default_provider: crate::providers::ProviderKind,
    /// 1 to 200 bytes, spaces around it trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S", nullable = false)]
    default_model: Option<String>,
    /// The model tried when the default one fails; 1 to 200 bytes, or null for none.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    fallback_model: Option<String>,
    /// One of the tenant's policy profiles, or null for none.
    active_policy_profile_id: Option<uuid::Uuid>,
    /// The tenant's monthly budget.
    #[schema(schema_with = crate::budgets::amount_schema)]
    monthly_budget_usd: Option<Value>,
    /// Each API key's monthly budget (unless the key has its own).
    #[schema(schema_with = crate::budgets::amount_schema)]
    key_monthly_budget_usd: Option<Value>,
    /// Each end user's monthly budget.
    #[schema(schema_with = crate::budgets::amount_schema)]
    end_user_monthly_budget_usd: Option<Value>,
    /// Each agent run's budget.
    #[schema(schema_with = crate::budgets::amount_schema)]
    agent_run_budget_usd: Option<Value>,
    /// The most steps an agent run takes, or null for the default.
    #[schema(minimum = 1, maximum = 10_000)]
    agent_run_max_steps: Option<i32>,
    /// Only `false`: runs coordinating several agents are planned, not built, so `true` is refused
    /// (400 `unsupported_setting`).
    #[schema(nullable = false)]
    multi_agent_enabled: Option<bool>,
    /// Whether searches and turns also read the shared corpus (Switchboard's own documentation, the
    /// `switchboard-docs` collection). Off for a new tenant.
    #[schema(nullable = false)]
    shared_corpus: Option<bool>,
    /// Whether searches and turns reorder their best passages with the deployment's reranker when a request
    /// does not say (`POST /api/v1/search` takes `rerank`). Off for a new tenant. `true` on a deployment
    /// without a reranker is refused (422 `reranker_unavailable`). The passages' text is sent to the
    /// reranking provider.
    #[schema(nullable = false)]
    rerank: Option<bool>,
    /// Days after their last activity that conversations, with their runs' text, are kept (1 to 36500),
    /// or null for forever. Deleted by a background job in every process.
    #[schema(minimum = 1, maximum = 36_500)]
    conversation_retention_days: Option<i32>,
    /// Days usage records are kept (31, a budget period, to 36500), or null for forever; at least
    /// `conversation_retention_days`, and null while that is null.
    #[schema(minimum = 31, maximum = 36_500)]
    usage_retention_days: Option<i32>,
    /// Days audit events are kept (31 to 36500), or null for forever; at least
    /// `conversation_retention_days`, and null while that is null.
    #[schema(minimum = 31, maximum = 36_500)]
    audit_retention_days: Option<i32>,
    /// The tenant's own relevance floors, or null for every default. Passages below their search mode's
    /// floor are not given to the model.
    relevance_floor: Option<RelevanceFloorPatch>,
    /// The most files each workspace may hold (1 to 100000; 5000 for a new tenant). Lowering it removes
    /// nothing: a workspace past it may only shrink.
    #[schema(minimum = 1, maximum = 100_000, nullable = false)]
    workspace_max_files: Option<i32>,
    /// The most bytes each workspace's files may hold together (1 to 1 GiB; 50 MiB for a new tenant).
    #[schema(minimum = 1, maximum = 1_073_741_824, nullable = false)]
    workspace_max_bytes: Option<i64>,
}

/// Some of the modes' floors, each from 0 (no floor) to 1, or null for that mode's default.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema: the handler reads the object with `tenants::update_config`.
pub struct RelevanceFloorPatch {
    /// Cosine similarity to the question.
    #[schema(minimum = 0, maximum = 1, required = false)]
    hybrid: Option<f64>,
    /// Cosine similarity to the question.
    #[schema(minimum = 0, maximum = 1, required = false)]
    vector: Option<f64>,
    /// The share of the question's BM25 ceiling a passage scores.
    #[schema(minimum = 0, maximum = 1, required = false)]
    full_text: Option<f64>,
}

/// The tenant's settings: its default provider and model, policy profile, budgets and retention.
#[utoipa::path(
    get, path = "/tenant/config", tag = "tenant",
    responses((status = 200, description = "The settings.", body = TenantConfigView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<TenantConfigView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(TenantConfigView::from(&tenants::config(&state.db, &context).await?)))
}

/// Changes some of the tenant's settings; the fields absent stay as they are.
#[utoipa::path(
    patch, path = "/tenant/config", tag = "tenant",
    request_body = TenantConfigPatch,
    responses((status = 200, description = "The settings as they now are.", body = TenantConfigView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn patch(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<TenantConfigView>, ApiError> {
    context.require(Scope::Admin)?;
    let deployment = tenants::Deployment { reranker: state.retriever.reranker().is_some() };
    Ok(axum::Json(TenantConfigView::from(&tenants::update_config_on(&state.db, &context, &fields, deployment).await?)))
}
