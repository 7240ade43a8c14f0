//! Pass-through overhead: the same request sent straight to the mock, through Switchboard and through
//! the peer proxy, one at a time and at 100 and 1,000 concurrent, streaming and not, on each route both
//! serve: `/v1/chat/completions`, `/v1/messages` (Anthropic Messages) and `/v1/responses` (OpenAI
//! Responses). What each proxy adds is its latency minus the mock's own.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::load::{self, Arrivals, StreamKind, Summary};

/// A wire format: the shape of a request and of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Wire {
    /// OpenAI Chat Completions.
    #[serde(rename = "/v1/chat/completions")]
    ChatCompletions,
    /// Anthropic Messages: the key in `x-api-key`, `anthropic-version`, `max_tokens` required.
    #[serde(rename = "/v1/messages")]
    Messages,
    /// OpenAI Responses: `instructions` and `input`.
    #[serde(rename = "/v1/responses")]
    Responses,
}

impl Wire {
    /// The path of the route that speaks it.
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Messages => "/v1/messages",
            Self::Responses => "/v1/responses",
        }
    }

    fn stream_kind(self) -> StreamKind {
        match self {
            Self::ChatCompletions => StreamKind::OpenAi,
            Self::Messages => StreamKind::Anthropic,
            Self::Responses => StreamKind::Responses,
        }
    }
}

/// One route measured: every target's runs on it, side by side.
#[derive(Debug, Clone)]
pub struct Door {
    /// The route the proxies are asked on.
    pub route: Wire,
    pub targets: Vec<Target>,
}

/// Where a request can be sent.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    /// What it is asked in: the door's own format, except for the mock's floor of a door the mock does
    /// not serve (`/v1/responses`: the mock's chat completion, which both proxies send upstream).
    pub wire: Wire,
    /// To the fast mock (answers at once), for one-at-a-time runs.
    pub fast: Route,
    /// To the slow mock (answers over [`SLOW_REQUEST`]), for the concurrent runs.
    pub slow: Route,
}

/// A URL, the key it takes and the model name that reaches the intended mock.
#[derive(Debug, Clone)]
pub struct Route {
    pub url: String,
    pub key: String,
    pub model: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The route measured (for the mock's floor, the route whose floor it is).
    pub route: Wire,
    pub target: &'static str,
    pub stream: bool,
    /// 1 = one request at a time; else the number in flight the arrival rate aims at.
    pub concurrency: usize,
    pub summary: Summary,
}

/// How long one request to the slow mock lasts (its tokens × their delay): the concurrent runs send
/// `concurrency / this` requests per second, so about `concurrency` are in flight.
pub const SLOW_REQUEST: Duration = Duration::from_millis(1000);

pub struct Plan {
    pub sequential: usize,
    pub levels: Vec<usize>,
    /// Seconds of arrivals at each level.
    pub seconds: f64,
}

pub async fn run(client: &reqwest::Client, doors: &[Door], plan: &Plan) -> Vec<Run> {
    let mut runs = Vec::new();
    for door in doors {
        let route = door.route;
        for stream in [false, true] {
            for target in &door.targets {
                let kind = stream.then_some(target.wire.stream_kind());
                let summary = load::sequential(plan.sequential, |_, intended| {
                    load::send(request(client, target.wire, &target.fast, stream), intended, kind)
                })
                .await;
                report(&summary, route, target.name, stream, 1);
                runs.push(Run { route, target: target.name, stream, concurrency: 1, summary });
            }
            for &level in &plan.levels {
                for target in &door.targets {
                    let kind = stream.then_some(target.wire.stream_kind());
                    let rate = level as f64 / SLOW_REQUEST.as_secs_f64();
                    let arrivals = Arrivals { rate, count: (rate * plan.seconds) as usize };
                    let summary = load::open_loop(arrivals, |_, intended| {
                        load::send(request(client, target.wire, &target.slow, stream), intended, kind)
                    })
                    .await;
                    report(&summary, route, target.name, stream, level);
                    runs.push(Run { route, target: target.name, stream, concurrency: level, summary });
                    // Let connections close and the servers settle before the next target.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }
    runs
}

const SYSTEM: &str = "You are a terse assistant.";
const QUESTION: &str = "Say something about latency, please.";

/// The same question in each format: a system prompt and one user message.
fn request(client: &reqwest::Client, wire: Wire, route: &Route, stream: bool) -> reqwest::RequestBuilder {
    match wire {
        Wire::ChatCompletions => {
            let mut body = json!({
                "model": route.model,
                "messages": [
                    { "role": "system", "content": SYSTEM },
                    { "role": "user", "content": QUESTION }
                ],
                "stream": stream,
            });
            if stream {
                body["stream_options"] = json!({ "include_usage": true });
            }
            client.post(&route.url).bearer_auth(&route.key).json(&body)
        }
        // As Anthropic's SDKs send it. `max_tokens` is above every mock's answer, so none is cut.
        Wire::Messages => {
            client.post(&route.url).header("x-api-key", &route.key).header("anthropic-version", "2023-06-01").json(
                &json!({
                    "model": route.model,
                    "max_tokens": 1024,
                    "system": SYSTEM,
                    "messages": [{ "role": "user", "content": QUESTION }],
                    "stream": stream,
                }),
            )
        }
        Wire::Responses => client.post(&route.url).bearer_auth(&route.key).json(&json!({
            "model": route.model,
            "instructions": SYSTEM,
            "input": QUESTION,
            "stream": stream,
        })),
    }
}

fn report(summary: &Summary, route: Wire, target: &str, stream: bool, concurrency: usize) {
    eprintln!(
        "  pass-through {:<20} {target:<12} stream={stream:<5} c={concurrency:<5} total p50 {:>8.2} ms, errors {}{}",
        route.path(),
        summary.total_ms.map_or(f64::NAN, |p| p.p50),
        summary.errors,
        summary.error_examples.first().map_or_else(String::new, |example| format!(" ({example})")),
    );
}
