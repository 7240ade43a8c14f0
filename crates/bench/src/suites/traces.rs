//! What OpenTelemetry tracing costs a chat turn, as an A/B inside one run: a second `switchboard serve` on
//! the same database exports its spans to a sink of its own (the bench's main service exports none), and
//! the two are given the same turns, interleaved, so that whatever the machine does meanwhile hits both
//! alike; two separate runs differ by more than tracing costs. Metrics are always on, so they cannot be
//! compared so: the library's recording calls a turn makes are timed in a loop instead.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::corpus;
use crate::env::{Database, Mock, OPERATOR_TOKEN, Pinning, Service, Tenant};
use crate::load::{self, Outcome, Percentiles, StreamKind, Summary};
use crate::procstat::CpuMark;
use crate::trace_sink::TraceSink;

#[derive(Clone, Copy)]
pub struct Plan {
    /// Turns per service one at a time, interleaved.
    pub pairs: usize,
    /// Turns per saturation leg; the legs run in blocks of four: untraced, traced, traced, untraced.
    pub saturation_turns: usize,
    /// Short blocks rather than long legs: a turn's cost grows with the tenant's history (PostgreSQL's
    /// CPU per turn grew two- to threefold over 8,000 turns), which a block's order cancels only if nearly linear.
    pub saturation_blocks: usize,
    pub saturation_workers: usize,
    /// Rounds of a turn's metric recording calls timed in a loop.
    pub metric_rounds: usize,
}

/// Turns each service answers before anything is measured: connections opened, statements prepared.
const WARM_UP_TURNS: usize = 5;
/// Turns per worker of the unmeasured saturation leg each service runs first.
const WARM_UP_LEG_TURNS_PER_WORKER: usize = 4;
/// Longer than the span processor's schedule (5 s): after it, the spans of what came before have left.
const EXPORT_SETTLE: Duration = Duration::from_secs(6);
/// The pool waits' histogram: how many transactions a turn begins, read from the service's own metrics.
const POOL_WAITS: &str = "switchboard_db_pool_acquire_seconds_count";

#[derive(Debug, Clone, Serialize)]
pub struct Traces {
    pub corpus_chunks: i64,
    pub pairs: usize,
    pub untraced: Summary,
    pub traced: Summary,
    /// Traced minus untraced, percentile by percentile.
    pub added_first_token_ms: Option<Percentiles>,
    /// From the pairs' own differences (traced minus untraced, the same question one after the other).
    pub paired: Option<Paired>,
    pub saturation_workers: usize,
    pub saturation: Vec<Leg>,
    pub untraced_turns_per_s: f64,
    pub traced_turns_per_s: f64,
    /// (traced − untraced) / untraced within each block, averaged over the blocks.
    pub throughput_change: f64,
    pub spans_per_turn_one_at_a_time: f64,
    pub spans_per_turn_saturated: f64,
    /// The sink's count of what arrived, after the traced service stopped (and sent what it still held).
    pub sink: String,
    pub metrics: MetricsCost,
}

/// The pairs' differences (traced minus untraced), whose median depends on which of the two went first:
/// the second asking is faster (its question's search is warm in the database's cache). So the median of
/// each order apart: untraced first gives `added − second_faster`, traced first `added + second_faster`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Paired {
    pub added_ms: f64,
    /// How much faster the second turn of a pair is than the first, whichever service it is.
    pub second_faster_ms: f64,
}

/// One saturation leg: one service, a fixed number of turns.
#[derive(Debug, Clone, Serialize)]
pub struct Leg {
    pub block: usize,
    pub traced: bool,
    pub summary: Summary,
    pub service_cpu_ms_per_turn: f64,
    pub database_cpu_ms_per_turn: f64,
}

