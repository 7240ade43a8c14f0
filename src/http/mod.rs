//! The HTTP layer: the only module that knows axum. One route table; handlers extract, make one call into
//! the domain, and convert the result.

mod answer;
mod api_keys;
mod audit;
mod connectors;
mod conversations;
mod documents;
pub mod error;
mod extract;
mod health;
mod integration;
mod json_errors;
mod mcp;
mod openai;
mod policy_profiles;
mod providers;
pub mod request_id;
mod runs;
mod sse;
mod tenant_config;
mod tenants;
mod tool_calls;
mod views;
mod web;
mod widget_tokens;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};

use crate::engine::Engine;
use crate::retrieval::Retriever;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::OperatorToken;
use crate::crypto::MasterKeys;
use crate::outbound::OutboundPolicy;
use crate::tools::Toolbox;
use error::ApiError;

/// What handlers share: the application-role pool, the engine, the operator token's digest, the master
/// keys that seal tenants' secrets, and the rule for tenant-supplied URLs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub engine: Engine,
    pub retriever: Retriever,
    pub operator_token: Arc<OperatorToken>,
    pub keys: Arc<MasterKeys>,
    pub outbound: OutboundPolicy,
    pub tools: Toolbox,
    pub web: WebSettings,
}

/// What `GET /` and `GET /widget.js` serve: whether the page embeds a live demo widget, and where the
/// assets come from (built in, or a folder read on each request while working on the widget).
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub demo: crate::demo::DemoMode,
    pub assets_dir: Option<std::path::PathBuf>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/tenants", post(tenants::create))
        .route("/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/api-keys/{id}", delete(api_keys::revoke))
        .route("/tenant/config", get(tenant_config::get).patch(tenant_config::patch))
        .route("/providers/{provider}", get(providers::get).put(providers::put).delete(providers::delete))
        .route("/audit-events", get(audit::list))
        .route("/documents", post(documents::add).get(documents::list))
        .route("/documents/{id}", delete(documents::delete))
        .route("/search", post(documents::search))
        .route("/sessions", post(conversations::create).get(conversations::list))
        .route("/sessions/{id}", get(conversations::get).patch(conversations::update).delete(conversations::delete))
        .route("/sessions/{id}/messages", get(conversations::messages).post(conversations::post_message))
        .route("/runs/{id}", get(runs::get))
        .route("/runs/{id}/events", get(runs::events))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/mcp-connectors", post(connectors::create).get(connectors::list))
        .route("/mcp-connectors/{id}", get(connectors::get).patch(connectors::update).delete(connectors::delete))
        .route("/mcp-connectors/{id}/refresh", post(connectors::refresh))
        .route("/policy-profiles", post(policy_profiles::create).get(policy_profiles::list))
        .route(
            "/policy-profiles/{id}",
            get(policy_profiles::get).put(policy_profiles::replace).delete(policy_profiles::delete),
        )
        .route("/integration/chat", post(integration::chat))
        .route("/widget-tokens", post(widget_tokens::mint))
        .route("/workspaces", post(workspaces::create).get(workspaces::list))
        .route("/workspaces/{id}/files/{*path}", axum::routing::put(workspaces::put_file))
        .route("/workspaces/{id}/runs", post(workspaces::start_run))
        .route("/runs/{id}/patches", get(workspaces::patches))
        .route("/tool-calls/{id}/approve", post(tool_calls::approve))
        .route("/tool-calls/{id}/deny", post(tool_calls::deny));

    let mcp = Router::new()
        .fallback_service(mcp::service(&state))
        .layer(axum::middleware::from_fn_with_state(state.clone(), mcp::authenticate));

    // Its errors get OpenAI's shape from `openai_errors`, below, which also covers what no route answers.
    let openai = Router::new()
        .route("/chat/completions", post(openai::completions))
        .route("/models", get(openai::list_models))
        .route("/models/{*id}", get(openai::retrieve_model))
        .fallback(openai::no_route);

    Router::new()
        .route("/", get(web::demo_page))
        .route("/widget.js", get(web::widget_script))
        .route("/healthz", get(health::healthz))
        .nest("/v1", openai)
        .nest("/mcp", mcp)
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND) })
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                // Outermost, so that every answer of the APIs carries it, errors made by the layers below too.
                .layer(cross_origin())
                .layer(axum::middleware::from_fn(request_id::middleware))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                // Outside `json_errors`, so that what it turns into our shape is then OpenAI's under `/v1`.
                .layer(axum::middleware::from_fn(openai::openai_errors))
                .layer(axum::middleware::from_fn(json_errors::middleware))
                .layer(CatchPanicLayer::new())
                .layer(RequestBodyLimitLayer::new(max_body_bytes))
                .layer(DefaultBodyLimit::max(max_body_bytes)),
        )
}

/// The APIs (`/api/…`, `/v1/…`) answer pages of any origin: the widget runs inside the tenant's own site,
/// and OpenAI-style browser clients call `/v1`. Safe because they authenticate with bearer tokens, never
/// cookies, so a foreign page can only use a token it was given. Not the demo page: its token is the
/// visitor's, and no other site may read it.
fn cross_origin() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    let api = AllowOrigin::predicate(|_, request: &axum::http::request::Parts| {
        let path = request.uri.path();
        path.starts_with("/api/") || path.starts_with("/v1/")
    });
    CorsLayer::new()
        .allow_origin(api)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        // Any: SDKs add headers of their own (the OpenAI SDK's `x-stainless-*`); nothing is credentialed.
        .allow_headers(AllowHeaders::any())
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600))
}

/// The request's log span: method, path and request id; never headers (they carry tokens) nor query strings.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request.extensions().get::<request_id::RequestId>().map_or("", |id| id.0.as_str());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        tenant_id = tracing::field::Empty,
    )
}

/// Serves until `shutdown` completes, then lets in-flight requests finish (up to a grace period).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Without TCP_NODELAY, Nagle's algorithm holds small SSE frames back until the client's delayed
    // ACK: about 40 ms added to the first token of every stream (measured by examples/turn_latency.rs).
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    // The peer's address: the demo page is only handed to this machine's own browser.
    let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stop_rx_for_grace = stop_rx.clone();
    tokio::select! {
        result = server => result,
        () = async move {
            let _ = stop_rx_for_grace.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        } => {
            tracing::warn!("in-flight requests did not finish within 30 s of shutdown; closing them");
            Ok(())
        }
    }
}
