//! Routes and the request flow shared by the providers: record, authenticate, check the body is a JSON object, then
//! either play a model turn (validate, take the scripted reply, apply a `Status` fault, hand the answer to the
//! provider module) or answer an embedding request (validate and build the vectors, then apply a queued embedding
//! fault).

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

use crate::script::{Request, Turn};
use crate::{
    Api, Fault, RecordedRequest, Reply, State, anthropic, gemini, gemini_embeddings, openai, openai_embeddings, rerank,
    voyage,
};

/// Builds a provider's embedding answer from the request, or gives the message of the 400 refusing it.
type EmbeddingAnswer = fn(&Uri, &Value) -> Result<Response, String>;

/// What a route serves once the request is recorded, authenticated and known to be a JSON object.
#[derive(Clone, Copy)]
enum Endpoint {
    Chat,
    Embeddings(EmbeddingAnswer),
    Rerank,
}

/// How a provider's chat module turns a scripted reply into its answer.
type ChatModule = (fn(Reply, &Request) -> Turn, fn(&Request, &Turn) -> Response);

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_handler))
        .route("/v1/embeddings", post(openai_embeddings_handler))
        .route("/v1/messages", post(anthropic_handler))
        // axum 0.8 cannot match `{model}:method` inside one segment, so the Gemini modules parse the rest themselves.
        .route("/v1beta/models/{*rest}", post(gemini_handler))
        // Under a prefix of its own: Voyage's real path, /v1/embeddings, is OpenAI's.
        .route("/voyage/v1/embeddings", post(voyage_handler))
        .route("/v2/rerank", post(cohere_rerank_handler))
        // Voyage and Jina share the real path /v1/rerank: each under its own prefix.
        .route("/voyage/v1/rerank", post(voyage_rerank_handler))
        .route("/jina/v1/rerank", post(jina_rerank_handler))
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
    handle(&state, Api::OpenAi, Endpoint::Chat, &uri, &headers, &body)
}

async fn openai_embeddings_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle(&state, Api::OpenAi, Endpoint::Embeddings(openai_embeddings::answer), &uri, &headers, &body);
    state.embeddings_released().await;
    response
}

async fn anthropic_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, Api::Anthropic, Endpoint::Chat, &uri, &headers, &body)
}

async fn gemini_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !gemini_embeddings::is_embedding(&uri) {
        return handle(&state, Api::Gemini, Endpoint::Chat, &uri, &headers, &body);
    }
    let response = handle(&state, Api::Gemini, Endpoint::Embeddings(gemini_embeddings::answer), &uri, &headers, &body);
    state.embeddings_released().await;
    response
}

async fn voyage_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle(&state, Api::Voyage, Endpoint::Embeddings(voyage::answer), &uri, &headers, &body);
    state.embeddings_released().await;
    response
}

async fn cohere_rerank_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    rerank_handler(&state, Api::Cohere, &uri, &headers, &body).await
}

async fn voyage_rerank_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    rerank_handler(&state, Api::Voyage, &uri, &headers, &body).await
}

async fn jina_rerank_handler(
    AxumState(state): AxumState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    rerank_handler(&state, Api::Jina, &uri, &headers, &body).await
}

/// A rerank request: refused, answered, or (a scripted stall) never answered.
async fn rerank_handler(state: &State, api: Api, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> Response {
    let response = handle(state, api, Endpoint::Rerank, uri, headers, raw);
    if response.status() != StatusCode::OK {
        return response;
    }
    match state.take_rerank_fault() {
        None => response,
        Some(Fault::Status { status, retry_after }) => status_fault(api, status, retry_after),
        Some(Fault::StallAfter(_)) => std::future::pending().await,
        Some(Fault::CutAfter(_) | Fault::MalformedAfter(_)) => status_fault(api, 500, None),
    }
}

fn handle(state: &State, api: Api, endpoint: Endpoint, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> Response {
    let api_key = match api {
        Api::OpenAi | Api::Voyage | Api::Cohere | Api::Jina => openai::api_key(headers),
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

    // Refusals come before the queues so a refused request does not consume the reply or fault scripted for the
    // next one.
    match api_key.as_deref() {
        None => return error(api, StatusCode::UNAUTHORIZED, "mock-upstream: no API key was provided"),
        Some("invalid-key") => return error(api, StatusCode::UNAUTHORIZED, "mock-upstream: invalid API key"),
        Some(_) => {}
    }
    if !body.is_object() {
        return error(api, StatusCode::BAD_REQUEST, "mock-upstream: the request body is not a JSON object");
    }
    match endpoint {
        Endpoint::Chat => chat(state, api, uri, headers, &body),
        Endpoint::Embeddings(answer) => embeddings(state, api, uri, &body, answer),
        Endpoint::Rerank => match rerank::answer(api, &body) {
            Ok(response) => response,
            Err((status, message)) => error(api, status, &message),
        },
    }
}

fn chat(state: &State, api: Api, uri: &Uri, headers: &HeaderMap, body: &Value) -> Response {
    let bad_request = |message| (StatusCode::BAD_REQUEST, message);
    let (parsed, (turn, respond)): (_, ChatModule) = match api {
        Api::OpenAi => (openai::parse(body).map_err(bad_request), (openai::turn, openai::respond)),
        Api::Anthropic => (anthropic::parse(headers, body).map_err(bad_request), (anthropic::turn, anthropic::respond)),
        Api::Gemini => (gemini::parse(uri, body), (gemini::turn, gemini::respond)),
        Api::Voyage | Api::Cohere | Api::Jina => {
            return error(api, StatusCode::NOT_FOUND, "mock-upstream: no chat API for this provider");
        }
    };
    let request: Request = match parsed {
        Ok(request) => request,
        Err((status, message)) => return error(api, status, &message),
    };

    let reply = state.take_reply();
    if let Some(Fault::Status { status, retry_after }) = reply.fault {
        return status_fault(api, status, retry_after);
    }
    respond(&request, &turn(reply, &request))
}

/// The answer is built before the fault queue is looked at, so an invalid request does not consume a fault.
fn embeddings(state: &State, api: Api, uri: &Uri, body: &Value, answer: EmbeddingAnswer) -> Response {
    let response = match answer(uri, body) {
        Ok(response) => response,
        Err(message) => return error(api, StatusCode::BAD_REQUEST, &message),
    };
    match state.take_embedding_fault() {
        None => response,
        Some(Fault::Status { status, retry_after }) => status_fault(api, status, retry_after),
        // A one-piece JSON answer has no chunks to cut, corrupt or stall after: these faults are plain server errors.
        Some(Fault::CutAfter(_) | Fault::MalformedAfter(_) | Fault::StallAfter(_)) => status_fault(api, 500, None),
    }
}

/// A scripted `Fault::Status`: the provider's error body, with `Retry-After` when scripted.
fn status_fault(api: Api, status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error(api, status, &format!("mock-upstream: scripted fault with status {}", status.as_u16()));
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
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
        Api::Voyage => voyage::error_body(status, message),
        Api::Cohere | Api::Jina => rerank::error_body(api, message),
    };
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
