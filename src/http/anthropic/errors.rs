//! Anthropic's error shape for `/v1/messages` and everything under it:
//! `{"type": "error", "error": {"type", "message"}, "request_id"}`. As under the rest of `/v1` (OpenAI's
//! shape), the API's own errors and those made before or instead of a handler are rewritten on the way
//! out, so the one `ApiError` type still decides status and message. Two statuses Anthropic never sends
//! become the ones it does: 422 (a body of the wrong shape) is 400, and 503 (try again shortly, with
//! `Retry-After`) is 529 `overloaded_error`. A budget with no room stays 402, Anthropic's `billing_error`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::request_id;

/// The largest error body read back for rewriting; ours are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Anthropic's status for an overloaded API.
const OVERLOADED: u16 = 529;

/// True for the paths this door answers (and the Messages API's others, which it does not serve but
/// whose clients read Anthropic's errors).
pub fn is_anthropic_path(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// Applied around the whole router, like `openai_errors`, which leaves these paths alone.
pub async fn anthropic_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if !is_anthropic_path(&path) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let (parts, original) = response.into_parts();
        let bytes = axum::body::to_bytes(original, MAX_ERROR_BODY).await.unwrap_or_default();
        let ours: Option<Value> = serde_json::from_slice(&bytes).ok();
        let error = ours.as_ref().map(|value| &value["error"]);
        let (code, message) = match error {
            Some(error) if error["code"].is_string() => (
                error["code"].as_str().unwrap_or_default().to_owned(),
                error["message"].as_str().unwrap_or_default().to_owned(),
            ),
            _ => {
                let fallback = ApiError::from_status(status);
                (fallback.code.into_owned(), fallback.message)
            }
        };
        let message = if status == StatusCode::NOT_FOUND && code == "not_found" {
            format!(
                "Not found: {method} {path}; Switchboard's Anthropic-compatible API serves POST /v1/messages and \
                 POST /v1/messages/count_tokens"
            )
        } else {
            message
        };
        let mut rewritten = body(status, &message);
        let headers = rewritten.headers_mut();
        for (name, value) in &parts.headers {
            if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                headers.append(name.clone(), value.clone());
            }
        }
        response = rewritten;
    }
    // Anthropic's clients read the request id from `request-id`.
    if let Some(id) = request_id::current().and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert("request-id", id);
    }
    response
}

/// The status Anthropic would answer with, and its error type.
pub fn status_and_type(status: StatusCode) -> (StatusCode, &'static str) {
    let status = match status {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        StatusCode::SERVICE_UNAVAILABLE => StatusCode::from_u16(OVERLOADED).unwrap_or(status),
        status => status,
    };
    let kind = match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        OVERLOADED => "overloaded_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    };
    (status, kind)
}

/// An error response in Anthropic's shape.
pub fn body(status: StatusCode, message: &str) -> Response {
    let (status, kind) = status_and_type(status);
    let error = json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": request_id::current(),
    });
    (status, [(header::CONTENT_TYPE, "application/json")], Body::from(error.to_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_anthropics_status_and_type() {
        for (ours, theirs, kind) in [
            (400, 400, "invalid_request_error"),
            (422, 400, "invalid_request_error"),
            (415, 415, "invalid_request_error"),
            (401, 401, "authentication_error"),
            (402, 402, "billing_error"),
            (403, 403, "permission_error"),
            (404, 404, "not_found_error"),
            (409, 409, "conflict_error"),
            (413, 413, "request_too_large"),
            (429, 429, "rate_limit_error"),
            (500, 500, "api_error"),
            (502, 502, "api_error"),
            (503, 529, "overloaded_error"),
            (504, 504, "timeout_error"),
        ] {
            let (status, found) = status_and_type(StatusCode::from_u16(ours).unwrap());
            assert_eq!((status.as_u16(), found), (theirs, kind), "{ours}");
        }
    }

    #[test]
    fn the_door_owns_the_messages_paths_only() {
        for (path, owned) in [
            ("/v1/messages", true),
            ("/v1/messages/count_tokens", true),
            ("/v1/messages/batches", true),
            ("/v1/messagesx", false),
            ("/v1/chat/completions", false),
            ("/v1", false),
        ] {
            assert_eq!(is_anthropic_path(path), owned, "{path}");
        }
    }
}
