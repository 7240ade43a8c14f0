//! `/api/v1/mcp-connectors` (admin): the tenant's MCP servers and the tools they expose. Credentials go
//! in, never out.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::connectors::{AuthorizationView, ConnectorList, ConnectorView};
use crate::auth::context::Scope;
use crate::ids::ConnectorId;
use crate::tools::{self, connectors::ConnectorInput};

/// Adds an MCP connector and discovers its tools (a server that cannot be reached leaves it `error`).
#[utoipa::path(
    post, path = "/mcp-connectors", operation_id = "create_mcp_connector",
    tag = "tools",
    request_body = ConnectorInput,
    responses((status = 201, description = "The new connector, with the tools found.", body = ConnectorView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(input): Json<ConnectorInput>,
) -> Result<(StatusCode, axum::Json<ConnectorView>), ApiError> {
    context.require(Scope::Admin)?;
    let connector = tools::create(&state.db, &state.tools, &context, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ConnectorView::from(&connector))))
}

/// The tenant's MCP connectors and their tools.
#[utoipa::path(
    get, path = "/mcp-connectors", operation_id = "list_mcp_connectors",
    tag = "tools",
    responses((status = 200, description = "Every connector of the tenant.", body = ConnectorList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<ConnectorList>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorList::new(&tools::list(&state.db, &context).await?)))
}

/// An MCP connector and its tools.
#[utoipa::path(
    get, path = "/mcp-connectors/{id}", operation_id = "get_mcp_connector",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The connector's id.")),
    responses((status = 200, description = "The connector.", body = ConnectorView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
) -> Result<axum::Json<ConnectorView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorView::from(&tools::get(&state.db, &context, id).await?)))
}

/// Changes an MCP connector: the fields given replace the stored ones.
#[utoipa::path(
    patch, path = "/mcp-connectors/{id}", operation_id = "update_mcp_connector",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The connector's id.")),
    request_body = ConnectorInput,
    responses((status = 200, description = "The connector as changed.", body = ConnectorView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn update(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
    Json(input): Json<ConnectorInput>,
) -> Result<axum::Json<ConnectorView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorView::from(&tools::update(&state.db, &state.tools, &context, id, input).await?)))
}

/// Deletes an MCP connector and its tools.
#[utoipa::path(
    delete, path = "/mcp-connectors/{id}", operation_id = "delete_mcp_connector",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The connector's id.")),
    responses((status = 204, description = "Deleted.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    tools::delete(&state.db, &state.tools, &context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reaches an MCP connector's server again and stores the tools it reports now.
#[utoipa::path(
    post, path = "/mcp-connectors/{id}/refresh", operation_id = "refresh_mcp_connector",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The connector's id.")),
    responses((status = 200, description = "The connector, with its status and tools as found.", body = ConnectorView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn refresh(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
) -> Result<axum::Json<ConnectorView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(ConnectorView::from(&tools::refresh(&state.db, &state.tools, &context, id).await?)))
}

/// Starts an OAuth connector's authorization: finds its authorization server, registers Switchboard with
/// it, and answers the URL an admin opens in a browser (valid once, for 10 minutes); the authorization
/// server sends the browser back to `/api/v1/oauth/callback`, which completes it.
#[utoipa::path(
    post, path = "/mcp-connectors/{id}/authorize", operation_id = "authorize_mcp_connector",
    tag = "tools",
    params(("id" = uuid::Uuid, Path, description = "The connector's id.")),
    responses((status = 200, description = "The URL to open.", body = AuthorizationView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn authorize(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ConnectorId>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<AuthorizationView>, ApiError> {
    context.require(Scope::Admin)?;
    let urls = super::oauth::client_urls(&state, &headers);
    let started = tools::authorization::start(&state.db, &state.tools, &context, id, &urls).await?;
    Ok(axum::Json(AuthorizationView { authorization_url: started.authorization_url, expires_at: started.expires_at }))
}
