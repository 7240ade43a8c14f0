//! `GET /metrics` (the operator's token, or no token on the operator's own metrics address) and the
//! middleware that counts and times every HTTP answer under its route's template.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::Operator;

/// The template of the route that answered, put on the response for [`count_requests`].
#[derive(Debug, Clone)]
struct RouteTemplate(Arc<str>);

/// Inside the router (a route layer): notes which route's template matched.
pub async fn tag_route(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(RouteTemplate(Arc::from(matched.as_str())));
    }
    response
}

/// Outside every other layer: one count and one duration per answer, errors made by layers included.
/// Paths no route matched share one label, so a scanner cannot grow the series.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let is_mcp = request.uri().path().starts_with("/mcp");
    let response = next.run(request).await;
    let route = match response.extensions().get::<RouteTemplate>() {
        Some(RouteTemplate(template)) => template.to_string(),
        None if is_mcp => "/mcp".to_owned(),
        None => "unmatched".to_owned(),
    };
    let method = if is_standard(&method) { method.as_str() } else { "other" };
    crate::metrics::http_request(&route, method, response.status().as_u16(), started.elapsed());
    response
}

fn is_standard(method: &axum::http::Method) -> bool {
    use axum::http::Method;
    [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS]
        .contains(method)
}

/// `GET /metrics` on the service's address: the operator's token is required.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses((status = 200, description = "The Prometheus text format.", content_type = "text/plain", body = String)),
    security(("operator_token" = [])),
)]
pub async fn metrics(State(state): State<AppState>, _operator: Operator) -> Result<Response, ApiError> {
    Ok(exposition(&state).await)
}

/// `GET /metrics` on the operator's metrics address (`SWITCHBOARD_METRICS_LISTEN`), which only the
/// operator's network reaches: no token.
pub async fn open_metrics(State(state): State<AppState>) -> Response {
    exposition(&state).await
}

/// The metrics now; the gauges read from elsewhere (the pool, the queue in the database) are read first.
async fn exposition(state: &AppState) -> Response {
    let idle = u32::try_from(state.db.num_idle()).unwrap_or(u32::MAX);
    crate::metrics::pool(state.db.size().saturating_sub(idle), idle);
    // Without the database the queue's gauges keep their last values; the rest is still worth serving.
    match crate::runs::agent_queue(&state.db).await {
        Ok((queued, oldest)) => crate::metrics::agent_queue(queued, oldest),
        Err(error) => tracing::warn!(%error, "could not read the agent-run queue for the metrics"),
    }
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    (content_type, state.metrics.render()).into_response()
}

/// What the operator's metrics address serves: `/metrics`, no token.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(open_metrics)).with_state(state)
}
