//! Prometheus metrics. One recorder per process, rendered by `GET /metrics`; every series is named here,
//! with labels from closed sets (route templates, providers, models from the catalog or the tenant's
//! declaration, outcomes): never an id or free text, so cardinality stays bounded. A `tenant` label on
//! the model and run series only when the operator opts in (`SWITCHBOARD_METRICS_TENANTS=N`: the first N
//! tenants seen by this process by id, every other one as `other`). The GenAI
//! series follow OpenTelemetry's semantic conventions (`gen_ai.client.token.usage` →
//! `gen_ai_client_token_usage`, …).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{Label, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;

use crate::ids::TenantId;
use crate::tokens::TokenUsage;

/// Latency buckets in seconds, from a fast request to a slow model call.
const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Token-count buckets, powers of four up to a long context.
const TOKENS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262_144.0, 1_048_576.0];

/// The process's metrics, rendered in the Prometheus text format. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Metrics")
    }
}

impl Metrics {
    /// The process's recorder, installed on first use (several services in one process, as in the tests,
    /// share it).
    pub fn install() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
                .and_then(|builder| builder.set_buckets_for_metric(Matcher::Full(TOKEN_USAGE.to_owned()), TOKENS))
                .expect("the buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (an embedding program's) keeps its place; ours still renders.
            drop(metrics::set_global_recorder(recorder));
            describe();
            keep_up(handle.clone());
            handle
        });
        Self { handle: handle.clone() }
    }

    /// The metrics now, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// How often histograms' samples are folded into their buckets when nobody scrapes `/metrics`.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds histograms' samples into their buckets every [`UPKEEP_EVERY`], for the process's life: the
/// recorder keeps each sample until then, so a service nobody scrapes would otherwise grow by every
/// request, token count and search it measured. A thread rather than a task: the recorder outlives any
/// one runtime (the tests start several).
fn keep_up(handle: PrometheusHandle) {
    let started = std::thread::Builder::new().name("metrics-upkeep".to_owned()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(error) = started {
        tracing::warn!(%error, "could not start the metrics upkeep; histograms are folded only when scraped");
    }
}

const HTTP_REQUESTS: &str = "http_server_requests_total";
const HTTP_DURATION: &str = "http_server_request_duration_seconds";
const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
const OPERATION_DURATION: &str = "gen_ai_client_operation_duration_seconds";
const TIME_TO_FIRST_TOKEN: &str = "gen_ai_server_time_to_first_token_seconds";
/// A gauge that only grows: the `metrics` facade's counters are whole numbers, and a call's cost is not.
const COST: &str = "switchboard_model_cost_usd";
const UNPRICED: &str = "switchboard_model_calls_unpriced_total";
const RUNS: &str = "switchboard_runs_total";
const REFUSALS: &str = "switchboard_refusals_total";
const OPEN_STREAMS: &str = "switchboard_open_streams";
const POOL_CONNECTIONS: &str = "switchboard_db_pool_connections";
const POOL_WAITING: &str = "switchboard_db_pool_waiting";
const POOL_ACQUIRE: &str = "switchboard_db_pool_acquire_seconds";
const TOOL_DECISIONS: &str = "switchboard_tool_call_decisions_total";
const TOOL_CALLS: &str = "switchboard_tool_calls_total";
const TOOL_DURATION: &str = "switchboard_tool_call_duration_seconds";
const RETRIEVAL_DURATION: &str = "switchboard_retrieval_duration_seconds";
const MARKERS_DROPPED: &str = "switchboard_citation_markers_dropped_total";
const EMBEDDING_DURATION: &str = "switchboard_embedding_duration_seconds";
const EMBEDDING_QUEUE: &str = "switchboard_embedding_batches_waiting";
const TURN_ADDED: &str = "switchboard_turn_added_seconds";
const AGENT_QUEUE: &str = "switchboard_agent_runs_queued";
const AGENT_QUEUE_AGE: &str = "switchboard_agent_runs_oldest_queued_seconds";

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template, method and status.");
    describe_histogram!(HTTP_DURATION, metrics::Unit::Seconds, "Time to answer an HTTP request (headers sent).");
    describe_histogram!(TOKEN_USAGE, "Tokens per model call, by provider, model and token type.");
    describe_histogram!(OPERATION_DURATION, metrics::Unit::Seconds, "A run's time with its model, start to end.");
    describe_histogram!(TIME_TO_FIRST_TOKEN, metrics::Unit::Seconds, "From a run's start to its first token.");
    describe_gauge!(COST, "US dollars spent on models since the process started, by provider and model (only grows).");
    describe_counter!(UNPRICED, "Model usage records the catalog could not price.");
    describe_counter!(RUNS, "Runs ended, by kind and status.");
    describe_counter!(REFUSALS, "Requests refused by a budget or a rate limit, by which.");
    describe_gauge!(OPEN_STREAMS, "Server-Sent Event streams open now.");
    describe_gauge!(POOL_CONNECTIONS, "Database connections of the application pool, by state.");
    describe_gauge!(POOL_WAITING, "Transactions waiting for a connection of the application pool.");
    describe_histogram!(POOL_ACQUIRE, "Time a transaction waited for its connection and its BEGIN.");
    describe_counter!(TOOL_DECISIONS, "Tool calls a model asked for, by the policy's decision.");
    describe_counter!(TOOL_CALLS, "Tool calls that ran, by outcome.");
    describe_histogram!(TOOL_DURATION, metrics::Unit::Seconds, "A tool call's time, by outcome.");
    describe_histogram!(RETRIEVAL_DURATION, metrics::Unit::Seconds, "A search's time in the database, by mode.");
    describe_counter!(MARKERS_DROPPED, "Citation markers in answers that named no passage the answer was given.");
    describe_histogram!(EMBEDDING_DURATION, metrics::Unit::Seconds, "Embedding texts, by purpose (query, document).");
    describe_gauge!(EMBEDDING_QUEUE, "Batches of texts waiting for the local embedding model now.");
    describe_histogram!(
        TURN_ADDED,
        metrics::Unit::Seconds,
        "A run's own time: its whole time less the time spent waiting for providers and tool servers."
    );
    describe_gauge!(AGENT_QUEUE, "Agent runs queued in the database, waiting for a worker of any process.");
    describe_gauge!(AGENT_QUEUE_AGE, metrics::Unit::Seconds, "How long the oldest queued agent run has waited.");
}

