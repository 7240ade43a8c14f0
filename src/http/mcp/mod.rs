//! `/mcp`: Switchboard's own MCP server (`server.rs`) over streamable HTTP, for callers with a tenant API key of scope
//! `chat`. The key is checked here, before rmcp sees the request; the tool reads the tenant from the
//! request's extensions.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

mod server;

use super::AppState;
use super::error::ApiError;
use super::extract::Tenant;
use crate::auth::context::Scope;
use server::KnowledgeServer;

/// The scope a key needs here; named in the challenges, so a client knows what to ask for.
const NEEDED: Scope = Scope::Chat;

/// JSON-RPC's range for server-defined errors starts at -32000; the HTTP status and the challenge say which
/// refusal it is.
const NOT_AUTHORIZED: i32 = -32001;
const INTERNAL_ERROR: i32 = -32603;

pub fn service(state: &AppState) -> StreamableHttpService<KnowledgeServer, LocalSessionManager> {
    let server = KnowledgeServer::new(state.db.clone(), state.retriever.clone());
    // rmcp refuses non-loopback Host headers by default (DNS rebinding); every request here carries a
    // tenant key, which a rebound page does not have, so the service answers under any host name.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(server.clone()), LocalSessionManager::default().into(), config)
}

pub async fn authenticate(tenant: Result<Tenant, ApiError>, mut request: Request, next: Next) -> Response {
    let presented = request.headers().contains_key(header::AUTHORIZATION);
    let authorized = tenant.and_then(|Tenant(context)| {
        context.require(NEEDED)?;
        Ok(context)
    });
    let context = match authorized {
        Ok(context) => context,
        Err(error) => return refusal(&error, presented),
    };
    request.extensions_mut().insert(context);
    next.run(request).await
}

/// A refusal as the MCP authorization spec has it: 401 with a `WWW-Authenticate: Bearer` challenge
/// (`invalid_token` only when a token was presented, RFC 6750 §3.1), 403 with `insufficient_scope`, and a
/// JSON-RPC error body, which MCP clients show where our own error shape would be an unexplained failure.
/// No `resource_metadata`: there is no protected-resource metadata document to point at.
fn refusal(error: &ApiError, presented: bool) -> Response {
    let needed = NEEDED.as_str();
    let challenge = match error.status {
        StatusCode::UNAUTHORIZED if presented => Some(format!("Bearer error=\"invalid_token\", scope=\"{needed}\"")),
        StatusCode::UNAUTHORIZED => Some(format!("Bearer scope=\"{needed}\"")),
        // A suspended tenant's key is good, and no other scope would help: no challenge.
        StatusCode::FORBIDDEN if error.code == "tenant_suspended" => None,
        StatusCode::FORBIDDEN => Some(format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\"")),
        _ => None,
    };
    let code = if error.status.is_server_error() { INTERNAL_ERROR } else { NOT_AUTHORIZED };
    // The API's stable code rides along in `data`, so a client can tell a suspension from a missing scope.
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": error.message, "data": { "code": error.code } },
    });
    let mut response = (error.status, axum::Json(body)).into_response();
    if let Some(value) = challenge.and_then(|challenge| HeaderValue::from_str(&challenge).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
