//! What Switchboard adds to a tool call over calling the MCP server directly: policy decision, the
//! `tool_calls` rows and audit entries, result shaping, events, and the second model request.
//!
//! `cargo run --release --example tool_overhead` (a throwaway embedded PostgreSQL under `target/`).
//! Sequential, one request at a time, in one run:
//! - R: a direct rmcp `tools/call` to an in-process MCP server over a kept-open session;
//! - M: one streamed request straight to the mock model;
//! - T0: a chat turn whose model answers at once; T1: the same turn, but the model first calls the tool.
//!
//! T1 − T0 is the whole cost of a tool step: one more model request (≈ M), the call itself (≈ R) and what
//! Switchboard adds around it. The added part is estimated as T1 − T0 − M − R, per percentile.

mod support;

use std::time::{Duration, Instant};

use mock_upstream::{Reply, ToolCall};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServiceExt as _, schemars, tool, tool_router};
use serde_json::{Value, json};
use support::{Setup, percentile, set_up, timed};

const ROUNDS: usize = 300;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Lookup {
    id: u32,
}

#[derive(Clone)]
struct BenchServer;

#[tool_router(server_handler)]
impl BenchServer {
    #[tool(description = "Look up a record.", annotations(read_only_hint = true))]
    async fn lookup(&self, Parameters(request): Parameters<Lookup>) -> String {
        let rows: Vec<Value> = (0..5).map(|row| json!({ "row": row, "value": "x".repeat(20) })).collect();
        json!({ "id": request.id, "rows": rows }).to_string()
    }
}

async fn start_mcp_server() -> String {
    let service = StreamableHttpService::new(
        || Ok(BenchServer),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn admin(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = client.request(method, format!("{base}{path}")).bearer_auth(key).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::builder().pool_max_idle_per_host(20).build().unwrap();
    let Setup { base, key, mock, server } = set_up(&client, &["127.0.0.1".to_owned()]).await;
    let url = start_mcp_server().await;
    let post = reqwest::Method::POST;
    let connector = json!({ "name": "bench", "transport": "streamable_http", "url": url });
    admin(&client, &base, &key, post.clone(), "/api/v1/mcp-connectors", connector).await;
    let profile = json!({ "name": "bench", "tool_allowlist": ["bench.*"] });
    let profile = admin(&client, &base, &key, post.clone(), "/api/v1/policy-profiles", profile).await;
    let config = json!({ "active_policy_profile_id": profile["id"] });
    admin(&client, &base, &key, reqwest::Method::PATCH, "/api/v1/tenant/config", config).await;

    let mut direct_tool = Vec::new();
    let session = ().serve(StreamableHttpClientTransport::from_uri(url.as_str())).await.unwrap();
    for id in 0..ROUNDS {
        let arguments = json!({ "id": id }).as_object().unwrap().clone();
        let started = Instant::now();
        session.peer().call_tool(CallToolRequestParams::new("lookup").with_arguments(arguments)).await.unwrap();
        direct_tool.push(started.elapsed());
    }

    let mut direct_model = Vec::new();
    let completions = format!("{}/chat/completions", mock.openai_base());
    for _ in 0..ROUNDS {
        mock.push(Reply { text: "done".into(), ..Reply::default() });
        let body = json!({ "model": "bench-model", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
        let request = client.post(&completions).bearer_auth("bench-key").json(&body);
        direct_model.push(timed(request, |_| true).await.1);
    }

    let mut turns = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS * 2 {
        let with_tool = round % 2 == 1;
        if with_tool {
            let call = ToolCall { id: String::new(), name: "bench__lookup".into(), arguments: json!({ "id": round }) };
            mock.push(Reply { tool_calls: vec![call], ..Reply::default() });
        }
        mock.push(Reply { text: "done".into(), ..Reply::default() });
        let session = admin(&client, &base, &key, post.clone(), "/api/v1/sessions", json!({})).await;
        let path = format!("{base}/api/v1/sessions/{}/messages", session["id"].as_str().unwrap());
        let request =
            client.post(path).bearer_auth(&key).header("accept", "text/event-stream").json(&json!({ "content": "hi" }));
        let (_, total) = timed(request, |data| data.contains("message.delta")).await;
        turns[usize::from(with_tool)].push(total);
    }

    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!("| measurement | p50 | p99 | n |");
    println!("|---|---|---|---|");
    let rows = [
        ("R: direct rmcp tools/call", &direct_tool),
        ("M: direct model request (mock)", &direct_model),
        ("T0: turn, no tool", &turns[0]),
        ("T1: turn with one tool call", &turns[1]),
    ];
    for (name, samples) in rows {
        let (p50, p99) = (percentile(samples, 500), percentile(samples, 990));
        println!("| {name} | {:.2} ms | {:.2} ms | {} |", ms(p50), ms(p99), samples.len());
    }
    let added = |per_mille| {
        ms(percentile(&turns[1], per_mille))
            - ms(percentile(&turns[0], per_mille))
            - ms(percentile(&direct_model, per_mille))
            - ms(percentile(&direct_tool, per_mille))
    };
    println!(
        "| added by Switchboard per tool call (T1 − T0 − M − R) | {:.2} ms | {:.2} ms | |",
        added(500),
        added(990)
    );
    server.stop();
}
