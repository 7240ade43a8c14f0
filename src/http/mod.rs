//! The HTTP layer: the only module that knows axum. One route table; handlers extract, make one call into
//! the domain, and convert the result.

mod answer;
mod anthropic;
mod api_keys;
mod attachments;
mod audit;
mod budgets;
mod changeset_checks;
mod changesets;
mod collections;
mod connectors;
mod conversations;
mod documents;
mod end_users;
pub mod error;
mod extract;
mod feedback;
mod health;
mod integration;
mod json_errors;
mod limits;
mod mcp;
mod mcp_prompts;
mod oauth;
mod metrics;
mod openai;
mod openapi;
mod policy_groups;
mod policy_profiles;
mod prompt_templates;
mod provider_models;
mod providers;
mod rate_limits;
pub mod request_id;
mod runs;
mod serve;
mod sse;
mod streams;
mod tenant_config;
mod tenant_export;
mod tenant_profile;
mod tenants;
mod tool_calls;
mod uploads;
mod usage;
mod views;
mod web;
mod webhooks;
mod widget_tokens;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};

use crate::engine::Engine;
use crate::retrieval::Retriever;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// The places for tenant exports being read (each holds a connection while its client reads).
    pub exports: crate::tenants::export::Exports,
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

#[expect(clippy::too_many_lines, reason = "the one route table: a line per path reads better than pieces")]
pub fn router_with_limits(state: AppState, limits: &ClientLimits) -> Router {
    // `POST /documents` and `PUT /workspaces/{id}/files/…` take larger bodies (`limits::is_document_upload`),
    // `POST /workspaces/{id}/import` larger still (`limits::MAX_ARCHIVE_BYTES`).
    let api = OpenApiRouter::new()
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::get, tenants::update, tenants::delete))
        .routes(routes!(tenant_export::export))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke, api_keys::update))
        .routes(routes!(rate_limits::get_key, rate_limits::put_key))
        .routes(routes!(rate_limits::get, rate_limits::put))
        .routes(routes!(tenant_config::get, tenant_config::patch))
        .routes(routes!(tenant_profile::get, tenant_profile::put))
        .routes(routes!(budgets::list))
        .routes(routes!(usage::report))
        .routes(routes!(providers::get, providers::put, providers::delete))
        .routes(routes!(provider_models::list))
        .routes(routes!(provider_models::put, provider_models::delete))
        .routes(routes!(audit::list))
        .routes(routes!(documents::add, documents::list))
        .routes(routes!(documents::delete))
        .routes(routes!(documents::search))
        .routes(routes!(collections::create, collections::list))
        .routes(routes!(collections::get, collections::update, collections::delete))
        .routes(routes!(conversations::create, conversations::list))
        .routes(routes!(conversations::get, conversations::update, conversations::delete))
        .routes(routes!(conversations::messages, conversations::post_message))
        .routes(routes!(conversations::choose_branch))
        .routes(routes!(conversations::regenerate))
        .routes(routes!(conversations::edit))
        .routes(routes!(attachments::attach, attachments::list))
        .routes(routes!(attachments::detach))
        .routes(routes!(feedback::give))
        .routes(routes!(feedback::export))
        .routes(routes!(runs::get))
        .routes(routes!(runs::events))
        .routes(routes!(runs::cancel))
        .routes(routes!(connectors::create, connectors::list))
        .routes(routes!(connectors::get, connectors::update, connectors::delete))
        .routes(routes!(connectors::refresh))
        .routes(routes!(connectors::authorize))
        .routes(routes!(oauth::callback))
        .routes(routes!(oauth::client_metadata))
        .routes(routes!(mcp_prompts::list))
        .routes(routes!(mcp_prompts::fill))
        .routes(routes!(policy_profiles::create, policy_profiles::list))
        .routes(routes!(policy_profiles::get, policy_profiles::replace, policy_profiles::delete))
        .routes(routes!(policy_groups::list))
        .routes(routes!(policy_groups::put, policy_groups::delete))
        .routes(routes!(prompt_templates::create, prompt_templates::list))
        .routes(routes!(prompt_templates::get_active, prompt_templates::put_active))
        .routes(routes!(prompt_templates::preview))
        .routes(routes!(prompt_templates::get))
        .routes(routes!(integration::chat))
        .routes(routes!(widget_tokens::mint))
        .routes(routes!(end_users::erase))
        .routes(routes!(end_users::get_policy_group, end_users::set_policy_group))
        .routes(routes!(workspaces::create, workspaces::list))
        .routes(routes!(workspaces::get))
        .routes(routes!(workspaces::list_files))
        .routes(routes!(workspaces::get_file, workspaces::put_file, workspaces::delete_file))
        .routes(routes!(workspaces::rename))
        .routes(routes!(workspaces::import))
        .routes(routes!(workspaces::export))
        .routes(routes!(workspaces::start_run))
        .routes(routes!(workspaces::patches))
        .routes(routes!(changesets::create, changesets::list))
        .routes(routes!(changesets::get))
        .routes(routes!(changesets::add_patches))
        .routes(routes!(changesets::submit))
        .routes(routes!(changesets::approve))
        .routes(routes!(changesets::reject))
        .routes(routes!(changesets::supersede))
        .routes(routes!(changesets::apply))
        .routes(routes!(changeset_checks::run))
        .routes(routes!(changeset_checks::list))
        .routes(routes!(changeset_checks::get))
        .routes(routes!(tool_calls::approve))
        .routes(routes!(tool_calls::deny))
        .routes(routes!(tool_calls::input))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver));

    let mcp = Router::new()
        .fallback_service(mcp::service(&state))
        .layer(axum::middleware::from_fn_with_state(state.clone(), mcp::authenticate));

    // OpenAI's door and Anthropic's share `/v1`, where each one's SDKs look. Errors get OpenAI's shape from
    // `openai_errors`, below, which also covers what no route answers, except under `/v1/messages`, where
    // `anthropic_errors` gives them Anthropic's.
    let v1 = OpenApiRouter::new()
        .routes(routes!(openai::completions))
        .routes(routes!(openai::embeddings))
        .routes(routes!(openai::create_response))
        .routes(routes!(openai::retrieve_response, openai::delete_response))
        .routes(routes!(openai::response_input_items))
        .routes(routes!(openai::cancel_response))
        .routes(routes!(openai::list_models))
        .routes(routes!(openai::retrieve_model))
        .routes(routes!(anthropic::messages))
        .routes(routes!(anthropic::count_tokens))
        .fallback(openai::no_route);

    let (documented, paths) = OpenApiRouter::new()
        .routes(routes!(web::demo_page))
        .routes(routes!(web::widget_script))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .nest("/v1", v1)
        .nest("/api/v1", api)
        .split_for_parts();

    documented
        .nest("/mcp", mcp)
        .merge(openapi::routes(openapi::finish(paths)))
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
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        // One line per request with its status and latency.
                        .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
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

pub use metrics::metrics_router;

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
            // A workspace file's version, which an IDE sends back in `If-Match`.
            header::ETAG,
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
    let route = request.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |route| route.as_str());
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        method = %request.method(),
        path = %request.uri().path(),
        route,
        request_id,
        tenant_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, request.headers());
    // In every log line of the request, so a log can be found from its trace and back.
    if let Some(trace_id) = crate::telemetry::trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    span
}

/// Serves with the default limits (see [`serve_with_limits`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, &ClientLimits::default(), shutdown).await
}