/// Which tenants have their own `tenant` label: the first `limit` seen; none when `limit` is 0.
#[derive(Debug, Default)]
struct TenantLabels {
    limit: usize,
    labelled: HashSet<TenantId>,
}

impl TenantLabels {
    /// The label for `tenant`: its id while fewer than the limit have one, `other` after.
    fn label(&mut self, tenant: TenantId) -> Option<Label> {
        if self.limit == 0 {
            return None;
        }
        let known =
            self.labelled.contains(&tenant) || (self.labelled.len() < self.limit && self.labelled.insert(tenant));
        Some(Label::new("tenant", if known { tenant.to_string() } else { "other".to_owned() }))
    }
}

static TENANT_LABELS: Mutex<Option<TenantLabels>> = Mutex::new(None);

/// Turns on the `tenant` label for up to `limit` tenants (`SWITCHBOARD_METRICS_TENANTS`).
pub fn label_tenants(limit: usize) {
    let mut labels = TENANT_LABELS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *labels = (limit > 0).then(|| TenantLabels { limit, labelled: HashSet::new() });
}

fn tenant_label(tenant: TenantId) -> Option<Label> {
    TENANT_LABELS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut()?.label(tenant)
}

/// `labels`, with the tenant's label when there is one.
fn with_tenant<const N: usize>(labels: [(&'static str, String); N], tenant: Option<&Label>) -> Vec<Label> {
    labels.into_iter().map(|(key, value)| Label::new(key, value)).chain(tenant.cloned()).collect()
}

/// One HTTP answer. `route` is the route's template (`/api/v1/runs/{id}`), or `unmatched`.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let labels = [("route", route.to_owned()), ("method", method.to_owned())];
    counter!(HTTP_REQUESTS, &[labels[0].clone(), labels[1].clone(), ("status", status.to_string())]).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// The tokens and cost of a model's usage record. `model` must be a known model's name (the caller
/// passes what the run recorded, which routing bounded to the catalog, the tenant's declarations and its
/// settings).
pub fn model_usage(
    tenant: TenantId,
    provider: &'static str,
    model: &str,
    tokens: &TokenUsage,
    cost_usd: Option<Decimal>,
) {
    // Looked up once: the lookup takes the labels' lock.
    let tenant = tenant_label(tenant);
    let tenant = tenant.as_ref();
    let labels = |kind: &'static str| {
        with_tenant(
            [
                ("gen_ai_system", provider.to_owned()),
                ("gen_ai_request_model", model.to_owned()),
                ("gen_ai_token_type", kind.to_owned()),
            ],
            tenant,
        )
    };
    #[expect(clippy::cast_precision_loss, reason = "a histogram of counts far below 2^52")]
    {
        histogram!(TOKEN_USAGE, labels("input")).record(tokens.input as f64);
        histogram!(TOKEN_USAGE, labels("output")).record(tokens.output as f64);
        if tokens.cached_input > 0 {
            histogram!(TOKEN_USAGE, labels("cached_input")).record(tokens.cached_input as f64);
        }
        if tokens.reasoning > 0 {
            histogram!(TOKEN_USAGE, labels("reasoning")).record(tokens.reasoning as f64);
        }
    }
    let model_labels =
        with_tenant([("gen_ai_system", provider.to_owned()), ("gen_ai_request_model", model.to_owned())], tenant);
    match cost_usd.and_then(|cost| cost.to_f64()) {
        Some(cost) => gauge!(COST, model_labels).increment(cost),
        None => counter!(UNPRICED, model_labels).increment(1),
    }
}

/// A run ended: its kind and status, and the time to its first token and to its end (model runs only).
pub fn run_ended(
    tenant: TenantId,
    kind: &'static str,
    status: &'static str,
    provider: &'static str,
    first_token: Option<Duration>,
    total: Duration,
) {
    let tenant = tenant_label(tenant);
    counter!(RUNS, with_tenant([("kind", kind.to_owned()), ("status", status.to_owned())], tenant.as_ref()))
        .increment(1);
    let labels = [("gen_ai_system", provider)];
    if let Some(first_token) = first_token {
        histogram!(TIME_TO_FIRST_TOKEN, &labels).record(first_token.as_secs_f64());
    }
    histogram!(OPERATION_DURATION, &labels).record(total.as_secs_f64());
}

/// A run's own time (`kind`: `chat` or `agent`): its whole time less its waits for providers and tools.
pub fn turn_added(kind: &'static str, own: Duration) {
    histogram!(TURN_ADDED, &[("kind", kind)]).record(own.as_secs_f64());
}

/// The agent-run queue, read when the metrics are: how many wait, and for how long the oldest has.
pub fn agent_queue(queued: i64, oldest: Duration) {
    #[expect(clippy::cast_precision_loss, reason = "a gauge of counts far below 2^52")]
    gauge!(AGENT_QUEUE).set(queued as f64);
    gauge!(AGENT_QUEUE_AGE).set(oldest.as_secs_f64());
}

/// One more (`1.0`) or one fewer (`-1.0`) batch waiting for the local embedding model.
pub fn embedding_queue(change: f64) {
    gauge!(EMBEDDING_QUEUE).increment(change);
}

/// A request refused by a limit: `budget`, `rate_limit`, `too_many_runs` or `too_many_streams`.
pub fn refused(which: &'static str) {
    counter!(REFUSALS, &[("limit", which)]).increment(1);
}

/// One more (`1.0`) or one fewer (`-1.0`) open event stream.
pub fn open_streams(change: f64) {
    gauge!(OPEN_STREAMS).increment(change);
}

/// The application pool's connections, set when the metrics are read.
pub fn pool(in_use: u32, idle: u32) {
    gauge!(POOL_CONNECTIONS, &[("state", "in_use")]).set(f64::from(in_use));
    gauge!(POOL_CONNECTIONS, &[("state", "idle")]).set(f64::from(idle));
}

/// A transaction waiting for a pool connection: counted from `start` until `done` (or until dropped,
/// when the wait was abandoned).
pub struct PoolWaiter {
    since: std::time::Instant,
    counted: bool,
}

impl PoolWaiter {
    pub fn start() -> Self {
        gauge!(POOL_WAITING).increment(1.0);
        Self { since: std::time::Instant::now(), counted: true }
    }

    /// The wait ended with a connection (or the pool's error): its time goes to the histogram.
    pub fn done(mut self) {
        histogram!(POOL_ACQUIRE).record(self.since.elapsed().as_secs_f64());
        self.stop_counting();
    }

    fn stop_counting(&mut self) {
        if std::mem::take(&mut self.counted) {
            gauge!(POOL_WAITING).decrement(1.0);
        }
    }
}

impl Drop for PoolWaiter {
    fn drop(&mut self) {
        self.stop_counting();
    }
}

/// The policy decided a tool call: `allow`, `approval` or `deny`.
pub fn tool_decided(decision: &'static str) {
    counter!(TOOL_DECISIONS, &[("decision", decision)]).increment(1);
}

/// A tool call ran: `completed` or `failed`, and how long it took.
pub fn tool_ran(outcome: &'static str, elapsed: Duration) {
    counter!(TOOL_CALLS, &[("outcome", outcome)]).increment(1);
    histogram!(TOOL_DURATION, &[("outcome", outcome)]).record(elapsed.as_secs_f64());
}

/// A search ran in the database: `hybrid`, `full_text` or `vector`.
pub fn retrieval(mode: &'static str, elapsed: Duration) {
    histogram!(RETRIEVAL_DURATION, &[("mode", mode)]).record(elapsed.as_secs_f64());
}

/// An answer's citation markers named `count` passages it was not given (`[9]` of five).
pub fn citation_markers_dropped(count: usize) {
    if count > 0 {
        counter!(MARKERS_DROPPED).increment(count as u64);
    }
}

/// Texts were embedded, for a `query` or a `document`.
pub fn embedding(purpose: &'static str, elapsed: Duration) {
    histogram!(EMBEDDING_DURATION, &[("purpose", purpose)]).record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_get_a_label_only_when_asked_and_only_up_to_the_limit() {
        let (first, second) = (TenantId::new(), TenantId::new());
        let value = |label: Option<Label>| label.map(|label| label.value().to_owned());
        assert_eq!(value(TenantLabels::default().label(first)), None, "no tenant label unless asked");
        let mut labels = TenantLabels { limit: 1, labelled: HashSet::new() };
        assert_eq!(value(labels.label(first)), Some(first.to_string()));
        assert_eq!(value(labels.label(second)), Some("other".to_owned()), "past the limit");
        assert_eq!(value(labels.label(first)), Some(first.to_string()), "a labelled tenant keeps its label");
    }
}
