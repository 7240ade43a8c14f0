//! What one client may hold of the service: the operator's limits ([`ClientLimits`], read by `config`),
//! and the two request checks made before any handler, answered in the API's error shape: headers (431
//! `headers_too_large`) and bodies (413 `payload_too_large`, the limit chosen by route). The limits on
//! connections are applied by `serve.rs`, those on event streams by `streams.rs`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tower_http::timeout::TimeoutBody;

use super::error::ApiError;

/// The limits per client, each an environment variable with the default given here (see
/// docs_corpus/operations.md, "Limits per client").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// `SWITCHBOARD_MAX_BODY_BYTES`: the largest request body of every route but the document uploads.
    pub max_body_bytes: usize,
    /// `SWITCHBOARD_MAX_DOCUMENT_BYTES`: the largest body of a document upload (`POST /api/v1/documents`,
    /// `PUT /api/v1/workspaces/{id}/files/{path}`); never below `max_body_bytes`.
    pub max_document_bytes: usize,
    /// `SWITCHBOARD_MAX_HEADER_BYTES`: the request's header fields together, names and values.
    pub max_header_bytes: usize,
    /// `SWITCHBOARD_MAX_HEADERS`: how many header fields a request may have.
    pub max_headers: usize,
    /// `SWITCHBOARD_HEADER_TIMEOUT_SECS`: from a connection's first byte of a request (or its opening) to the
    /// end of that request's headers; a client slower than this is disconnected.
    pub header_timeout: Duration,
    /// `SWITCHBOARD_IDLE_TIMEOUT_SECS`: how long a kept-alive connection may wait, with no request in flight,
    /// for its next request. A response in flight (an event stream) is never cut by it.
    pub idle_timeout: Duration,
    /// `SWITCHBOARD_BODY_TIMEOUT_SECS`: the longest wait for the next piece of a request body; a stalled
    /// upload is answered 408 `request_timeout` and its connection closed.
    pub body_timeout: Duration,
    /// `SWITCHBOARD_MAX_CONNECTIONS`: open connections, all clients together; over it a connection is refused.
    pub max_connections: usize,
    /// `SWITCHBOARD_MAX_STREAMS_PER_TENANT`: open event streams of one tenant, all its callers together.
    pub max_streams_per_tenant: usize,
    /// `SWITCHBOARD_MAX_STREAMS_PER_CALLER`: open event streams of one API key, or of one widget user.
    pub max_streams_per_caller: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            // A document's text may be 1 MiB (`retrieval::MAX_DOCUMENT_BYTES`, and as much for a workspace
            // file); JSON may spell each byte as six (`\u0001`), so 8 MiB carries any document the domain
            // takes, in any encoding a client may choose, with its path and title.
            max_document_bytes: 8 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_streams_per_tenant: 1_000,
            max_streams_per_caller: 100,
        }
    }
}

impl ClientLimits {
    /// The defaults with one body limit for every route, documents included (the test harness's router).
    pub fn with_one_body_limit(max_body_bytes: usize) -> Self {
        Self { max_body_bytes, max_document_bytes: max_body_bytes, ..Self::default() }
    }

    /// The body limit of a route: the document limit for the uploads of documents and workspace files, and
    /// [`MAX_ARCHIVE_BYTES`] for a workspace's archive import.
    fn body_limit(&self, method: &Method, path: &str) -> usize {
        if is_archive_upload(method, path) {
            MAX_ARCHIVE_BYTES.max(self.max_document_bytes).max(self.max_body_bytes)
        } else if is_document_upload(method, path) {
            self.max_document_bytes.max(self.max_body_bytes)
        } else {
            self.max_body_bytes
        }
    }
}

/// The largest body of `POST /api/v1/workspaces/{id}/import`: an archive of a source tree (compressed,
/// whose content is then bounded as it is inflated, `workspaces::archive`). Not a setting: the import's
/// own limits are the domain's.
pub const MAX_ARCHIVE_BYTES: usize = 32 * 1024 * 1024;

fn is_archive_upload(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && path
            .strip_prefix("/api/v1/workspaces/")
            .and_then(|rest| rest.strip_suffix("/import"))
            .is_some_and(|id| !id.contains('/'))
}

/// The routes that take documents (see the route table in `mod.rs`).
fn is_document_upload(method: &Method, path: &str) -> bool {
    match *method {
        Method::POST => path == "/api/v1/documents",
        Method::PUT => path.strip_prefix("/api/v1/workspaces/").is_some_and(|rest| rest.contains("/files/")),
        _ => false,
    }
}

/// 431 `headers_too_large` for a request with more header fields, or more bytes of them, than allowed.
/// hyper refuses larger heads still on its own (twice these limits, `serve.rs`), without our body.
pub async fn header_limits(State(limits): State<ClientLimits>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.len() > limits.max_headers || header_bytes(headers) > limits.max_header_bytes {
        let message = format!(
            "the request's headers exceed the limit of {} fields or {} bytes",
            limits.max_headers, limits.max_header_bytes
        );
        return closing(ApiError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", message));
    }
    next.run(request).await
}

/// The fields' size as sent: `name: value` and a line break each.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum()
}

/// The route's body limit, applied before the body is read when `Content-Length` declares more (413 at
/// once; the client need not send the body), and as the body is read otherwise: a chunked body is cut at
/// the limit, which the extractors answer with 413 too. And the body's pace: a body whose next piece
/// takes longer than the body timeout fails, which the extractors answer with 408.
pub async fn body_limits(State(limits): State<ClientLimits>, request: Request, next: Next) -> Response {
    let limit = limits.body_limit(request.method(), request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        let message = format!("the request body is larger than this route's limit of {limit} bytes");
        return closing(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message));
    }
    let timeout = limits.body_timeout;
    next.run(request.map(|body| Body::new(TimeoutBody::new(timeout, http_body_util::Limited::new(body, limit))))).await
}

/// An error after which the connection is closed: what the client sent past it (a body, the rest of a
/// head) is not worth reading.
pub fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// True when reading a request body failed because the client stopped sending it (the body timeout of
/// [`ClientLimits::body_timeout`], somewhere in the error's sources).
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_workspace_files_get_the_document_limit() {
        let limits = ClientLimits { max_body_bytes: 10, max_document_bytes: 100, ..ClientLimits::default() };
        for (method, path, expected) in [
            (Method::POST, "/api/v1/documents", 100),
            (Method::PUT, "/api/v1/workspaces/0194/files/src/main.rs", 100),
            (Method::GET, "/api/v1/documents", 10),
            (Method::POST, "/api/v1/sessions/0194/messages", 10),
            (Method::POST, "/v1/chat/completions", 10),
            (Method::PUT, "/api/v1/workspaces/0194", 10),
            (Method::POST, "/api/v1/documents/extra", 10),
        ] {
            assert_eq!(limits.body_limit(&method, path), expected, "{method} {path}");
        }
        let raised = ClientLimits { max_body_bytes: 1000, ..limits };
        assert_eq!(raised.body_limit(&Method::POST, "/api/v1/documents"), 1000, "never below the general limit");
    }

    #[test]
    fn header_bytes_count_names_values_and_separators() {
        let mut headers = HeaderMap::new();
        headers.insert("a", HeaderValue::from_static("bc"));
        headers.append("a", HeaderValue::from_static("d"));
        assert_eq!(header_bytes(&headers), (1 + 2 + 4) + (1 + 1 + 4));
    }
}
