//! Responses produced outside our handlers (axum's 405, the body limit's 413, a caught panic's 500) carry
//! plain-text bodies; this middleware gives every error response the API's JSON shape.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::error::ApiError;

pub async fn middleware(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    // The body is replaced; the headers (Retry-After, Allow, CORS…) stay, but for the body's own.
    let (parts, _) = response.into_parts();
    let mut replaced = ApiError::from_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().append(name.clone(), value.clone());
        }
    }
    replaced
}
