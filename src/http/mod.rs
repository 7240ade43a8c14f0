//! The HTTP layer: the only module that knows axum. One route table; handlers extract, make one call into
//! the domain, and convert the result.

mod answer;
mod anthropic;
mod api_keys;
mod audit;
mod budgets;
mod connectors;
mod conversations;
mod documents;
pub mod error;
mod extract;
mod health;
mod integration;
mod json_errors;
mod limits;
mod mcp;
mod metrics;
mod openai;
mod policy_profiles;
mod provider_models;
mod providers;
mod rate_limits;
pub mod request_id;
mod runs;
mod serve;
mod sse;
mod streams;
mod tenant_config;
mod tenants;
mod tool_calls;
mod usage;
mod views;
mod web;
mod widget_tokens;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post};

use crate::engine::Engine;
use crate::retrieval::Retriever;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::auth::OperatorToken;
use crate::crypto::MasterKeys;
use crate::outbound::OutboundPolicy;
use crate::tools::Toolbox;
use error::ApiError;
pub use limits::ClientLimits;
pub use serve::serve_with_limits;
use streams::OpenStreams;

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
    pub metrics: crate::metrics::Metrics,
}

/// What `GET /` and `GET /widget.js` serve: whether the page embeds a live demo widget, and where the
/// assets come from (built in, or a folder read on each request while working on the widget).
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub demo: crate::demo::DemoMode,
    pub assets_dir: Option<std::path::PathBuf>,
}

/// The router with the default limits and one body limit for every route (the test harness's).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    router_with_limits(state, &ClientLimits::with_one_body_limit(max_body_bytes))
}

pub fn router_with_limits(state: AppState, limits: &ClientLimits) -> Router {
    // `POST /documents` and `PUT /workspaces/{id}/files/…` take larger bodies (`limits::is_document_upload`).
    let api = Router::new()
        .route("/tenants", post(tenants::create))
        .route("/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/api-keys/{id}", delete(api_keys::revoke).patch(api_keys::update))
        .route("/api-keys/{id}/rate-limits", get(rate_limits::get_key).put(rate_limits::put_key))
        .route("/rate-limits", get(rate_limits::get).put(rate_limits::put))
        .route("/tenant/config", get(tenant_config::get).patch(tenant_config::patch))
        .route("/budgets", get(budgets::list))
        .route("/usage", get(usage::report))
        .route("/providers/{provider}", get(providers::get).put(providers::put).delete(providers::delete))
        .route("/providers/{provider}/models", get(provider_models::list))
        .route(
            "/providers/{provider}/models/{name}",
            axum::routing::put(provider_models::put).delete(provider_models::delete),
        )
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

    // OpenAI's door and Anthropic's share `/v1`, where each one's SDKs look. Errors get OpenAI's shape from
    // `openai_errors`, below, which also covers what no route answers, except under `/v1/messages`, where
    // `anthropic_errors` gives them Anthropic's.
    let v1 = Router::new()
        .route("/chat/completions", post(openai::completions))
        .route("/embeddings", post(openai::embeddings))
        .route("/responses", post(openai::create_response))
        .route("/responses/{id}", get(openai::retrieve_response).delete(openai::delete_response))
        .route("/responses/{id}/input_items", get(openai::response_input_items))
        .route("/responses/{id}/cancel", post(openai::cancel_response))
        .route("/models", get(openai::list_models))
        .route("/models/{*id}", get(openai::retrieve_model))
        .route("/messages", post(anthropic::messages))
        .route("/messages/count_tokens", post(anthropic::count_tokens))
        .fallback(openai::no_route);

    Router::new()
        .route("/", get(web::demo_page))
        .route("/widget.js", get(web::widget_script))
        .route("/healthz", get(health::healthz))
        .nest("/v1", v1)
        .nest("/mcp", mcp)
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .nest("/api/v1", api)
        .route_layer(from_fn(metrics::tag_route))
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND) })
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                // Outermost, so that every answer is counted with the status the client got.
                .layer(from_fn(metrics::count_requests))
                // So that every answer carries it: CORS preflights, which the next layer answers
                // itself, and errors made by the layers below.
                .layer(from_fn(request_id::middleware))
                // Outside the rest, so that every answer of the APIs carries its headers, errors made below too.
                // (Its preflight answers need a body type with a default, which `TraceLayer`'s has not: an
                // axum middleware must come between them.)
                .layer(cross_origin())
                // Outside `json_errors`, so that what it turns into our shape is then OpenAI's under `/v1`
                // (Anthropic's under `/v1/messages`).
                .layer(from_fn(openai::openai_errors))
                .layer(from_fn(anthropic::anthropic_errors))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(from_fn(json_errors::middleware))
                .layer(CatchPanicLayer::new())
                // Limits per client (`limits.rs`): headers (431), the route's body size (413) and pace (408).
                .layer(from_fn_with_state(limits.clone(), limits::header_limits))
                .layer(from_fn_with_state(limits.clone(), limits::body_limits))
                // `body_limits` sets each route's limit; axum's single default would cap documents too.
                .layer(DefaultBodyLimit::disable())
                .layer(axum::Extension(OpenStreams::new(limits.max_streams_per_tenant, limits.max_streams_per_caller))),
        )
}

/// What the operator's metrics address serves: `/metrics`, no token.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics::open_metrics)).with_state(state)
}

/// The APIs (`/api/…`, `/v1/…`) answer pages of any origin: the widget runs inside the tenant's own site,
/// and OpenAI- or Anthropic-style browser clients call `/v1`. Safe because they authenticate with tokens
/// in headers (bearer, or Anthropic's `x-api-key`), never cookies, so a foreign page can only use a token
/// it was given. Not the demo page: its token is the
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
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            // `/v1`'s rate-limit headers (`rate_limits::openai_headers`), for browser clients.
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
            // And the Anthropic door's (`rate_limits::anthropic_headers`), with its `request-id`.
            HeaderName::from_static("anthropic-ratelimit-requests-limit"),
            HeaderName::from_static("anthropic-ratelimit-requests-remaining"),
            HeaderName::from_static("anthropic-ratelimit-requests-reset"),
            HeaderName::from_static("anthropic-ratelimit-tokens-limit"),
            HeaderName::from_static("anthropic-ratelimit-tokens-remaining"),
            HeaderName::from_static("anthropic-ratelimit-tokens-reset"),
            HeaderName::from_static("request-id"),
        ])
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

/// Serves with the default limits (see [`serve_with_limits`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, &ClientLimits::default(), shutdown).await
}
