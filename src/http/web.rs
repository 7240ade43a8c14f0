//! `GET /` and `GET /widget.js`: the demo page and the embeddable chat widget, from `web/`.

use std::borrow::Cow;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::demo::{self, DemoMode};

const WIDGET_SCRIPT: &str = include_str!("../../web/widget.js");
const DEMO_PAGE: &str = include_str!("../../web/demo.html");
/// Where the demo page's widget (or the note that the demo is off) goes.
const WIDGET_SLOT: &str = "<!-- switchboard:widget -->";
/// The visitor's id: each browser chats as its own end user of the demo tenant.
const VISITOR_COOKIE: &str = "sb_demo_visitor";
/// The page may load only our own script and talk only to us: defence in depth for the demo tenant's
/// token inside it. Styles are inline in the widget's shadow root.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                           img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The embeddable chat widget's script.
#[utoipa::path(
    get, path = "/widget.js", tag = "service",
    responses((status = 200, description = "The widget.", content_type = "text/javascript", body = String)),
)]
pub async fn widget_script(State(state): State<AppState>) -> Result<Response, ApiError> {
    let script = asset(&state, "widget.js", WIDGET_SCRIPT).await?;
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Ok((headers, script.into_owned()).into_response())
}

/// The demo page, with a live widget for a browser on the server's own machine (`SWITCHBOARD_DEMO`).
#[utoipa::path(
    get, path = "/", tag = "service",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String)),
)]
pub async fn demo_page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let page = asset(&state, "demo.html", DEMO_PAGE).await?;
    let (slot, visitor) = match &state.web.demo {
        DemoMode::On { tenant_slug, local_only } if !local_only || from_this_machine(peer, &headers) => {
            let visitor = visitor_id(&headers).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let issued = demo::visitor_token(&state.db, &state.keys, tenant_slug, &visitor).await?;
            // The token is `sbw_` and hex: nothing in it needs escaping in an attribute.
            let script = format!(
                r#"<script src="/widget.js" data-switchboard-token="{}" data-switchboard-open="true"></script>"#,
                issued.token
            );
            (script, Some(visitor))
        }
        _ => (
            "<p class=\"note\">The live demo is off here: it is given only to a browser on the server's own \
             machine (<code>SWITCHBOARD_DEMO</code>). Embed the widget with a token from \
             <code>POST /api/v1/widget-tokens</code>.</p>"
                .to_owned(),
            None,
        ),
    };
    let mut response = page.replace(WIDGET_SLOT, &slot).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The page holds a token: never cache it.
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(visitor) = visitor {
        let cookie = format!("{VISITOR_COOKIE}={visitor}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response_headers.insert(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Whether the page was asked for by a browser on this machine, by name: a loopback peer, a loopback `Host`
/// (a page of another site whose name was rebound to 127.0.0.1 still says its own name), and no proxy in
/// between (a reverse proxy on the same machine would make every visitor look local).
fn from_this_machine(peer: SocketAddr, headers: &HeaderMap) -> bool {
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|name| headers.contains_key(*name));
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let host_name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let loopback_name =
        host_name == "localhost" || host_name.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback());
    peer.ip().is_loopback() && loopback_name && !proxied
}

/// The built-in asset, or the file of the same name in `SWITCHBOARD_WEB_DIR` when set.
async fn asset(state: &AppState, name: &str, built_in: &'static str) -> Result<Cow<'static, str>, ApiError> {
    let Some(folder) = &state.web.assets_dir else {
        return Ok(Cow::Borrowed(built_in));
    };
    let path = folder.join(name);
    tokio::fs::read_to_string(&path).await.map(Cow::Owned).map_err(|error| {
        tracing::error!(path = %path.display(), "cannot read a web asset from SWITCHBOARD_WEB_DIR");
        ApiError::internal(&error)
    })
}

/// The visitor cookie's value, if it is one we could have set (32 hex digits).
fn visitor_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == VISITOR_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 32 && value.bytes().all(|byte| byte.is_ascii_hexdigit()))
}
