//! `/api/v1/oauth/…`: the two doors of OAuth connectors that no API key opens. The callback is reached by
//! an admin's browser, sent back by the authorization server: its single-use, expiring `state` is the only
//! credential, and it answers a small page (or the API's JSON error). The client metadata document is
//! Switchboard's OAuth client id for authorization servers that take one
//! (draft-ietf-oauth-client-id-metadata-document).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::Query;
use crate::tools::authorization::{self, Callback};
use crate::tools::oauth::{self, ClientUrls};

/// Where the callback and the client metadata document are, under `SWITCHBOARD_PUBLIC_URL` (or, when the
/// service has none, the request's own host, over http).
pub fn client_urls(state: &AppState, headers: &HeaderMap) -> ClientUrls {
    let base = state.tools.settings.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| {
                !host.is_empty()
                    && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    ClientUrls {
        redirect_uri: format!("{base}/api/v1/oauth/callback"),
        metadata_document: format!("{base}/api/v1/oauth/client-metadata.json"),
    }
}

/// What the authorization server sends the browser back with (RFC 6749 §4.1.2).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state the authorization started with: single use, expires after 10 minutes.
    pub state: Option<String>,
    /// The authorization server's refusal (`access_denied`, …). Its `error_description` is not shown.
    pub error: Option<String>,
}

/// Completes an OAuth connector's authorization (the authorization server's redirect comes here): a page
/// saying so, or the API's error (`oauth_state_invalid` for a state unknown, used already or expired;
/// `oauth_failed` when the authorization server refused or failed).
#[utoipa::path(
    get, path = "/oauth/callback", operation_id = "oauth_callback",
    tag = "tools",
    params(CallbackQuery),
    responses(
        (status = 200, description = "Authorized: the connector's tools were discovered.", content_type = "text/html", body = String),
        (status = 400, description = "The state is unknown, used already or expired (`oauth_state_invalid`)."),
        (status = 502, description = "The authorization server refused or failed (`oauth_failed`)."),
    ),
)]
pub async fn callback(State(state): State<AppState>, Query(query): Query<CallbackQuery>) -> Response {
    let callback = Callback { state: query.state, code: query.code, error: query.error };
    let mut response = match authorization::complete(&state.db, &state.tools, callback).await {
        Ok(connector) => page(&format!(
            "Switchboard may now use the connector <b>{}</b> ({} tools, status {}). You can close this window.",
            escape(&connector.name),
            connector.tools.len(),
            escape(&connector.status)
        )),
        Err(error) => ApiError::from(error).into_response(),
    };
    let headers = response.headers_mut();
    // The URL carried a code: no cache keeps it, and no link from here sends it on.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Switchboard's Client ID Metadata Document: its URL is the client id it presents to authorization
/// servers that support such documents.
#[utoipa::path(
    get, path = "/oauth/client-metadata.json", operation_id = "oauth_client_metadata",
    tag = "tools",
    responses((status = 200, description = "The client's metadata (RFC 7591 fields).", body = Object)),
)]
pub async fn client_metadata(State(state): State<AppState>, headers: HeaderMap) -> axum::Json<serde_json::Value> {
    axum::Json(oauth::client_metadata_document(&client_urls(&state, &headers)))
}

fn page(message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connector authorized</title>\
         </head><body><h1>Connector authorized</h1><p>{message}</p></body></html>"
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
