//! The open-loop load generator: requests leave on a fixed schedule whatever happened to the earlier ones,
//! and each is timed from the moment it was *meant* to leave. A slow server therefore shows up as latency
//! (as its users would feel it), not as a generator that quietly waited for it (coordinated omission).

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What one request measured, from its intended start.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Until the first piece of answer text (streams only).
    pub first_token: Option<Duration>,
    pub total: Duration,
}

/// The outcome of one request: its timing, or why it failed.
pub type Outcome = Result<Timing, String>;

/// A schedule: `count` requests, `rate` per second, evenly spaced.
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    pub rate: f64,
    pub count: usize,
}

/// Runs `request(i, intended_start)` for each arrival at its intended time and gathers the outcomes.
pub async fn open_loop<F, Fut>(arrivals: Arrivals, request: F) -> Summary
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let started = Instant::now();
    let spacing = Duration::from_secs_f64(1.0 / arrivals.rate);
    let mut running = JoinSet::new();
    for i in 0..arrivals.count {
        let intended = started + spacing.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        running.spawn(request(i, intended));
    }
    let outcomes = running.join_all().await;
    Summary::of(&outcomes, started.elapsed())
}

/// One request after another: the latency of a lone user, with nothing queued behind it.
pub async fn sequential<F, Fut>(count: usize, request: F) -> Summary
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(count);
    for i in 0..count {
        outcomes.push(request(i, Instant::now()).await);
    }
    Summary::of(&outcomes, started.elapsed())
}

/// `workers` loops sending back to back for `duration`: the most a server completes (its saturation
/// throughput). Latency here is not meaningful (closed loop); throughput is.
pub async fn saturate<F, Fut>(workers: usize, duration: Duration, request: F) -> Summary
where
    F: Fn(usize, Instant) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut running = JoinSet::new();
    for worker in 0..workers {
        let request = request.clone();
        running.spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = worker;
            while Instant::now() < deadline {
                outcomes.push(request(i, Instant::now()).await);
                i += workers;
            }
            outcomes
        });
    }
    let outcomes: Vec<Outcome> = running.join_all().await.into_iter().flatten().collect();
    Summary::of(&outcomes, started.elapsed())
}

/// `workers` loops sending back to back until `count` requests have been sent (a fixed amount of work,
/// so two servers are compared on the same turns): the most a server completes. Closed loop, like
/// [`saturate`]: throughput is meaningful, latency is not.
pub async fn saturate_count<F, Fut>(workers: usize, count: usize, request: F) -> Summary
where
    F: Fn(usize, Instant) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut running = JoinSet::new();
    for _ in 0..workers {
        let request = request.clone();
        let next = std::sync::Arc::clone(&next);
        running.spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return outcomes;
                }
                outcomes.push(request(i, Instant::now()).await);
            }
        });
    }
    let outcomes: Vec<Outcome> = running.join_all().await.into_iter().flatten().collect();
    Summary::of(&outcomes, started.elapsed())
}

