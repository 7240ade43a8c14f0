//! `/api/v1/workspaces` (runs scope): the IDE door. Workspaces and their files; agent runs queued on
//! them (202 at once; follow `/runs/{id}/events`); the changes a run proposed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{self, Json, Path, Tenant};
use super::rate_limits;
use super::views::workspaces::{AgentRunStarted, PatchList, RunPatchView, WorkspaceList, WorkspaceView};
use crate::auth::context::Scope;
use crate::idempotency::IdempotencyKey;
use crate::ids::{RunId, WorkspaceId};
use crate::rate_limits::Demand;
use crate::workspaces;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// 1 to 200 characters (spaces around it trimmed), unique in the tenant.
    name: String,
}

/// Creates a workspace.
#[utoipa::path(
    post, path = "/workspaces", operation_id = "create_workspace",
    tag = "workspaces",
    request_body = NewWorkspace,
    responses((status = 201, description = "The new workspace.", body = WorkspaceView)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<NewWorkspace>,
) -> Result<(StatusCode, axum::Json<WorkspaceView>), ApiError> {
    context.require(Scope::Runs)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WorkspaceView::from(&workspaces::create(&state.db, &context, &body.name).await?)),
    ))
}

/// The tenant's workspaces.
#[utoipa::path(
    get, path = "/workspaces", operation_id = "list_workspaces",
    tag = "workspaces",
    responses((status = 200, description = "Every workspace of the tenant.", body = WorkspaceList)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<WorkspaceList>, ApiError> {
    context.require(Scope::Runs)?;
    Ok(axum::Json(WorkspaceList::new(&workspaces::list(&state.db, &context).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    /// The file's text, at most 1 MiB.
    content: String,
}

/// Creates or replaces a file of a workspace.
#[utoipa::path(
    put, path = "/workspaces/{id}/files/{*path}", operation_id = "put_workspace_file",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("path" = String, Path, description = "The file's path in the workspace: relative, `/`-separated, \
            without `.` or `..` segments, at most 500 bytes."),
    ),
    request_body = FileBody,
    responses((status = 204, description = "Stored.")),
    security(("tenant_key" = ["runs"])),
)]
pub async fn put_file(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, path)): Path<(WorkspaceId, String)>,
    Json(body): Json<FileBody>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Runs)?;
    workspaces::put_file(&state.db, &context, id, &path, &body.content).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// What the agent is to do.
    #[schema(min_length = 1, max_length = 100_000)]
    instruction: String,
    /// As the `Idempotency-Key` header, which it overrides.
    #[schema(min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

/// Queues an agent run on a workspace; follow it on `/runs/{id}/events`, then read its patches.
#[utoipa::path(
    post, path = "/workspaces/{id}/runs", operation_id = "start_agent_run",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200,
            description = "Makes a retry safe: a second request with the key answers the first one's run."),
    ),
    request_body = RunBody,
    responses((status = 202, description = "The run, queued (or the first request's, for a repeated \
        `Idempotency-Key`).", body = AgentRunStarted)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn start_run(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    headers: HeaderMap,
    Json(body): Json<RunBody>,
) -> Result<(StatusCode, axum::Json<AgentRunStarted>), ApiError> {
    context.require(Scope::Runs)?;
    // Each checked, even when the body's wins: a malformed key is refused wherever it is.
    let header = extract::idempotency_key(&headers)?.as_deref().map(IdempotencyKey::parse).transpose()?;
    let in_body = body.idempotency_key.as_deref().map(IdempotencyKey::parse).transpose()?;
    let key = in_body.or(header);
    rate_limits::admit(&state, &context, &Demand { prompt: &[&body.instruction], ..Demand::default() }).await?;
    let run = state.engine.start_agent_run(&context, id, body.instruction, key.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(AgentRunStarted::from(&run))))
}

/// The changes a run proposed to its workspace's files, for a person to review.
#[utoipa::path(
    get, path = "/runs/{id}/patches", operation_id = "list_run_patches",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run's proposed changes.", body = PatchList)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn patches(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<RunId>,
) -> Result<axum::Json<PatchList>, ApiError> {
    context.require(Scope::Runs)?;
    state.engine.run(&context, id).await?;
    let patches = workspaces::patches(&state.db, &context, id).await?;
    Ok(axum::Json(PatchList { patches: patches.iter().map(RunPatchView::from).collect() }))
}