/// The metric recording calls of a turn, timed in this process (one thread, no contention).
#[derive(Debug, Clone, Serialize)]
pub struct MetricsCost {
    pub rounds: usize,
    /// Transactions begun per turn (each counted and timed while it waits for its connection), from the
    /// untraced service's `/metrics` over its one-at-a-time turns.
    pub pool_waits_per_turn: f64,
    /// The calls a turn makes once (HTTP answer, open stream, query embedding, search, usage, run end), µs.
    pub once_per_turn_us: f64,
    /// One pool wait's recording, µs.
    pub pool_wait_us: f64,
    /// Everything on a turn's path: `once_per_turn_us + pool_waits_per_turn × pool_wait_us`.
    pub per_turn_us: f64,
    /// Histogram samples are bucketed when `/metrics` is rendered, not when recorded: that work, per turn.
    pub deferred_to_scrape_us: f64,
}

/// Starts the traced service and its sink, measures, and stops it (so it sends what it still holds).
pub async fn run(
    client: &reqwest::Client,
    untraced: &Service,
    tenant: &Tenant,
    database: &Database,
    data_dir: &Path,
    pinning: Pinning,
    turn_mock: &Mock,
    fast_mock: &Mock,
    corpus_chunks: i64,
    seed: u64,
    plan: &Plan,
) -> anyhow::Result<Traces> {
    let sink = TraceSink::start().await?;
    // Its own data directory and port; the same database, master key and operator token, so the tenant
    // and its key work on both.
    let traced = Service::start(database, fast_mock, &data_dir.join("traced"), pinning, Some(&sink.endpoint)).await?;
    let postmaster = database.server.pid().unwrap_or_default();
    let sides = Sides { untraced, traced: &traced };
    let measured = measure(client, sides, tenant, &sink, turn_mock, fast_mock, seed, plan, postmaster).await;
    traced.stop().await;
    let sink = sink.summary();
    eprintln!("  {sink}");
    let (one_at_a_time, saturated, metrics) = measured?;
    Ok(assemble(one_at_a_time, saturated, metrics, corpus_chunks, sink, plan))
}

#[derive(Clone, Copy)]
struct Sides<'a> {
    untraced: &'a Service,
    traced: &'a Service,
}

impl<'a> Sides<'a> {
    fn get(self, traced: bool) -> &'a Service {
        if traced { self.traced } else { self.untraced }
    }
}

async fn measure(
    client: &reqwest::Client,
    sides: Sides<'_>,
    tenant: &Tenant,
    sink: &TraceSink,
    turn_mock: &Mock,
    fast_mock: &Mock,
    seed: u64,
    plan: &Plan,
    postmaster: u32,
) -> anyhow::Result<(OneAtATime, Saturated, MetricsCost)> {
    // Saturation first: its warm-up fills both services' pools alike, each connection with its prepared
    // statements. Measured first one at a time, the main service (whose pool the set-up had grown) ran
    // its first turns on connections still preparing them, and came out 3 to 5 ms slower at p50.
    tenant.use_chat_mock(client, sides.untraced, fast_mock).await?;
    let saturated = saturated(client, sides, tenant, sink, seed, plan, postmaster).await?;
    tenant.use_chat_mock(client, sides.untraced, turn_mock).await?;
    let one_at_a_time = one_at_a_time(client, sides, tenant, sink, seed, plan.pairs).await?;
    eprintln!(
        "  one at a time, TTFT p50 untraced {:.2} ms, traced {:.2} ms; from the pairs: {:?}",
        p50(one_at_a_time.untraced.first_token_ms),
        p50(one_at_a_time.traced.first_token_ms),
        one_at_a_time.paired
    );
    let metrics = time_metric_calls(plan.metric_rounds, one_at_a_time.pool_waits_per_turn).await?;
    eprintln!(
        "  metrics: {:.2} µs per turn on its path (+{:.2} µs at the scrape)",
        metrics.per_turn_us, metrics.deferred_to_scrape_us
    );
    Ok((one_at_a_time, saturated, metrics))
}

fn p50(percentiles: Option<Percentiles>) -> f64 {
    percentiles.map_or(f64::NAN, |p| p.p50)
}

/// One streamed turn on a fresh conversation, as the turns suite sends it, timed from now.
fn turn(
    client: &reqwest::Client,
    service: &Service,
    key: &str,
    session: &str,
    question: &str,
) -> impl Future<Output = Outcome> + use<> {
    let request = client
        .post(format!("{}/api/v1/sessions/{session}/messages", service.base))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .json(&json!({ "content": question }));
    load::send(request, Instant::now(), Some(StreamKind::Switchboard))
}

