//! `/api/v1/prompt-templates` (admin): the tenant's own system prompt template, versioned. Each save is a
//! new version, checked first (422 `invalid_template`, with the line); one version is in force, or the
//! built-in default; a preview renders any of them with sample data.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::prompt_templates::{
    ActivePromptTemplateView, PromptPreviewView, PromptTemplateList, PromptTemplateView,
};
use crate::auth::context::Scope;
use crate::prompts::tenant::{self, NewTemplate, PreviewOf, PromptTemplateError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePromptTemplateBody {
    /// `system` (the default, and the only one so far).
    name: Option<String>,
    /// A minijinja template, 1 to 20,000 characters, using only the variables a turn provides:
    /// `tenant_name`, `today`, `business_context`, `policy_summary`, `citations`, `tools`, `end_user`.
    #[schema(min_length = 1, max_length = 20000)]
    body: String,
    /// What changed, for the people who read the versions.
    #[schema(max_length = 500)]
    note: Option<String>,
    /// Put the new version in force at once (default true).
    activate: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivatePromptTemplateBody {
    /// `system` (the default).
    name: Option<String>,
    /// The version to put in force; null for the built-in default. Required: `{}` changes nothing.
    #[schema(required = true)]
    version: Option<i32>,
}

/// The body as its type, from a JSON object: serde would also fill a struct from an array, by position.
fn from_object<T: DeserializeOwned>(fields: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(fields)).map_err(|error| ApiError::invalid(error.to_string()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewPromptTemplateBody {
    /// A template to check and render, not saved.
    #[schema(max_length = 20000)]
    body: Option<String>,
    /// A saved version to render. With neither, the template in force (or the built-in default).
    version: Option<i32>,
}

/// Saves a new version of the tenant's system prompt template, checked first; puts it in force unless
/// `activate` is false. Audited as `prompt_template.created` (and `prompt_template.activated`).
#[utoipa::path(
    post, path = "/prompt-templates", operation_id = "create_prompt_template", tag = "tenant",
    request_body = CreatePromptTemplateBody,
    responses((status = 201, description = "The new version.", body = PromptTemplateView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<(StatusCode, axum::Json<PromptTemplateView>), ApiError> {
    context.require(Scope::Admin)?;
    let body: CreatePromptTemplateBody = from_object(fields)?;
    let template = NewTemplate::parse(body.name.as_deref(), body.body, body.note, body.activate)?;
    let saved = tenant::create(&state.db, &context, &template).await?;
    Ok((StatusCode::CREATED, axum::Json(PromptTemplateView::from(&saved))))
}

/// Every version of the tenant's system prompt template (newest first, without bodies) and what is in force.
#[utoipa::path(
    get, path = "/prompt-templates", operation_id = "list_prompt_templates", tag = "tenant",
    responses((status = 200, description = "The versions and the one in force.", body = PromptTemplateList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<PromptTemplateList>, ApiError> {
    context.require(Scope::Admin)?;
    let (in_force, versions) = tenant::list(&state.db, &context, tenant::SYSTEM).await?;
    Ok(axum::Json(PromptTemplateList::new(&in_force, &versions)))
}

/// One version of the tenant's system prompt template, with its body.
#[utoipa::path(
    get, path = "/prompt-templates/{version}", operation_id = "get_prompt_template", tag = "tenant",
    params(("version" = i32, Path, description = "The version number.")),
    responses((status = 200, description = "The version.", body = PromptTemplateView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(version): Path<i32>,
) -> Result<axum::Json<PromptTemplateView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(PromptTemplateView::from(&tenant::get(&state.db, &context, tenant::SYSTEM, version).await?)))
}

/// What every new turn's system prompt is made from: a version of the tenant's, or the built-in default.
#[utoipa::path(
    get, path = "/prompt-templates/active", operation_id = "get_active_prompt_template", tag = "tenant",
    responses((status = 200, description = "The template in force.", body = ActivePromptTemplateView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get_active(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<ActivePromptTemplateView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ActivePromptTemplateView::from(&tenant::in_force(&state.db, &context, tenant::SYSTEM).await?)))
}

/// Puts a version in force (an older one rolls back), or the built-in default with `version: null`.
/// Audited as `prompt_template.activated`.
#[utoipa::path(
    put, path = "/prompt-templates/active", operation_id = "put_active_prompt_template", tag = "tenant",
    request_body = ActivatePromptTemplateBody,
    responses((status = 200, description = "The template now in force.", body = ActivePromptTemplateView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn put_active(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<ActivePromptTemplateView>, ApiError> {
    context.require(Scope::Admin)?;
    if !fields.contains_key("version") {
        let required = "version is required: a version number, or null for the built-in default";
        return Err(PromptTemplateError::BadRequest(required.to_owned()).into());
    }
    let body: ActivatePromptTemplateBody = from_object(fields)?;
    let name = tenant::parse_name(body.name.as_deref())?;
    let in_force = tenant::activate(&state.db, &context, &name, body.version).await?;
    Ok(axum::Json(ActivePromptTemplateView::from(&in_force)))
}

/// Renders a template (a `body` not saved, a saved `version`, or else the one in force) with the tenant's
/// name, profile and policy and sample passages, tools and end user.
#[utoipa::path(
    post, path = "/prompt-templates/preview", operation_id = "preview_prompt_template", tag = "tenant",
    request_body = PreviewPromptTemplateBody,
    responses((status = 200, description = "The rendered system prompt.", body = PromptPreviewView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn preview(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<PromptPreviewView>, ApiError> {
    context.require(Scope::Admin)?;
    let body: PreviewPromptTemplateBody = from_object(fields)?;
    let of = match (body.body, body.version) {
        (Some(_), Some(_)) => {
            return Err(PromptTemplateError::BadRequest("give a body or a version, not both".to_owned()).into());
        }
        (Some(text), None) => PreviewOf::Body(text),
        (None, Some(version)) => PreviewOf::Version(version),
        (None, None) => PreviewOf::InForce,
    };
    Ok(axum::Json(PromptPreviewView { rendered: tenant::preview(&state.db, &context, of).await? }))
}
