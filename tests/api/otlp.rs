//! A real OTLP/HTTP receiver on 127.0.0.1, as an OpenTelemetry collector listens: it decodes each
//! `POST /v1/traces` (protobuf) with the protocol's own types and keeps the spans for a test to read.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;

/// A span as received: ids in hex, and its attributes as text.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }
}

#[derive(Clone, Default)]
pub struct OtlpReceiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    /// Starts listening; returns the receiver and its base URL (what `SWITCHBOARD_OTLP_ENDPOINT` takes).
    pub async fn start() -> (Self, String) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(export)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, format!("http://{address}"))
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

async fn export(State(receiver): State<OtlpReceiver>, body: Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain")], Vec::new());
    };
    let mut spans = receiver.spans.lock().unwrap();
    for scope in request.resource_spans.iter().flat_map(|resource| &resource.scope_spans) {
        for span in &scope.spans {
            let attributes = span
                .attributes
                .iter()
                .map(|pair| {
                    (
                        pair.key.clone(),
                        pair.value.as_ref().and_then(|value| value.value.as_ref()).map(text).unwrap_or_default(),
                    )
                })
                .collect();
            spans.push(ReceivedSpan {
                name: span.name.clone(),
                trace_id: hex::encode(&span.trace_id),
                span_id: hex::encode(&span.span_id),
                parent_span_id: hex::encode(&span.parent_span_id),
                attributes,
            });
        }
    }
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], answer)
}

fn text(value: &any_value::Value) -> String {
    match value {
        any_value::Value::StringValue(text) => text.clone(),
        any_value::Value::BoolValue(flag) => flag.to_string(),
        any_value::Value::IntValue(number) => number.to_string(),
        any_value::Value::DoubleValue(number) => number.to_string(),
        other => format!("{other:?}"),
    }
}
