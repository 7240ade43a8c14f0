//! OpenAI's error shape for everything under `/v1`: `{"error": {"message", "type", "param", "code"}}`. The
//! API's own errors, and those made before or instead of a handler (no such route, wrong method, body too
//! large, JSON rejections), are rewritten on the way out, so the one `ApiError` type still decides status and
//! code, and the official SDKs, which read those four fields, understand every answer of the door.

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use crate::http::error::ApiError;

/// The largest error body read back for rewriting; ours are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Applied around the whole router rather than to the `/v1` routes: a path no route matches, and a body the
/// size limit refuses, never reach a route's layers. `/v1/messages` is Anthropic's door, with its own shape.
pub async fn openai_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !(path == "/v1" || path.starts_with("/v1/")) || crate::http::anthropic::is_anthropic_path(path) {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, original) = response.into_parts();
    let bytes = axum::body::to_bytes(original, MAX_ERROR_BODY).await.unwrap_or_default();
    let ours: Option<Value> = serde_json::from_slice(&bytes).ok();
    let error = ours.as_ref().map(|value| &value["error"]);
    // Already in OpenAI's shape (a handler chose its own `type` and `param`): sent as it is.
    if error.is_some_and(|error| error["type"].is_string() && error.get("param").is_some()) {
        return Response::from_parts(parts, Body::from(bytes));
    }
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
    let rewritten = body(status, &code, &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, rewritten.into_body())
}

/// What `/v1` answers for a route it does not serve (`/v1/completions`, `/v1/audio/…`): like OpenAI's
/// own 404, the message names the method and path, so a client pointed at the wrong door can tell.
pub async fn no_route(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    let message =
        format!("Invalid URL ({method} {}): Switchboard's OpenAI-compatible API has no such route", uri.path());
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

/// A 400 about one request field, in OpenAI's shape with `param` naming it.
pub fn invalid_param(param: &str, message: &str) -> Response {
    let error = json!({ "error": { "message": message, "type": "invalid_request_error", "param": param, "code": "invalid_request" } });
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], Body::from(error.to_string()))
        .into_response()
}

pub fn body(status: StatusCode, code: &str, message: &str) -> Response {
    let (kind, code) = match status {
        StatusCode::UNAUTHORIZED => ("invalid_request_error", "invalid_api_key"),
        StatusCode::FORBIDDEN => ("permission_error", code),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", code),
        status if status.is_server_error() => ("server_error", code),
        _ => ("invalid_request_error", code),
    };
    let error = json!({ "error": { "message": message, "type": kind, "param": param(code, message), "code": code } });
    (status, [(header::CONTENT_TYPE, "application/json")], Body::from(error.to_string())).into_response()
}

/// The request field an error is about, as OpenAI names it (`model`, `messages[0].role`), when it can be
/// told: an unknown model, or a body serde refused (axum's rejection text carries serde's path to the field).
/// Otherwise none: `null` is what OpenAI sends when no one field is at fault.
fn param(code: &str, message: &str) -> Option<String> {
    if code == "model_not_found" {
        return Some("model".to_owned());
    }
    let detail = message.strip_prefix("Failed to deserialize the JSON body into the target type: ")?;
    let (path, rest) = match detail.split_once(": ") {
        Some((path, rest)) if is_field_path(path) => (Some(path), rest),
        _ => (None, detail),
    };
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| rest.strip_prefix(start))
        .and_then(|named| named.split_once('`'))
        .map(|(field, _)| field);
    match (path, field) {
        (Some(path), Some(field)) => Some(format!("{path}.{field}")),
        (Some(path), None) => Some(path.to_owned()),
        (None, Some(field)) => Some(field.to_owned()),
        (None, None) => None,
    }
}

/// serde_path_to_error's path: `messages[0].role`, never spaces.
fn is_field_path(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn param_names_the_field_serde_refused() {
        let rejected = |detail: &str| format!("Failed to deserialize the JSON body into the target type: {detail}");
        for (code, message, expected) in [
            ("model_not_found", "The model `x` does not exist".to_owned(), Some("model")),
            ("invalid_request", rejected("missing field `model` at line 1 column 52"), Some("model")),
            ("invalid_request", rejected("unknown field `nope`, expected one of `a`, `b`"), Some("nope")),
            ("invalid_request", rejected("messages: invalid type: string, expected a sequence"), Some("messages")),
            ("invalid_request", rejected("messages[0]: missing field `role` at line 1"), Some("messages[0].role")),
            ("invalid_request", rejected("invalid type: integer `5`, expected a map at line 1 column 1"), None),
            ("invalid_request", "n must be 1".to_owned(), None),
            ("malformed_json", "EOF while parsing a value at line 1 column 10".to_owned(), None),
        ] {
            assert_eq!(param(code, &message).as_deref(), expected, "{message}");
        }
    }
}
