//! Pass-through overhead: the same OpenAI chat completion sent straight to the mock, through
//! Switchboard's `/v1/chat/completions`, and through the peer proxy, one at a time and at 100 and 1,000
//! concurrent, streaming and not. What each proxy adds is its latency minus the mock's own.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::load::{self, Arrivals, StreamKind, Summary};

/// Where a chat completion can be sent.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    /// To the fast mock (answers at once), for one-at-a-time runs.
    pub fast: Route,
    /// To the slow mock (answers over [`SLOW_REQUEST`]), for the concurrent runs.
    pub slow: Route,
}

/// A chat completions URL, the key it takes and the model name that reaches the intended mock.
#[derive(Debug, Clone)]
pub struct Route {
    pub url: String,
    pub key: String,
    pub model: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
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

pub async fn run(client: &reqwest::Client, targets: &[Target], plan: &Plan) -> Vec<Run> {
    let mut runs = Vec::new();
    for stream in [false, true] {
        for target in targets {
            let summary = load::sequential(plan.sequential, |_, intended| {
                load::send(request(client, &target.fast, stream), intended, stream.then_some(StreamKind::OpenAi))
            })
            .await;
            report(&summary, target.name, stream, 1);
            runs.push(Run { target: target.name, stream, concurrency: 1, summary });
        }
        for &level in &plan.levels {
            for target in targets {
                let rate = level as f64 / SLOW_REQUEST.as_secs_f64();
                let arrivals = Arrivals { rate, count: (rate * plan.seconds) as usize };
                let summary = load::open_loop(arrivals, |_, intended| {
                    load::send(request(client, &target.slow, stream), intended, stream.then_some(StreamKind::OpenAi))
                })
                .await;
                report(&summary, target.name, stream, level);
                runs.push(Run { target: target.name, stream, concurrency: level, summary });
                // Let connections close and the servers settle before the next target.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    runs
}

fn request(client: &reqwest::Client, route: &Route, stream: bool) -> reqwest::RequestBuilder {
    let mut body = json!({
        "model": route.model,
        "messages": [
            { "role": "system", "content": "You are a terse assistant." },
            { "role": "user", "content": "Say something about latency, please." }
        ],
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    client.post(&route.url).bearer_auth(&route.key).json(&body)
}

fn report(summary: &Summary, target: &str, stream: bool, concurrency: usize) {
    eprintln!(
        "  pass-through {target:<12} stream={stream:<5} c={concurrency:<5} total p50 {:>8.2} ms, errors {}",
        summary.total_ms.map_or(f64::NAN, |p| p.p50),
        summary.errors
    );
}
