//! A simple measurement of what a chat turn adds over calling the model directly: time to first token
//! and total time, streaming, against the mock upstream, one at a time and 100 at once.
//!
//! `cargo run --release --example turn_latency` (a throwaway embedded PostgreSQL is started under
//! `target/`). Each round sends the same reply (50 tokens, no delay) through both paths.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Setup, percentile, set_up, timed};

#[derive(Default)]
struct Samples {
    first_token: Vec<Duration>,
    total: Vec<Duration>,
}

impl Samples {
    fn add(&mut self, (first_token, total): (Duration, Duration)) {
        self.first_token.push(first_token);
        self.total.push(total);
    }
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::builder().pool_max_idle_per_host(200).build().unwrap();
    let Setup { base, key, mock, server } = set_up(&client, &[]).await;
    let direct = |client: reqwest::Client, url: String| async move {
        let body = json!({"model": "bench-model", "stream": true, "messages": [{"role": "user", "content": "hello"}]});
        timed(client.post(url).bearer_auth("bench-key").json(&body), |data| data.contains("\"content\":\"token")).await
    };
    let through = |client: reqwest::Client, base: String, key: String| async move {
        let session: Value = client
            .post(format!("{base}/api/v1/sessions"))
            .bearer_auth(&key)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = format!("{base}/api/v1/sessions/{}/messages", session["id"].as_str().unwrap());
        let request =
            client.post(url).bearer_auth(&key).header("accept", "text/event-stream").json(&json!({"content": "hello"}));
        timed(request, |data| data.contains("message.delta")).await
    };

    println!("| concurrency | path | TTFT p50 | TTFT p99 | total p50 | total p99 | n |");
    println!("|---|---|---|---|---|---|---|");
    for (concurrency, rounds) in [(1usize, 300usize), (100, 10)] {
        for path in ["mock directly", "through Switchboard"] {
            let mut samples = Samples::default();
            for _ in 0..rounds {
                let tasks: Vec<_> = (0..concurrency)
                    .map(|_| {
                        let (client, base, key, url) = (
                            client.clone(),
                            base.clone(),
                            key.clone(),
                            format!("{}/chat/completions", mock.openai_base()),
                        );
                        tokio::spawn(async move {
                            if path == "mock directly" {
                                direct(client, url).await
                            } else {
                                through(client, base, key).await
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    samples.add(task.await.unwrap());
                }
            }
            let ms = |duration: Duration| format!("{:.2} ms", duration.as_secs_f64() * 1000.0);
            println!(
                "| {concurrency} | {path} | {} | {} | {} | {} | {} |",
                ms(percentile(&samples.first_token, 500)),
                ms(percentile(&samples.first_token, 990)),
                ms(percentile(&samples.total, 500)),
                ms(percentile(&samples.total, 990)),
                samples.total.len()
            );
        }
    }
    server.stop();
}
