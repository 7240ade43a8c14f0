//! `/api/v1/end-users/{external_user_id}` (admin), end users known by the tenant's own id: erasing one,
//! with their conversations and their runs' text (usage and audit keep a pseudonym in their place); and
//! `…/policy-group`, the group whose policy profile their runs use.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::end_users::{EndUserGroupView, ErasureView};
use crate::auth::context::Scope;
use crate::users::{self, EndUserError};

impl From<EndUserError> for ApiError {
    fn from(error: EndUserError) -> Self {
        match error {
            error @ EndUserError::NotFound => {
                Self::new(axum::http::StatusCode::NOT_FOUND, "end_user_not_found", error.to_string())
            }
            error @ EndUserError::Busy => Self::conflict("end_user_busy", error.to_string()),
            EndUserError::Invalid(message) => Self::invalid(message),
            EndUserError::Database(error) => Self::database(&error),
        }
    }
}

/// Erases an end user: their conversations, messages and runs' text are deleted, and their id in usage
/// records and the audit trail is replaced by a pseudonym (counts and costs stay). One transaction: all
/// or nothing. Erasing the same id again answers 404 `end_user_not_found`; while a run of theirs has not
/// ended, 409 `end_user_busy`.
#[utoipa::path(
    delete, path = "/end-users/{external_user_id}", tag = "tenant",
    params((
        "external_user_id" = String, Path, min_length = 1, max_length = 200,
        description = "The end user's id in the tenant's own system, as the integration API and widget tokens named them.",
    )),
    responses((status = 200, description = "What was erased, and the pseudonym that replaces them.", body = ErasureView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn erase(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(external_user_id): Path<String>,
) -> Result<axum::Json<ErasureView>, ApiError> {
    context.require(Scope::Admin)?;
    if external_user_id.is_empty() || external_user_id.len() > 200 {
        return Err(ApiError::invalid("external_user_id must be 1 to 200 bytes"));
    }
    let erasure = users::erase(&state.db, &context, &external_user_id).await?;
    Ok(axum::Json(ErasureView::from(&erasure)))
}

/// What `PUT /api/v1/end-users/{external_user_id}/policy-group` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyGroupBody {
    /// The group (1 to 64 characters: lower-case letters, digits, `_`, `.`, `-`), or null for none. The
    /// profile the tenant maps to it (`PUT /api/v1/policy-groups/{group}`) applies to the end user's runs,
    /// unless the calling key names its own; a group mapped to no profile: the tenant's active one.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    group: Option<String>,
}

/// An end user's policy group.
#[utoipa::path(
    get, path = "/end-users/{external_user_id}/policy-group", tag = "tools",
    params((
        "external_user_id" = String, Path, min_length = 1, max_length = 200,
        description = "The end user's id in the tenant's own system, as the integration API and widget tokens name them.",
    )),
    responses(
        (status = 200, description = "The end user's group (null: none).", body = EndUserGroupView),
        (status = 404, description = "`end_user_not_found`: no end user of that id."),
    ),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get_policy_group(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(external_user_id): Path<String>,
) -> Result<axum::Json<EndUserGroupView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(EndUserGroupView::from(&users::group(&state.db, &context, &external_user_id).await?)))
}

/// Puts an end user in a policy group (or in none, with `null`); the end user is made on first sight, as
/// the integration API and widget tokens make them.
#[utoipa::path(
    put, path = "/end-users/{external_user_id}/policy-group", tag = "tools",
    params((
        "external_user_id" = String, Path, min_length = 1, max_length = 200,
        description = "The end user's id in the tenant's own system, as the integration API and widget tokens name them.",
    )),
    request_body = PolicyGroupBody,
    responses((status = 200, description = "The end user's group as set.", body = EndUserGroupView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn set_policy_group(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(external_user_id): Path<String>,
    Json(body): Json<PolicyGroupBody>,
) -> Result<axum::Json<EndUserGroupView>, ApiError> {
    context.require(Scope::Admin)?;
    let set = users::set_group(&state.db, &context, &external_user_id, body.group.as_deref()).await?;
    Ok(axum::Json(EndUserGroupView::from(&set)))
}
