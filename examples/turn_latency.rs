//! A simple measurement of what a chat turn adds over calling the model directly: time to first token
//! and total time, streaming, against the mock upstream, one at a time and 100 at once.
//!
//! `cargo run --release --example turn_latency` (a throwaway embedded PostgreSQL is started under
//! `target/`). Each round sends the same reply (50 tokens, no delay) through both paths.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mock_upstream::{Defaults, MockUpstream};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard::auth::OperatorToken;
use switchboard::crypto::MasterKeys;
use switchboard::db::{self, embedded};
use switchboard::embeddings::{EmbedderFactory, EmbeddingModel};
use switchboard::engine::{Engine, ProviderSetup};
use switchboard::outbound::OutboundPolicy;
use switchboard::prompts::Prompts;
use switchboard::providers::ProviderKind;
use switchboard::providers::credentials::{PlatformCredentials, PlatformProviders};
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::backfill;
use switchboard::tools::Toolbox;
use switchboard::tools::settings::ToolSettings;

const OPERATOR: &str = "bench-operator";

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

/// The nearest-rank percentile, `per_mille` of 500 being the median.
fn percentile(samples: &[Duration], per_mille: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * per_mille).div_ceil(1000).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Streams one request and returns (time to the first content event, time to the end).
async fn timed(request: reqwest::RequestBuilder, is_content: impl Fn(&str) -> bool) -> (Duration, Duration) {
    let started = Instant::now();
    let response = request.send().await.expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.expect("event");
        if first.is_none() && is_content(&event.data) {
            first = Some(started.elapsed());
        }
    }
    (first.expect("some content"), started.elapsed())
}

/// A running Switchboard on a throwaway database, its mock upstream and an admin key of a tenant whose
/// default provider is OpenAI (served by the mock).
struct Setup {
    base: String,
    key: String,
    mock: MockUpstream,
    server: embedded::EmbeddedPostgres,
}

async fn set_up(client: &reqwest::Client) -> Setup {
    let data_dir = std::path::PathBuf::from("target/bench-data");
    let cluster_dir = data_dir.clone();
    let server = tokio::task::spawn_blocking(move || {
        let layout = embedded::Layout::throwaway(&cluster_dir, &format!("{}-bench", std::process::id())).unwrap();
        embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Throwaway).unwrap()
    })
    .await
    .unwrap();
    let app_password = SecretString::from("bench-app-password");
    db::create_database_if_missing(&server.maintenance_options(), "bench").await.unwrap();
    let owner = server.maintenance_options().database("bench");
    db::prepare(&owner, &app_password).await.unwrap();
    let pool = db::connect_app_pool(&owner, &app_password).await.unwrap();

    let mock =
        MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), Defaults { tokens: 50, chunk_delay: Duration::ZERO })
            .await
            .unwrap();
    let keys = Arc::new(MasterKeys::new(&SecretString::from("bench-master"), &[]));
    let platform = PlatformProviders::from([(
        ProviderKind::OpenAi,
        PlatformCredentials { api_key: SecretString::from("bench-key"), base_url: mock.openai_base() },
    )]);
    let providers =
        ProviderSetup { http: HttpClient::new(UpstreamSettings::default()), platform, keys: Arc::clone(&keys) };
    // The default retriever: every turn embeds its question with the local model, as the service does.
    let factory = EmbedderFactory::new(HashMap::new(), HttpClient::new(UpstreamSettings::default()), &data_dir);
    let retriever = backfill::prepare(&owner, &pool, &factory, EmbeddingModel::local()).await;
    let toolbox = Toolbox::new(ToolSettings::default(), Arc::clone(&keys), OutboundPolicy::default());
    let engine = Engine::new(pool.clone(), Prompts::load().unwrap(), providers, retriever.clone(), toolbox.clone());
    let state = switchboard::http::AppState {
        db: pool,
        engine,
        retriever,
        operator_token: Arc::new(OperatorToken::new(&SecretString::from(OPERATOR))),
        keys,
        outbound: OutboundPolicy::default(),
        tools: toolbox,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchboard::http::serve(listener, switchboard::http::router(state, 1 << 20), std::future::pending()));

    let created: Value = client
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(OPERATOR)
        .json(&json!({"name": "Bench", "slug": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"]["key"].as_str().unwrap().to_owned();
    client
        .patch(format!("{base}/api/v1/tenant/config"))
        .bearer_auth(&key)
        .json(&json!({"default_provider": "openai", "default_model": "bench-model"}))
        .send()
        .await
        .unwrap();
    Setup { base, key, mock, server }
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::builder().pool_max_idle_per_host(200).build().unwrap();
    let Setup { base, key, mock, server } = set_up(&client).await;
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
