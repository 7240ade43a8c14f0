//! `/api/v1/workspaces/{id}/changesets/{cid}/checks` and `…/artifacts` (runs scope): a workspace's checks
//! (MCP tools of the tenant's connectors, named in its `checks`) run on a changeset's version of the files,
//! each through the tenant's policy profile, and the immutable artifacts they leave.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::{Path, Tenant};
use super::views::changeset_checks::{ArtifactList, ArtifactView};
use crate::auth::context::Scope;
use crate::ids::{ArtifactId, ChangesetId, WorkspaceId};
use crate::workspaces::checks::{self, CheckError};

impl From<CheckError> for ApiError {
    fn from(error: CheckError) -> Self {
        let message = error.to_string();
        match error {
            CheckError::WorkspaceNotFound => Self::not_found(message),
            CheckError::ChangesetNotFound => Self::new(StatusCode::NOT_FOUND, "changeset_not_found", message),
            CheckError::ArtifactNotFound => Self::new(StatusCode::NOT_FOUND, "artifact_not_found", message),
            CheckError::NoChecks => Self::conflict("no_checks", message),
            CheckError::TooLarge { .. } => Self::invalid_code("check_input_too_large", message),
            CheckError::Database(error) => Self::database(&error),
        }
    }
}

/// Runs the workspace's checks on the changeset's version of the files (the workspace's files with its
/// patches applied, at most 4 MiB), each called with `{"files": [{"path", "content"}, …]}`; answers the
/// artifacts they left. A check the policy profile denies, or one that would need an approval, leaves a
/// `denied` artifact.
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/checks", operation_id = "run_changeset_checks",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    responses(
        (status = 200, description = "One artifact per check, in the order of the workspace's `checks`.",
            body = ArtifactList),
        (status = 400, description = "A malformed id (`invalid_path`)."),
        (status = 404, description = "No such workspace, or no such changeset in it (`changeset_not_found`)."),
        (status = 409, description = "The workspace has no checks (`no_checks`)."),
        (status = 422, description = "The changeset's files are too large for a check (`check_input_too_large`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn run(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
) -> Result<axum::Json<ArtifactList>, ApiError> {
    context.require(Scope::Runs)?;
    let artifacts = state.engine.run_checks(&context, id, changeset).await?;
    Ok(axum::Json(ArtifactList::of(&artifacts)))
}

/// The artifacts of a changeset's checks, oldest first.
#[utoipa::path(
    get, path = "/workspaces/{id}/changesets/{cid}/artifacts", operation_id = "list_changeset_artifacts",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    responses(
        (status = 200, description = "The changeset's artifacts.", body = ArtifactList),
        (status = 400, description = "A malformed id (`invalid_path`)."),
        (status = 404, description = "No such workspace, or no such changeset in it (`changeset_not_found`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
) -> Result<axum::Json<ArtifactList>, ApiError> {
    context.require(Scope::Runs)?;
    let artifacts = checks::list(&state.db, &context, id, changeset).await?;
    Ok(axum::Json(ArtifactList::of(&artifacts)))
}

/// One artifact of a changeset's checks.
#[utoipa::path(
    get, path = "/workspaces/{id}/changesets/{cid}/artifacts/{artifact_id}", operation_id = "get_changeset_artifact",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
        ("artifact_id" = uuid::Uuid, Path, description = "The artifact's id."),
    ),
    responses(
        (status = 200, description = "The artifact.", body = ArtifactView),
        (status = 400, description = "A malformed id (`invalid_path`)."),
        (status = 404, description = "No such artifact of the changeset (`artifact_not_found`), or no such \
            changeset or workspace."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset, artifact)): Path<(WorkspaceId, ChangesetId, ArtifactId)>,
) -> Result<axum::Json<ArtifactView>, ApiError> {
    context.require(Scope::Runs)?;
    let artifact = checks::get(&state.db, &context, id, changeset, artifact).await?;
    Ok(axum::Json(ArtifactView::from(&artifact)))
}
