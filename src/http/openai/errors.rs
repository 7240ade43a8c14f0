//! OpenAI's error shape for the `/v1` routes: `{"error": {"message", "type", "param", "code"}}`. The API's
//! own errors (and bare framework statuses) are rewritten on the way out, so the one `ApiError` type
//! still decides status and code.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use crate::http::error::ApiError;

/// The largest error body read back for rewriting; ours are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn openai_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, original) = response.into_parts();
    let ours: Option<Value> =
        axum::body::to_bytes(original, MAX_ERROR_BODY).await.ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let (code, message) = match ours.as_ref().map(|value| &value["error"]) {
        Some(error) if error["code"].is_string() => (
            error["code"].as_str().unwrap_or_default().to_owned(),
            error["message"].as_str().unwrap_or_default().to_owned(),
        ),
        _ => {
            let fallback = ApiError::from_status(status);
            (fallback.code.into_owned(), fallback.message)
        }
    };
    let rewritten = body(status, &code, &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, rewritten.into_body())
}

pub fn body(status: StatusCode, code: &str, message: &str) -> Response {
    let (kind, code) = match status {
        StatusCode::UNAUTHORIZED => ("invalid_request_error", "invalid_api_key"),
        StatusCode::FORBIDDEN => ("permission_error", code),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", code),
        status if status.is_server_error() => ("server_error", code),
        _ => ("invalid_request_error", code),
    };
    let error = json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    (status, [(header::CONTENT_TYPE, "application/json")], Body::from(error.to_string())).into_response()
}
