//! `/api/v1/workspaces` (runs scope): the IDE door. Workspaces and their files; agent runs queued on
//! them (202 at once; follow `/runs/{id}/events`); the changes a run proposed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    name: String,
}

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

pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<WorkspaceList>, ApiError> {
    context.require(Scope::Runs)?;
    Ok(axum::Json(WorkspaceList::new(&workspaces::list(&state.db, &context).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    content: String,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    instruction: String,
    idempotency_key: Option<String>,
}

pub async fn start_run(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    headers: HeaderMap,
    Json(body): Json<RunBody>,
) -> Result<(StatusCode, axum::Json<AgentRunStarted>), ApiError> {
    context.require(Scope::Runs)?;
    let header = extract::idempotency_key(&headers)?;
    let key = body.idempotency_key.or(header).as_deref().map(IdempotencyKey::parse).transpose()?;
    rate_limits::admit(&state, &context, &Demand { prompt: &[&body.instruction], ..Demand::default() }).await?;
    let run = state.engine.start_agent_run(&context, id, body.instruction, key.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(AgentRunStarted::from(&run))))
}

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
