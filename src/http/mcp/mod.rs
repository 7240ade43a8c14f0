//! `/mcp`: Switchboard's own MCP server (`server.rs`) over streamable HTTP, for callers with a tenant API key of scope
//! `chat`. The key is checked here, before rmcp sees the request; the tool reads the tenant from the
//! request's extensions.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

mod server;

use super::AppState;
use super::error::ApiError;
use super::extract::Tenant;
use crate::auth::context::Scope;
use server::KnowledgeServer;

pub fn service(state: &AppState) -> StreamableHttpService<KnowledgeServer, LocalSessionManager> {
    let server = KnowledgeServer::new(state.db.clone(), state.retriever.clone());
    // rmcp refuses non-loopback Host headers by default (DNS rebinding); every request here carries a
    // tenant key, which a rebound page does not have, so the service answers under any host name.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(server.clone()), LocalSessionManager::default().into(), config)
}

pub async fn authenticate(
    State(_): State<AppState>,
    Tenant(context): Tenant,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    request.extensions_mut().insert(context);
    Ok(next.run(request).await)
}
