//! `GET /metrics`: after a turn, its tokens, cost and time to first token are there under bounded labels
//! (route templates, known models); only the operator reads it; no secret ever appears in it.

use mock_upstream::Reply;
use serde_json::json;

use crate::helpers::{OPERATOR_TOKEN, TestApp, platform_key};

/// The value of the first sample whose line starts with `series` (name and labels, as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|line| line.starts_with(series)).and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics", OPERATOR_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_turn_shows_its_tokens_cost_and_first_token_time_under_bounded_labels() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "metered-test-model" })).await;
    app.mock.push(Reply { text: "Counted.".into(), usage: Some((30, 5)), ..Reply::default() });
    let body = json!({ "model": "metered-test-model", "messages": [{ "role": "user", "content": "Count me" }] });
    let response = app.post("/v1/chat/completions", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // A path nobody serves, with an id in it: it must not become a label.
    let unknown = app.get("/nope/0123456789abcdef", &tenant.admin_key).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let text = scrape(&app).await;
    let model = r#"gen_ai_system="openai",gen_ai_request_model="metered-test-model""#;
    let input = sample(&text, &format!(r#"gen_ai_client_token_usage_sum{{{model},gen_ai_token_type="input"}}"#));
    assert!(input.is_some_and(|tokens| tokens >= 30.0), "input tokens: {input:?}\n{text}");
    let output = sample(&text, &format!(r#"gen_ai_client_token_usage_sum{{{model},gen_ai_token_type="output"}}"#));
    assert!(output.is_some_and(|tokens| tokens >= 5.0), "output tokens: {output:?}");
    // metered-test-model costs $1,000 per million tokens each way: 35 tokens are $0.035.
    let cost = sample(&text, &format!("switchboard_model_cost_usd{{{model}}}"));
    assert!(cost.is_some_and(|usd| usd >= 0.035 - 1e-9), "cost: {cost:?}");
    let first_token = sample(&text, r#"gen_ai_server_time_to_first_token_seconds_count{gen_ai_system="openai"}"#);
    assert!(first_token.is_some_and(|count| count >= 1.0), "time to first token: {first_token:?}");
    let runs = sample(&text, r#"switchboard_runs_total{kind="chat",status="succeeded"}"#);
    assert!(runs.is_some_and(|count| count >= 1.0), "{runs:?}");
    let requests =
        sample(&text, r#"http_server_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#);
    assert!(requests.is_some_and(|count| count >= 1.0), "{requests:?}");
    assert!(text.contains(r#"route="unmatched""#), "an unknown path counts as unmatched");
    assert!(!text.contains("0123456789abcdef"), "no path or id becomes a label");
    assert!(text.contains(r#"switchboard_db_pool_connections{state="idle"}"#), "{text}");
    let waiting = sample(&text, "switchboard_db_pool_waiting ");
    assert!(waiting.is_some_and(|waiting| waiting >= 0.0), "transactions waiting for the pool: {waiting:?}");
    let acquired = sample(&text, "switchboard_db_pool_acquire_seconds_count ");
    assert!(acquired.is_some_and(|count| count >= 1.0), "the pool's waits are timed: {acquired:?}");
    let own_time = sample(&text, r#"switchboard_turn_added_seconds_count{kind="chat"}"#);
    assert!(own_time.is_some_and(|count| count >= 1.0), "the turn's own time: {own_time:?}");
    let queued = sample(&text, "switchboard_agent_runs_queued ");
    assert!(queued.is_some_and(|queued| queued >= 0.0), "the agent-run queue: {queued:?}");
    assert!(!text.contains("tenant=\""), "no tenant label unless the operator asks");

    for secret in [OPERATOR_TOKEN.to_owned(), tenant.admin_key.clone(), platform_key("openai")] {
        assert!(!text.contains(&secret), "a secret in the metrics");
    }
}

#[tokio::test]
async fn only_the_operator_reads_the_metrics() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for token in [tenant.admin_key.as_str(), "nonsense"] {
        let response = app.get("/metrics", token).send().await.unwrap();
        assert_eq!(response.status(), 401, "{token}");
    }
    let anonymous = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// The count of `series` now (0 when it has no sample yet).
fn count(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or(0.0)
}

#[tokio::test]
async fn searches_embeddings_and_tool_calls_are_timed_and_counted_by_mode_purpose_decision_and_outcome() {
    let app = TestApp::spawn().await;
    let server = crate::mcp_server::McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.find_*"] });
    let tenant = crate::tools::tenant_with_tools(&app, "timed", &server, profile).await;
    let series = [
        r#"switchboard_retrieval_duration_seconds_count{mode="full_text"}"#,
        r#"switchboard_retrieval_duration_seconds_count{mode="hybrid"}"#,
        r#"switchboard_embedding_duration_seconds_count{purpose="query"}"#,
        r#"switchboard_tool_call_decisions_total{decision="allow"}"#,
        r#"switchboard_tool_call_decisions_total{decision="deny"}"#,
        r#"switchboard_tool_calls_total{outcome="completed"}"#,
        r#"switchboard_tool_call_duration_seconds_count{outcome="completed"}"#,
    ];
    let before = scrape(&app).await;
    let before: Vec<f64> = series.iter().map(|series| count(&before, series)).collect();

    for mode in ["full_text", "hybrid"] {
        let body = json!({ "query": "rotate the master key", "mode": mode });
        let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{mode}");
    }
    app.mock.push(Reply {
        tool_calls: vec![
            crate::tools::call("crm__find_customers", json!({ "query": "Dupont" })),
            crate::tools::call("crm__delete_customer", json!({ "id": 1 })),
        ],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "Found them.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Who is Dupont?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");

    let after = scrape(&app).await;
    for (series, before) in series.iter().zip(before) {
        assert!(count(&after, series) >= before + 1.0, "{series} did not grow from {before}:\n{after}");
    }
}
