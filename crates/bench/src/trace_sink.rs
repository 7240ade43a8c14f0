//! A stand-in OpenTelemetry collector for `--traces`: accepts OTLP/HTTP exports on 127.0.0.1 and counts
//! them, so the benchmark measures what exporting traces costs the service (not what a collector costs:
//! the sink does no decoding) and can show that spans were really sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

#[derive(Default)]
struct Received {
    exports: AtomicU64,
    bytes: AtomicU64,
}

pub struct TraceSink {
    /// The OTLP/HTTP base URL to give the service (`SWITCHBOARD_OTLP_ENDPOINT`).
    pub endpoint: String,
    received: Arc<Received>,
}

impl TraceSink {
    /// A sink when `wanted` (`--traces`).
    pub async fn start_if(wanted: bool) -> anyhow::Result<Option<Self>> {
        if !wanted {
            return Ok(None);
        }
        let received = Arc::new(Received::default());
        let router =
            axum::Router::new().route("/v1/traces", axum::routing::post(export)).with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Some(Self { endpoint, received }))
    }

    /// What arrived, for the report's notes.
    pub fn summary(&self) -> String {
        let exports = self.received.exports.load(Ordering::Relaxed);
        let bytes = self.received.bytes.load(Ordering::Relaxed);
        format!("--traces: the service exported its spans to a local OTLP/HTTP sink ({exports} exports, {bytes} bytes)")
    }
}

/// An empty `ExportTraceServiceResponse` (all its fields are optional, so zero bytes) is a success.
async fn export(State(received): State<Arc<Received>>, body: Bytes) -> impl IntoResponse {
    received.exports.fetch_add(1, Ordering::Relaxed);
    received.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "application/x-protobuf")], Bytes::new())
}
