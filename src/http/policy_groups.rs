//! `/api/v1/policy-groups` (admin): which policy profile each group of end users gets. The profile in force
//! for a run is the most specific one assigned, whole: the calling key's own, else its end user's group's,
//! else the tenant's active profile.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::policy_groups::{PolicyGroupList, PolicyGroupView};
use crate::auth::context::Scope;
use crate::ids::PolicyProfileId;
use crate::policy::profiles;

/// What `PUT /api/v1/policy-groups/{group}` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicyGroup {
    /// A policy profile of the tenant; an id it has no profile of answers 422 `unknown_policy_profile`.
    #[schema(value_type = uuid::Uuid)]
    policy_profile_id: PolicyProfileId,
}

/// Gives a group's end users a policy profile (the group is made, or its profile replaced).
#[utoipa::path(
    put, path = "/policy-groups/{group}", tag = "tools",
    params(("group" = String, Path, pattern = r"^[a-z0-9][a-z0-9_.-]{0,63}$", description = "The group's name.")),
    request_body = PutPolicyGroup,
    responses((status = 200, description = "The group as set.", body = PolicyGroupView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn put(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(group): Path<String>,
    Json(body): Json<PutPolicyGroup>,
) -> Result<axum::Json<PolicyGroupView>, ApiError> {
    context.require(Scope::Admin)?;
    let group = profiles::put_group(&state.db, &context, &group, body.policy_profile_id).await?;
    Ok(axum::Json(PolicyGroupView::from(&group)))
}

/// The tenant's groups and their profiles.
#[utoipa::path(
    get, path = "/policy-groups", tag = "tools",
    responses((status = 200, description = "Every group the tenant maps to a profile.", body = PolicyGroupList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<PolicyGroupList>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(PolicyGroupList::new(&profiles::list_groups(&state.db, &context).await?)))
}

/// Removes a group's profile: its end users inherit the tenant's active profile again (they keep their
/// group, which a later `PUT` maps again).
#[utoipa::path(
    delete, path = "/policy-groups/{group}", tag = "tools",
    params(("group" = String, Path, pattern = r"^[a-z0-9][a-z0-9_.-]{0,63}$", description = "The group's name.")),
    responses((status = 204, description = "Removed.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(group): Path<String>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    profiles::delete_group(&state.db, &context, &group).await?;
    Ok(StatusCode::NO_CONTENT)
}
