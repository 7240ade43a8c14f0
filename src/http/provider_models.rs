//! `/api/v1/providers/openai_compatible/models` (admin): the models a tenant declares for its own
//! OpenAI-compatible server: context window, output ceiling, prices.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa::ToSchema;

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

/// The only provider models can be declared for: the tenant's own OpenAI-compatible server.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the name is checked by `only_own_server`.
enum OwnServer {
    #[schema(rename = "openai_compatible")]
    OpenAiCompatible,
}

/// The models the tenant declared for its own OpenAI-compatible server.
#[utoipa::path(
    get, path = "/providers/{provider}/models", tag = "tenant",
    params(("provider" = inline(OwnServer), Path, description = "`openai_compatible`, the only one.")),
    responses((status = 200, description = "The declared models, by name.", body = ModelList)),
    security(("tenant_key" = ["admin"])),
)]
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

/// Declares a model of the tenant's own server (or replaces its declaration): window, output ceiling, prices.
#[utoipa::path(
    put, path = "/providers/{provider}/models/{name}", tag = "tenant",
    params(
        ("provider" = inline(OwnServer), Path, description = "`openai_compatible`, the only one."),
        (
            "name" = String, Path,
            description = "The model's name, as the server knows it: 1 to 200 bytes, spaces around it trimmed.",
            min_length = 1, max_length = 200, pattern = r"\S",
        ),
    ),
    request_body = Declaration,
    responses((status = 200, description = "The model as declared.", body = ModelView)),
    security(("tenant_key" = ["admin"])),
)]
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

/// Removes a model's declaration.
#[utoipa::path(
    delete, path = "/providers/{provider}/models/{name}", tag = "tenant",
    params(
        ("provider" = inline(OwnServer), Path, description = "`openai_compatible`, the only one."),
        ("name" = String, Path, description = "The model's name, as declared."),
    ),
    responses((status = 204, description = "Removed.")),
    security(("tenant_key" = ["admin"])),
)]
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
