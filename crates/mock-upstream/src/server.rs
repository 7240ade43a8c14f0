//! Routes and the request flow shared by the three providers: record, authenticate, validate, take the scripted
//! reply, apply a `Status` fault, then hand the answer to the provider module.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use crate::script::Request;
use crate::{Api, Fault, RecordedRequest, State, anthropic, gemini, openai};

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_handler))
        .route("/v1/messages", post(anthropic_handler))
        // axum 0.8 cannot match `{model}:method` inside one segment, so the Gemini module parses the rest itself.
        .route("/v1beta/models/{*rest}", post(gemini_handler))
        // Benchmarks send long RAG prompts; the default 2 MB limit would turn them into 413s the real APIs accept.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn openai_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, Api::OpenAi, &uri, &headers, &body)
}

async fn anthropic_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, Api::Anthropic, &uri, &headers, &body)
}

async fn gemini_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, Api::Gemini, &uri, &headers, &body)
}

fn handle(state: &State, api: Api, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> Response {
    let api_key = match api {
        Api::OpenAi => openai::api_key(headers),
        Api::Anthropic => anthropic::api_key(headers),
        Api::Gemini => gemini::api_key(headers, uri),
    };
    let body = parse_body(raw);
    state.record(RecordedRequest {
        api,
        path: uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string),
        headers: header_map(headers),
        body: body.clone(),
        api_key: api_key.clone(),
    });

    // Refusals come before the queue so a refused request does not consume the reply scripted for the next one.
    match api_key.as_deref() {
        None => return error(api, StatusCode::UNAUTHORIZED, "mock-upstream: no API key was provided"),
        Some("invalid-key") => return error(api, StatusCode::UNAUTHORIZED, "mock-upstream: invalid API key"),
        Some(_) => {}
    }
    if !body.is_object() {
        return error(api, StatusCode::BAD_REQUEST, "mock-upstream: the request body is not a JSON object");
    }
    let parsed = match api {
        Api::OpenAi => openai::parse(&body).map_err(|message| (StatusCode::BAD_REQUEST, message)),
        Api::Anthropic => anthropic::parse(headers, &body).map_err(|message| (StatusCode::BAD_REQUEST, message)),
        Api::Gemini => gemini::parse(uri, &body),
    };
    let request: Request = match parsed {
        Ok(request) => request,
        Err((status, message)) => return error(api, status, &message),
    };

    let reply = state.take_reply();
    if let Some(Fault::Status { status, retry_after }) = reply.fault {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response =
            error(api, status, &format!("mock-upstream: scripted fault with status {}", status.as_u16()));
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        return response;
    }
    match api {
        Api::OpenAi => openai::respond(&request, &openai::turn(reply, &request)),
        Api::Anthropic => anthropic::respond(&request, &anthropic::turn(reply, &request)),
        Api::Gemini => gemini::respond(&request, &gemini::turn(reply, &request)),
    }
}

/// `Null` for an empty body, the JSON when it parses, else the raw text as a JSON string so tests can still see it.
fn parse_body(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

/// Lower-case names (as `http` stores them); repeated headers joined with ", " like an HTTP list.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

fn error(api: Api, status: StatusCode, message: &str) -> Response {
    let body = match api {
        Api::OpenAi => openai::error_body(status, message),
        Api::Anthropic => anthropic::error_body(status, message),
        Api::Gemini => gemini::error_body(status, message),
    };
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
