//! `/api/v1/mcp-connectors` (admin): the tenant's MCP servers and the tools they expose. Credentials go
//! in, never out.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::connectors::{ConnectorList, ConnectorView};
use crate::auth::context::Scope;
use crate::ids::ConnectorId;
use crate::tools::{self, connectors::ConnectorInput};

pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(input): Json<ConnectorInput>,
) -> Result<(StatusCode, axum::Json<ConnectorView>), ApiError> {
    context.require(Scope::Admin)?;
    let connector = tools::create(&state.db, &state.tools, &context, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ConnectorView::from(&connector))))
}

pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<ConnectorList>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorList::new(&tools::list(&state.db, &context).await?)))
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
) -> Result<axum::Json<ConnectorView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorView::from(&tools::get(&state.db, &context, id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
    Json(input): Json<ConnectorInput>,
) -> Result<axum::Json<ConnectorView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorView::from(&tools::update(&state.db, &state.tools, &context, id, input).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    tools::delete(&state.db, &state.tools, &context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn refresh(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
) -> Result<axum::Json<ConnectorView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorView::from(&tools::refresh(&state.db, &state.tools, &context, id).await?)))
}
