//! `/api/v1/workspaces` (runs scope): the IDE door. Workspaces and their files; agent runs queued on
//! them (202 at once; follow `/runs/{id}/events`); the changes a run proposed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use crate::api_keys::Scope;
use crate::ids::{RunId, WorkspaceId};
use crate::workspaces::{self, StartRunError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<NewWorkspace>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    context.require(Scope::Runs)?;
    Ok((StatusCode::CREATED, axum::Json(json!(workspaces::create(&state.db, &context, &body.name).await?))))
}

pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Runs)?;
    Ok(axum::Json(json!({ "workspaces": workspaces::list(&state.db, &context).await? })))
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
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    context.require(Scope::Runs)?;
    let header = headers.get("idempotency-key").and_then(|value| value.to_str().ok());
    let key = body.idempotency_key.as_deref().or(header);
    if key.is_some_and(|key| !(1..=200).contains(&key.len())) {
        return Err(ApiError::invalid("idempotency_key must be 1 to 200 characters"));
    }
    let run = workspaces::start_run(&state.db, &state.engine, &context, id, body.instruction, key).await.map_err(
        |error| match error {
            StartRunError::Engine(error) => ApiError::from(error),
            StartRunError::Idempotency(error) => ApiError::from(error),
        },
    )?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "run": run }))))
}

pub async fn patches(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<RunId>,
) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Runs)?;
    state.engine.run(&context, id).await?;
    Ok(axum::Json(json!({ "patches": workspaces::patches(&state.db, &context, id).await? })))
}