struct OneAtATime {
    pairs: usize,
    untraced: Summary,
    traced: Summary,
    paired: Option<Paired>,
    pool_waits_per_turn: f64,
    spans_per_turn: f64,
}

struct Saturated {
    legs: Vec<Leg>,
    spans_per_turn: f64,
}

/// The report's figures, from what each part measured.
fn assemble(
    one_at_a_time: OneAtATime,
    saturated: Saturated,
    metrics: MetricsCost,
    corpus_chunks: i64,
    sink: String,
    plan: &Plan,
) -> Traces {
    let (untraced_turns_per_s, traced_turns_per_s) =
        (turns_per_s(&saturated.legs, false), turns_per_s(&saturated.legs, true));
    let throughput_change = throughput_change(&saturated.legs);
    let OneAtATime { pairs, untraced, traced, paired, spans_per_turn, .. } = one_at_a_time;
    Traces {
        corpus_chunks,
        pairs,
        added_first_token_ms: traced.first_token_ms.zip(untraced.first_token_ms).map(|(b, a)| b.minus(a)),
        untraced,
        traced,
        paired,
        saturation_workers: plan.saturation_workers,
        saturation: saturated.legs,
        untraced_turns_per_s,
        traced_turns_per_s,
        throughput_change,
        spans_per_turn_one_at_a_time: spans_per_turn,
        spans_per_turn_saturated: saturated.spans_per_turn,
        sink,
        metrics,
    }
}

/// (traced − untraced) / untraced, block by block, averaged: each block compares legs run close together.
fn throughput_change(legs: &[Leg]) -> f64 {
    let blocks = legs.iter().map(|leg| leg.block).max().map_or(0, |last| last + 1);
    let changes: Vec<f64> = (0..blocks)
        .map(|block| {
            let in_block = || legs.iter().filter(move |leg| leg.block == block);
            let (untraced, traced) = (turns_per_s(in_block(), false), turns_per_s(in_block(), true));
            (traced - untraced) / untraced
        })
        .collect();
    changes.iter().sum::<f64>() / changes.len().max(1) as f64
}

/// One side's turns completed per second over all its legs.
fn turns_per_s<'a>(legs: impl IntoIterator<Item = &'a Leg>, traced: bool) -> f64 {
    let (done, seconds) = legs.into_iter().filter(|leg| leg.traced == traced).fold((0, 0.0), |(done, seconds), leg| {
        (done + leg.summary.requests - leg.summary.errors, seconds + leg.summary.elapsed_s)
    });
    done as f64 / f64::max(seconds, f64::MIN_POSITIVE)
}

/// `pairs` turns on each service, one in flight at a time, alternating; pair `i` asks both the same
/// question, and which service goes first alternates from pair to pair, so that the second asking (its
/// search warmer in the database's cache) favours neither.
async fn one_at_a_time(
    client: &reqwest::Client,
    sides: Sides<'_>,
    tenant: &Tenant,
    sink: &TraceSink,
    seed: u64,
    pairs: usize,
) -> anyhow::Result<OneAtATime> {
    let mut sessions = tenant.new_sessions(client, sides.untraced, 2 * (WARM_UP_TURNS + pairs)).await?.into_iter();
    let mut next_session = move || sessions.next().expect("a session per turn");
    for i in 0..WARM_UP_TURNS {
        for traced in [false, true] {
            let _ = turn(client, sides.get(traced), &tenant.key, &next_session(), &corpus::question(seed, i)).await;
        }
    }
    tokio::time::sleep(EXPORT_SETTLE).await;
    let spans_before = sink.spans();
    let pool_waits_before = counter(client, sides.untraced, POOL_WAITS).await?;
    let started = Instant::now();
    let (mut untraced, mut traced) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for i in 0..pairs {
        let order = if i % 2 == 0 { [false, true] } else { [true, false] };
        for side in order {
            let question = corpus::question(seed, WARM_UP_TURNS + i);
            let outcome = turn(client, sides.get(side), &tenant.key, &next_session(), &question).await;
            if side { traced.push(outcome) } else { untraced.push(outcome) }
        }
    }
    let elapsed = started.elapsed();
    let pool_waits = counter(client, sides.untraced, POOL_WAITS).await? - pool_waits_before;
    tokio::time::sleep(EXPORT_SETTLE).await;
    Ok(OneAtATime {
        pairs,
        paired: paired(&untraced, &traced),
        untraced: Summary::of(&untraced, elapsed),
        traced: Summary::of(&traced, elapsed),
        pool_waits_per_turn: pool_waits / pairs.max(1) as f64,
        spans_per_turn: (sink.spans() - spans_before) as f64 / pairs.max(1) as f64,
    })
}

