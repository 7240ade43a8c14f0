//! `/api/v1/providers/openai_compatible/models` (admin): the models a tenant declares for its own
//! OpenAI-compatible server: context window, output ceiling, prices.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::provider_models::{ModelList, ModelView};
use crate::auth::context::Scope;
use crate::catalog::TENANT_PROVIDER;
use crate::catalog::tenant::{self, Declaration};

fn only_own_server(provider: &str) -> Result<(), ApiError> {
    if provider == TENANT_PROVIDER {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "models can be declared for `{TENANT_PROVIDER}` only: the catalog knows the hosted providers' models"
    )))
}

pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(provider): Path<String>,
) -> Result<axum::Json<ModelList>, ApiError> {
    context.require(Scope::Admin)?;
    only_own_server(&provider)?;
    let models = tenant::list(&state.db, &context).await?;
    Ok(axum::Json(ModelList { models: models.iter().map(ModelView::from).collect() }))
}

pub async fn put(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((provider, name)): Path<(String, String)>,
    Json(declaration): Json<Declaration>,
) -> Result<axum::Json<ModelView>, ApiError> {
    context.require(Scope::Admin)?;
    only_own_server(&provider)?;
    let model = tenant::declare(&state.db, &context, &name, &declaration).await?;
    Ok(axum::Json(ModelView::from(&model)))
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((provider, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    only_own_server(&provider)?;
    tenant::remove(&state.db, &context, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
