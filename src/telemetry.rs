//! Structured logs and traces with `tracing`. `SWITCHBOARD_LOG_FORMAT=json` switches the logs to one JSON
//! object per line; `RUST_LOG` sets the filter. With `SWITCHBOARD_OTLP_ENDPOINT` (an OpenTelemetry
//! collector's OTLP/HTTP base URL, such as `http://127.0.0.1:4318`) the spans are exported as traces too,
//! and a W3C `traceparent` is read from each request and sent on to the providers. Secrets never reach a
//! log or a span: they are `secrecy` types, which print redacted, and no span records a header.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// What must outlive the service: the trace exporter, flushed by [`Telemetry::shutdown`].
#[must_use]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still batched, so that the last requests' traces are not lost at a stop.
    pub fn shutdown(self) {
        if let Some(traces) = self.traces
            && let Err(error) = traces.shutdown()
        {
            eprintln!("switchboard: the last traces could not be exported: {error}");
        }
    }
}

pub fn init() -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|format| format == "json") {
        logs.json().flatten_event(true).boxed()
    } else {
        logs.boxed()
    };
    let traces = match std::env::var("SWITCHBOARD_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(exporting_to(endpoint.trim())?),
        _ => None,
    };
    // Traces keep the service's own spans whatever `RUST_LOG` lets the logs show (`warn` still traces).
    let spans = traces.as_ref().map(|provider| {
        let ours = tracing_subscriber::filter::Targets::new().with_target("switchboard", tracing::Level::INFO);
        // A turn's spans are entered at every poll (each streamed piece): no busy/idle timing and no
        // OpenTelemetry context attached on entry (nothing here reads it; `propagate` asks the span), which
        // were most of what traces cost per turn.
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("switchboard"))
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_threads(false)
            .with_filter(ours)
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // A second initialisation (tests, embedding) keeps the first subscriber.
    drop(tracing_subscriber::registry().with(logs.with_filter(filter)).with(spans).try_init());
    Ok(Telemetry { traces })
}

/// Spans batched and sent by the SDK's own thread, off the request path, as OTLP/HTTP protobuf.
fn exporting_to(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|error| anyhow::anyhow!("SWITCHBOARD_OTLP_ENDPOINT: {error}"))?;
    let resource = Resource::builder().with_service_name("switchboard").build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Makes `span` a child of the trace a client's `traceparent` names, if it sent one.
pub fn continue_trace(span: &tracing::Span, headers: &reqwest::header::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    // Fails only when the span is disabled or already started: nothing to continue then.
    let _ = span.set_parent(parent);
}

/// The trace `span` belongs to, in hex; `None` when traces are off.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// The trace of the work going on now (a request, a turn): stored with what it records.
pub fn current_trace_id() -> Option<String> {
    trace_id(&tracing::Span::current())
}

/// The current span's W3C trace context (`traceparent`, and `tracestate` when there is one), for a message
/// that carries it in its body rather than its headers (MCP's `_meta`); empty when traces are off.
pub fn current_trace_context() -> Vec<(String, String)> {
    let context = tracing::Span::current().context();
    let mut fields = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut fields));
    let mut fields: Vec<(String, String)> = fields.into_iter().collect();
    fields.sort();
    fields
}

/// Adds the current span's `traceparent` to a request going out (to a provider), so the trace goes on there.
pub fn propagate(headers: &mut reqwest::header::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    });
}
