//! `/api/v1/policy-profiles` (admin): what the assistant may do with tools. A profile is checked when
//! saved (unknown fields and rules are refused); the tenant config's `active_policy_profile_id` names the
//! one in force.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::policy_profiles::{PolicyProfileList, PolicyProfileView};
use crate::auth::context::Scope;
use crate::ids::PolicyProfileId;
use crate::policy::PolicyDocument;
use crate::policy::profiles::{self, NewProfile};

/// `{"name": …}` plus the profile's own fields (`tool_allowlist`, `read_only_mode`, …).
#[derive(Debug, Deserialize)]
pub struct ProfileBody {
    name: String,
    #[serde(flatten)]
    document: serde_json::Map<String, Value>,
}

/// The body's schema: `PolicyDocument`'s fields (no others: the document refuses unknown fields) and `name`.
impl PartialSchema for ProfileBody {
    fn schema() -> RefOr<Schema> {
        let mut schema = PolicyDocument::schema();
        if let RefOr::T(Schema::Object(body)) = &mut schema {
            body.description = Some("The profile's `name` and its document's fields, side by side.".to_owned());
            let name = ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("1 to 200 characters (spaces around it trimmed), unique in the tenant."));
            body.properties.insert("name".to_owned(), name.into());
            body.required.push("name".to_owned());
        }
        schema
    }
}

impl ToSchema for ProfileBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <PolicyDocument as ToSchema>::schemas(schemas);
    }
}

/// Creates a policy profile (checked first: unknown fields and rules are refused).
#[utoipa::path(
    post, path = "/policy-profiles", operation_id = "create_policy_profile",
    tag = "tools",
    request_body = ProfileBody,
    responses((status = 201, description = "The new profile, version 1.", body = PolicyProfileView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<ProfileBody>,
) -> Result<(StatusCode, axum::Json<PolicyProfileView>), ApiError> {
    context.require(Scope::Admin)?;
    let profile = NewProfile::parse(&body.name, Value::Object(body.document))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(PolicyProfileView::from(&profiles::create(&state.db, &context, &profile).await?)),
    ))
}

/// The tenant's policy profiles.
#[utoipa::path(
    get, path = "/policy-profiles", operation_id = "list_policy_profiles",
    tag = "tools",
    responses((status = 200, description = "Every policy profile of the tenant.", body = PolicyProfileList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<PolicyProfileList>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(PolicyProfileList::new(&profiles::list(&state.db, &context).await?)))
}

/// A policy profile.
#[utoipa::path(
    get, path = "/policy-profiles/{id}", operation_id = "get_policy_profile",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The policy profile's id.")),
    responses((status = 200, description = "The profile.", body = PolicyProfileView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<PolicyProfileId>,
) -> Result<axum::Json<PolicyProfileView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(PolicyProfileView::from(&profiles::get(&state.db, &context, id).await?)))
}

/// Replaces a policy profile's name and document; its version goes up by one.
#[utoipa::path(
    put, path = "/policy-profiles/{id}", operation_id = "replace_policy_profile",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The policy profile's id.")),
    request_body = ProfileBody,
    responses((status = 200, description = "The profile as replaced.", body = PolicyProfileView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn replace(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<PolicyProfileId>,
    Json(body): Json<ProfileBody>,
) -> Result<axum::Json<PolicyProfileView>, ApiError> {
    context.require(Scope::Admin)?;
    let profile = NewProfile::parse(&body.name, Value::Object(body.document))?;
    Ok(axum::Json(PolicyProfileView::from(&profiles::replace(&state.db, &context, id, &profile).await?)))
}

/// Deletes a policy profile (not the tenant's active one).
#[utoipa::path(
    delete, path = "/policy-profiles/{id}", operation_id = "delete_policy_profile",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The policy profile's id.")),
    responses((status = 204, description = "Deleted.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<PolicyProfileId>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    profiles::delete(&state.db, &context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
