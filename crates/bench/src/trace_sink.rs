//! A stand-in OpenTelemetry collector for `--traces` and the traces suite: accepts OTLP/HTTP exports on
//! 127.0.0.1 and counts them, so the benchmark measures what exporting traces costs the service (not what a
//! collector costs: the sink only decodes each export to count its spans) and can show that spans were
//! really sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

#[derive(Default)]
struct Received {
    exports: AtomicU64,
    bytes: AtomicU64,
    spans: AtomicU64,
    /// Exports whose spans could not be counted (not plain protobuf): the span count is then a floor.
    uncounted: AtomicU64,
}

pub struct TraceSink {
    /// The OTLP/HTTP base URL to give the service (`SWITCHBOARD_OTLP_ENDPOINT`).
    pub endpoint: String,
    received: Arc<Received>,
}

impl TraceSink {
    /// A sink when `wanted` (`--traces`).
    pub async fn start_if(wanted: bool) -> anyhow::Result<Option<Self>> {
        if wanted { Ok(Some(Self::start().await?)) } else { Ok(None) }
    }

    pub async fn start() -> anyhow::Result<Self> {
        let received = Arc::new(Received::default());
        let router =
            axum::Router::new().route("/v1/traces", axum::routing::post(export)).with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self { endpoint, received })
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.received.spans.load(Ordering::Relaxed)
    }

    /// What arrived, for the report's notes.
    pub fn summary(&self) -> String {
        let exports = self.received.exports.load(Ordering::Relaxed);
        let bytes = self.received.bytes.load(Ordering::Relaxed);
        let spans = self.spans();
        let uncounted = self.received.uncounted.load(Ordering::Relaxed);
        let uncounted = if uncounted > 0 {
            format!(", {uncounted} exports whose spans could not be counted")
        } else {
            String::new()
        };
        format!(
            "the service exported its spans to a local OTLP/HTTP sink ({exports} exports, {spans} spans, {bytes} bytes{uncounted})"
        )
    }
}

/// An empty `ExportTraceServiceResponse` (all its fields are optional, so zero bytes) is a success.
async fn export(State(received): State<Arc<Received>>, body: Bytes) -> impl IntoResponse {
    received.exports.fetch_add(1, Ordering::Relaxed);
    received.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    match count_spans(&body) {
        Some(spans) => received.spans.fetch_add(spans, Ordering::Relaxed),
        None => received.uncounted.fetch_add(1, Ordering::Relaxed),
    };
    ([(header::CONTENT_TYPE, "application/x-protobuf")], Bytes::new())
}

/// The spans of an `ExportTraceServiceRequest`, decoded with the protocol's own types; `None` when the
/// body is not one.
fn count_spans(request: &[u8]) -> Option<u64> {
    let request = ExportTraceServiceRequest::decode(request).ok()?;
    let scopes = request.resource_spans.iter().flat_map(|resource| &resource.scope_spans);
    Some(scopes.map(|scope| scope.spans.len() as u64).sum())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    use super::count_spans;

    #[test]
    fn counts_the_spans_of_every_scope_of_every_resource() {
        let scope = |spans: usize| ScopeSpans { spans: vec![Span::default(); spans], ..ScopeSpans::default() };
        let resource = |scopes: Vec<ScopeSpans>| ResourceSpans { scope_spans: scopes, ..ResourceSpans::default() };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![resource(vec![scope(2), scope(1)]), resource(vec![scope(2)])],
        };
        assert_eq!(count_spans(&request.encode_to_vec()), Some(5));
        assert_eq!(count_spans(&[]), Some(0));
        assert_eq!(count_spans(&[0x0a, 0x05, 0x01]), None, "a field longer than the body");
    }
}