/// The pairs' differences, even pairs (untraced first) and odd ones (traced first) apart; `None` unless
/// both orders have a pair where both services answered.
fn paired(untraced: &[Outcome], traced: &[Outcome]) -> Option<Paired> {
    let first_token = |outcome: &Outcome| outcome.as_ref().ok().and_then(|timing| timing.first_token);
    let difference =
        |(a, b): (&Outcome, &Outcome)| Some((first_token(b)?.as_secs_f64() - first_token(a)?.as_secs_f64()) * 1000.0);
    let pairs = || untraced.iter().zip(traced);
    let untraced_first = median(pairs().step_by(2).filter_map(difference).collect())?;
    let traced_first = median(pairs().skip(1).step_by(2).filter_map(difference).collect())?;
    Some(Paired {
        added_ms: f64::midpoint(untraced_first, traced_first),
        second_faster_ms: (traced_first - untraced_first) / 2.0,
    })
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    })
}

/// The sum of a series' values (over all its labels) in a service's `/metrics`.
async fn counter(client: &reqwest::Client, service: &Service, series: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{}/metrics", service.base))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| line.strip_prefix(series).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Blocks of four legs of a fixed number of turns with the fast mock, in the order untraced, traced,
/// traced, untraced, so that a drift over a block (the machine's, the tenant's growing history) weighs
/// on both sides alike.
async fn saturated(
    client: &reqwest::Client,
    sides: Sides<'_>,
    tenant: &Tenant,
    sink: &TraceSink,
    seed: u64,
    plan: &Plan,
    postmaster: u32,
) -> anyhow::Result<Saturated> {
    let order: Vec<(usize, bool)> = (0..plan.saturation_blocks)
        .flat_map(|block| [false, true, true, false].map(|traced| (block, traced)))
        .collect();
    let mut sessions = Vec::new();
    for _ in &order {
        sessions.push(Arc::new(tenant.new_sessions(client, sides.untraced, plan.saturation_turns).await?));
    }
    for traced in [false, true] {
        let turns = WARM_UP_LEG_TURNS_PER_WORKER * plan.saturation_workers;
        let sessions = Arc::new(tenant.new_sessions(client, sides.untraced, turns).await?);
        let warm_up = Plan { saturation_turns: turns, ..*plan };
        saturation_leg(client, sides.get(traced), tenant, sessions, seed, &warm_up, postmaster).await;
    }
    tokio::time::sleep(EXPORT_SETTLE).await;
    let spans_before = sink.spans();
    let mut legs = Vec::new();
    for ((block, traced), sessions) in order.into_iter().zip(sessions) {
        let leg = saturation_leg(client, sides.get(traced), tenant, sessions, seed, plan, postmaster).await;
        eprintln!(
            "  saturation {}: {:.1} turns/s, {} errors, service CPU {:.2} ms per turn",
            if traced { "traced  " } else { "untraced" },
            leg.summary.throughput,
            leg.summary.errors,
            leg.service_cpu_ms_per_turn
        );
        legs.push(Leg { block, traced, ..leg });
    }
    tokio::time::sleep(EXPORT_SETTLE).await;
    let traced_turns: usize =
        legs.iter().filter(|leg| leg.traced).map(|leg| leg.summary.requests - leg.summary.errors).sum();
    Ok(Saturated { spans_per_turn: (sink.spans() - spans_before) as f64 / traced_turns.max(1) as f64, legs })
}

async fn saturation_leg(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    sessions: Arc<Vec<String>>,
    seed: u64,
    plan: &Plan,
    postmaster: u32,
) -> Leg {
    let (client, service_base, key) = (client.clone(), service.base.clone(), tenant.key.clone());
    let mark = CpuMark::now(service.pid(), postmaster);
    let summary = load::saturate_count(plan.saturation_workers, plan.saturation_turns, move |i, intended| {
        let request = client
            .post(format!("{service_base}/api/v1/sessions/{}/messages", sessions[i]))
            .bearer_auth(&key)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": corpus::question(seed, i) }));
        load::send(request, intended, Some(StreamKind::Switchboard))
    })
    .await;
    let (service_cpu, database_cpu) = mark.per_unit_since(service.pid(), postmaster, summary.requests - summary.errors);
    Leg {
        block: 0,
        traced: false,
        summary,
        service_cpu_ms_per_turn: service_cpu,
        database_cpu_ms_per_turn: database_cpu,
    }
}

/// Times, in this process and through the library, the metric recording calls a streamed chat turn makes
/// (`http::metrics::count_requests`, `http::streams`, the query embedding, the search, `engine::turn`'s
/// usage and run end), `rounds` times, and apart the pool wait every transaction records.
async fn time_metric_calls(rounds: usize, pool_waits_per_turn: f64) -> anyhow::Result<MetricsCost> {
    tokio::task::spawn_blocking(move || {
        let metrics = switchboard::metrics::Metrics::install();
        // The series are made by the first call; a running service has made them long ago.
        metric_calls_of_a_turn();
        switchboard::metrics::PoolWaiter::start().done();
        drop(metrics.render());
        let rounds_f = rounds.max(1) as f64;
        let once = timed(rounds, metric_calls_of_a_turn);
        let once_deferred = timed(1, || drop(metrics.render()));
        let pool_wait = timed(rounds, || switchboard::metrics::PoolWaiter::start().done());
        let pool_deferred = timed(1, || drop(metrics.render()));
        let once_per_turn_us = once / rounds_f;
        let pool_wait_us = pool_wait / rounds_f;
        Ok(MetricsCost {
            rounds,
            pool_waits_per_turn,
            once_per_turn_us,
            pool_wait_us,
            per_turn_us: once_per_turn_us + pool_waits_per_turn * pool_wait_us,
            deferred_to_scrape_us: (once_deferred + pool_waits_per_turn * pool_deferred) / rounds_f,
        })
    })
    .await?
}

/// Microseconds `work` takes, done `times` times.
fn timed(times: usize, mut work: impl FnMut()) -> f64 {
    let started = std::time::Instant::now();
    for _ in 0..times {
        work();
    }
    started.elapsed().as_secs_f64() * 1e6
}

/// What a completed streamed turn records once, with the labels it records them under.
fn metric_calls_of_a_turn() {
    use switchboard::metrics;
    static TENANT: std::sync::LazyLock<switchboard::ids::TenantId> =
        std::sync::LazyLock::new(switchboard::ids::TenantId::new);
    let tenant = *TENANT;
    let tokens = switchboard::tokens::TokenUsage::new(1_200, 40);
    metrics::open_streams(1.0);
    metrics::embedding("query", Duration::from_millis(2));
    metrics::retrieval("hybrid", Duration::from_millis(20));
    metrics::model_usage(tenant, "openai", "bench-model", &tokens, Some(Decimal::new(123, 6)));
    metrics::run_ended(tenant, "chat", "succeeded", "openai", Some(Duration::from_millis(30)), Duration::from_secs(1));
    metrics::turn_added("chat", Duration::from_millis(25));
    metrics::citation_markers_dropped(0);
    metrics::open_streams(-1.0);
    metrics::http_request("/api/v1/sessions/{id}/messages", "POST", 200, Duration::from_millis(5));
}
