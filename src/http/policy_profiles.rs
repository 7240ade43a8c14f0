//! `/api/v1/policy-profiles` (admin): what the assistant may do with tools. A profile is checked when
//! saved (unknown fields and rules are refused); the tenant config's `active_policy_profile_id` names the
//! one in force.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::policy_profiles::{PolicyProfileList, PolicyProfileView};
use crate::auth::context::Scope;
use crate::ids::PolicyProfileId;
use crate::policy::profiles::{self, NewProfile};

/// `{"name": …}` plus the profile's own fields (`tool_allowlist`, `read_only_mode`, …).
#[derive(Debug, Deserialize)]
pub struct ProfileBody {
    name: String,
    #[serde(flatten)]
    document: serde_json::Map<String, Value>,
}

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

pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<PolicyProfileList>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(PolicyProfileList::new(&profiles::list(&state.db, &context).await?)))
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<PolicyProfileId>,
) -> Result<axum::Json<PolicyProfileView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(PolicyProfileView::from(&profiles::get(&state.db, &context, id).await?)))
}

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

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<PolicyProfileId>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    profiles::delete(&state.db, &context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