/// Percentiles of a run, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (sorted in place); `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort();
        let at = |q: f64| {
            let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Some(Self { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) })
    }

    /// `self − other`, percentile by percentile: what one path adds over another at each rank. Not a
    /// percentile of differences (the runs are not paired), which the reports say.
    pub fn minus(self, other: Self) -> Self {
        Self {
            p50: self.p50 - other.p50,
            p90: self.p90 - other.p90,
            p99: self.p99 - other.p99,
            max: self.max - other.max,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub errors: usize,
    /// Up to three distinct error messages, to say what went wrong.
    pub error_examples: Vec<String>,
    pub first_token_ms: Option<Percentiles>,
    pub total_ms: Option<Percentiles>,
    pub elapsed_s: f64,
    /// Completed requests per second of the run.
    pub throughput: f64,
}

impl Summary {
    pub fn of(outcomes: &[Outcome], elapsed: Duration) -> Self {
        let mut first_tokens: Vec<Duration> = Vec::new();
        let mut totals: Vec<Duration> = Vec::new();
        let mut error_examples: Vec<String> = Vec::new();
        let mut errors = 0;
        for outcome in outcomes {
            match outcome {
                Ok(timing) => {
                    totals.push(timing.total);
                    first_tokens.extend(timing.first_token);
                }
                Err(message) => {
                    errors += 1;
                    if error_examples.len() < 3 && !error_examples.contains(message) {
                        error_examples.push(message.clone());
                    }
                }
            }
        }
        Self {
            requests: outcomes.len(),
            errors,
            error_examples,
            first_token_ms: Percentiles::of(&mut first_tokens),
            throughput: totals.len() as f64 / elapsed.as_secs_f64(),
            total_ms: Percentiles::of(&mut totals),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

/// How a streamed answer's text arrives, so the first token can be told from the events before it.
#[derive(Debug, Clone, Copy)]
pub enum StreamKind {
    /// OpenAI chat completion chunks: `choices[0].delta.content`; ends with `[DONE]`.
    OpenAi,
    /// Anthropic Messages events: a `content_block_delta` whose `text_delta` has text; ends with
    /// `message_stop`, fails with `error`.
    Anthropic,
    /// OpenAI Responses events: a `response.output_text.delta` with text; ends with `response.completed`,
    /// fails with `response.failed`, `response.incomplete` or `error`. Read from each data's `type`, which
    /// every server sends (not all of them name their SSE events).
    Responses,
    /// Switchboard's run events: the first `message.delta`.
    Switchboard,
}

/// What one event of a stream is, as far as timing it goes.
enum Seen {
    Text,
    End,
    Failure,
    Other,
}

/// Sends a request and reads its answer to the end, timing from `intended`.
pub async fn send(request: reqwest::RequestBuilder, intended: Instant, stream: Option<StreamKind>) -> Outcome {
    let response = request.send().await.map_err(|error| format!("send: {}", without_url(&error)))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("HTTP {status}: {}", body.chars().take(160).collect::<String>()));
    }
    let Some(kind) = stream else {
        response.bytes().await.map_err(|error| format!("body: {}", without_url(&error)))?;
        return Ok(Timing { first_token: None, total: intended.elapsed() });
    };
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut first_token = None;
    let mut ended = false;
    while let Some(event) = events.next().await {
        let event = event.map_err(|error| format!("stream: {error}"))?;
        match classify(kind, &event) {
            Seen::Text if first_token.is_none() => first_token = Some(intended.elapsed()),
            Seen::End => ended = true,
            Seen::Failure => {
                return Err(format!("failed: {}", event.data.chars().take(160).collect::<String>()));
            }
            Seen::Text | Seen::Other => {}
        }
    }
    if !ended {
        return Err("the stream ended without its closing event".to_owned());
    }
    Ok(Timing { first_token: Some(first_token.ok_or("no text in the stream")?), total: intended.elapsed() })
}

fn classify(kind: StreamKind, event: &eventsource_stream::Event) -> Seen {
    let json = || serde_json::from_str::<serde_json::Value>(&event.data).unwrap_or_default();
    let has_text = |text: &serde_json::Value| text.as_str().is_some_and(|text| !text.is_empty());
    match kind {
        StreamKind::Switchboard => match event.event.as_str() {
            "message.delta" => Seen::Text,
            "run.completed" => Seen::End,
            "run.failed" => Seen::Failure,
            _ => Seen::Other,
        },
        StreamKind::OpenAi if event.data == "[DONE]" => Seen::End,
        // Parsed only when it may carry text: most of a stream is text, but not every chunk.
        StreamKind::OpenAi if event.data.contains("\"content\"") => {
            if has_text(&json()["choices"][0]["delta"]["content"]) { Seen::Text } else { Seen::Other }
        }
        StreamKind::OpenAi => Seen::Other,
        StreamKind::Anthropic => {
            let data = json();
            match data["type"].as_str().unwrap_or_default() {
                "content_block_delta" if has_text(&data["delta"]["text"]) => Seen::Text,
                "message_stop" => Seen::End,
                "error" => Seen::Failure,
                _ => Seen::Other,
            }
        }
        StreamKind::Responses => {
            let data = json();
            match data["type"].as_str().unwrap_or_default() {
                "response.output_text.delta" if has_text(&data["delta"]) => Seen::Text,
                "response.completed" => Seen::End,
                "response.failed" | "response.incomplete" | "error" => Seen::Failure,
                _ => Seen::Other,
            }
        }
    }
}

/// reqwest's errors name the URL; ours are all on 127.0.0.1 and the reports are shorter without.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "other"
    };
    format!("{kind}: {}", std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string))
}
