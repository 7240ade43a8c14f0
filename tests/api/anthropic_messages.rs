//! The Anthropic-compatible door (`POST /v1/messages`, `POST /v1/messages/count_tokens`): Anthropic's
//! formats exactly (the message, the stream's events in order, errors), over an Anthropic upstream reached
//! with the tenant's own key and over OpenAI's; and the official `anthropic` Python SDK, pinned in
//! tests/anthropic-sdk/requirements.txt, parsing every answer.

use futures::StreamExt as _;
use mock_upstream::{Api, Fault, Reply, ToolCall};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant};

const MODEL: &str = "claude-sonnet-4-5";
const TENANT_KEY: &str = "sk-ant-tenant-own-key";
/// A tool result whose key order and number formatting a JSON round trip would change.
const RESULT: &str = r#"{"zeta": 1, "total": 12345678901234567890123, "price": 21.50}"#;

/// A tenant answering with Claude through its own Anthropic key, whose base URL is the mock.
async fn tenant_on_anthropic(app: &TestApp, slug: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "anthropic", "default_model": MODEL })).await;
    let credential = json!({ "api_key": TENANT_KEY, "base_url": app.mock_base("anthropic") });
    app.put_provider_key(&tenant, "anthropic", credential).await;
    tenant
}

/// A request as Anthropic's SDKs send it: the key in `x-api-key`, the version header.
fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
    app.client.post(app.url(path)).header("x-api-key", key).header("anthropic-version", "2023-06-01").json(body)
}

async fn message(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = post(app, "/v1/messages", key, body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// One SSE event of the door: its name and data.
#[derive(Debug)]
struct Named {
    event: String,
    data: Value,
}

/// Reads a whole stream; every event's name is its data's `type`.
async fn events(response: reqwest::Response) -> Vec<Named> {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.expect("well-formed SSE");
        let data: Value = serde_json::from_str(&event.data).expect("JSON data");
        assert_eq!(data["type"], event.event.as_str(), "{data}");
        events.push(Named { event: event.event, data });
    }
    events
}

async fn streamed(app: &TestApp, key: &str, body: &Value) -> Vec<Named> {
    let mut body = body.clone();
    body["stream"] = json!(true);
    events(post(app, "/v1/messages", key, &body).send().await.unwrap()).await
}

fn names(events: &[Named]) -> Vec<&str> {
    events.iter().map(|event| event.event.as_str()).filter(|name| *name != "ping").collect()
}

fn text_of(events: &[Named]) -> String {
    events
        .iter()
        .filter(|event| event.data.pointer("/delta/type") == Some(&json!("text_delta")))
        .map(|event| event.data["delta"]["text"].as_str().unwrap())
        .collect()
}

/// Asserts Anthropic's error shape and returns the error object.
async fn assert_anthropic_error(response: reqwest::Response, status: u16, kind: &str) -> Value {
    let what = format!("{} {}", response.status(), response.url());
    assert_eq!(response.status(), status, "{what}");
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["request-id"].to_str().unwrap(), request_id, "{what}");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["type"], "error", "{what}: {body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{what}: {body}");
    let mut keys: Vec<&str> = body["error"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["message", "type"], "{what}: {body}");
    assert_eq!(body["error"]["type"], kind, "{what}: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    body["error"].clone()
}

fn hello(text: &str) -> Value {
    json!({ "model": MODEL, "max_tokens": 256, "messages": [{ "role": "user", "content": text }] })
}

fn weather_tool() -> Value {
    json!({ "name": "get_weather", "description": "The weather in a city.",
            "input_schema": { "type": "object", "properties": { "city": { "type": "string" } } } })
}

fn weather_call(city: &str) -> ToolCall {
    ToolCall { id: String::new(), name: "get_weather".into(), arguments: json!({ "city": city }) }
}

#[tokio::test]
async fn a_message_is_answered_in_anthropics_shape_through_the_tenants_own_key() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    app.mock.push(Reply { text: "Hello there".into(), usage: Some((11, 2)), ..Reply::default() });

    let answer = message(&app, &tenant.admin_key, &hello("Say hello")).await;
    assert!(answer["id"].as_str().unwrap().starts_with("msg_"), "{answer}");
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["model"], MODEL);
    assert_eq!(answer["content"], json!([{ "type": "text", "text": "Hello there" }]));
    assert_eq!(answer["stop_reason"], "end_turn");
    assert_eq!(answer["stop_sequence"], Value::Null);
    assert_eq!(
        answer["usage"],
        json!({ "input_tokens": 11, "output_tokens": 2, "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": null })
    );

    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent.api, Api::Anthropic);
    assert_eq!(sent.api_key.as_deref(), Some(TENANT_KEY), "the tenant's own key");
    assert_eq!(sent.body["max_tokens"], 256, "the client's cap");
    assert!(sent.body.get("system").is_none(), "no system prompt added: {}", sent.body);
    assert_eq!(sent.body["messages"], json!([{ "role": "user", "content": "Say hello" }]));

    // Recorded like every /v1 call: a turn of a new integration conversation, with its usage.
    let sessions = app.get_json("/api/v1/sessions?session_type=integration", &tenant.admin_key).await;
    let session = sessions["sessions"][0]["id"].as_str().unwrap();
    let messages = app.messages(&tenant.admin_key, session).await;
    assert_eq!(messages[0]["content"], "Say hello");
    assert_eq!(messages[1]["content"], "Hello there");
    assert_eq!(messages[1]["output_tokens"], 2);

    // A bearer token works as well as `x-api-key`, and `anthropic-version` may be left out.
    app.mock.push(Reply { text: "Again".into(), ..Reply::default() });
    let response = app.post("/v1/messages", &tenant.admin_key, &hello("Again?")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "Again");
}

#[tokio::test]
async fn a_stream_is_anthropics_event_sequence_and_system_blocks_reach_the_model() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    app.mock.push(Reply { text: "Streamed answer here".into(), usage: Some((7, 3)), ..Reply::default() });
    let mut body = hello("Stream please");
    body["system"] = json!([{ "type": "text", "text": "Be brief." }, { "type": "text", "text": "Be kind." }]);

    let events = streamed(&app, &tenant.admin_key, &body).await;
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &events[0].data["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"), "{start}");
    assert_eq!((&start["role"], &start["content"], &start["model"]), (&json!("assistant"), &json!([]), &json!(MODEL)));
    assert_eq!(start["stop_reason"], Value::Null);
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0, "an estimate until the provider's count");
    assert_eq!(events[1].data["content_block"], json!({ "type": "text", "text": "" }));
    assert_eq!(text_of(&events), "Streamed answer here");
    let delta = events.iter().find(|event| event.event == "message_delta").unwrap();
    assert_eq!(delta.data["delta"], json!({ "stop_reason": "end_turn", "stop_sequence": null }));
    assert_eq!(delta.data["usage"]["output_tokens"], 3);
    assert_eq!(delta.data["usage"]["input_tokens"], 7, "the provider's count");

    let sent = app.mock.requests().pop().unwrap().body;
    assert_eq!(sent["system"], "Be brief.\nBe kind.", "{sent}");
}

#[tokio::test]
async fn a_tool_use_round_trip_keeps_the_calls_and_results_as_sent() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    app.mock.push(Reply { tool_calls: vec![weather_call("Lyon")], ..Reply::default() });
    let question = json!({ "role": "user", "content": "Weather in Lyon?" });
    let first = json!({ "model": MODEL, "max_tokens": 256, "messages": [question], "tools": [weather_tool()],
                        "tool_choice": { "type": "auto" } });

    let asked = message(&app, &tenant.admin_key, &first).await;
    assert_eq!(asked["stop_reason"], "tool_use", "{asked}");
    let call = &asked["content"][0];
    assert_eq!(call["type"], "tool_use", "{asked}");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({ "city": "Lyon" }));
    let call_id = call["id"].as_str().unwrap();
    assert!(call_id.starts_with("toolu_"), "{call_id}");
    let sent = app.mock.requests().pop().unwrap().body;
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], json!({ "type": "auto" }));

    // The client runs the tool and sends its result back, the assistant's content as it came.
    app.mock.push(Reply { text: "It is sunny in Lyon.".into(), ..Reply::default() });
    let result = json!({ "type": "tool_result", "tool_use_id": call_id, "content": RESULT });
    let second = json!({ "model": MODEL, "max_tokens": 256, "tools": [weather_tool()], "messages": [
        question, { "role": "assistant", "content": asked["content"] }, { "role": "user", "content": [result] } ] });
    let answered = message(&app, &tenant.admin_key, &second).await;
    assert_eq!(answered["content"], json!([{ "type": "text", "text": "It is sunny in Lyon." }]));
    assert_eq!(answered["stop_reason"], "end_turn");
    let sent = app.mock.requests().pop().unwrap().body;
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["content"][0]["input"], json!({ "city": "Lyon" }));
    assert_eq!(messages[1]["content"][0]["id"], call_id);
    let returned = &messages[2]["content"][0];
    assert_eq!(returned["tool_use_id"], call_id);
    assert_eq!(returned["content"], RESULT, "the result's text, not a re-serialised value");
    assert_eq!(returned["is_error"], false);

    // Streamed, the call is a tool_use block whose input comes in an input_json_delta.
    app.mock.push(Reply { tool_calls: vec![weather_call("Nantes")], ..Reply::default() });
    let events = streamed(&app, &tenant.admin_key, &first).await;
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let block = &events[1].data;
    assert_eq!(block["index"], 0);
    assert_eq!(block["content_block"]["type"], "tool_use");
    assert_eq!(block["content_block"]["name"], "get_weather");
    assert_eq!(block["content_block"]["input"], json!({}));
    assert_eq!(events[2].data["delta"]["type"], "input_json_delta");
    let input: Value = serde_json::from_str(events[2].data["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input, json!({ "city": "Nantes" }));
    assert_eq!(events[4].data["delta"]["stop_reason"], "tool_use");

    // A failed tool says so to the model.
    app.mock.push(Reply { text: "Sorry.".into(), ..Reply::default() });
    let failed = json!({ "type": "tool_result", "tool_use_id": call_id, "is_error": true,
                         "content": [{ "type": "text", "text": "timeout" }] });
    let third = json!({ "model": MODEL, "max_tokens": 256, "tools": [weather_tool()], "messages": [
        question, { "role": "assistant", "content": asked["content"] }, { "role": "user", "content": [failed] } ] });
    message(&app, &tenant.admin_key, &third).await;
    let sent = app.mock.requests().pop().unwrap().body;
    assert_eq!(sent["messages"][2]["content"][0]["is_error"], true);
    assert_eq!(sent["messages"][2]["content"][0]["content"], "timeout");
}

#[tokio::test]
async fn an_answer_cut_at_max_tokens_says_so_streamed_or_not() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    let long = (1..=20).map(|n| format!("w{n}")).collect::<Vec<_>>().join(" ");
    app.mock.push(Reply { text: long.clone(), limit: Some(5), ..Reply::default() });
    let answer = message(&app, &tenant.admin_key, &hello("Tell me everything")).await;
    assert_eq!(answer["stop_reason"], "max_tokens", "{answer}");

    app.mock.push(Reply { text: long, limit: Some(5), ..Reply::default() });
    let events = streamed(&app, &tenant.admin_key, &hello("Tell me everything")).await;
    let delta = events.iter().find(|event| event.event == "message_delta").unwrap();
    assert_eq!(delta.data["delta"]["stop_reason"], "max_tokens");
    assert_eq!(text_of(&events), "w1 w2 w3 w4 w5");
}

#[tokio::test]
async fn bad_requests_get_anthropics_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    let with = |field: &str, value: Value| {
        let mut body = hello("hi");
        body[field] = value;
        body
    };
    let without_max_tokens = json!({ "model": MODEL, "messages": [{ "role": "user", "content": "hi" }] });
    let cached_block = json!({ "model": MODEL, "max_tokens": 5, "messages": [{ "role": "user", "content": [
        { "type": "text", "text": "hi", "cache_control": { "type": "ephemeral" } }] }] });
    let image = json!({ "model": MODEL, "max_tokens": 5, "messages": [{ "role": "user", "content": [
        { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "AA==" } }] }] });
    for (body, named) in [
        (without_max_tokens, "max_tokens"),
        (with("frobnicate", json!(1)), "`frobnicate`"),
        (with("thinking", json!({ "type": "enabled", "budget_tokens": 1024 })), "`thinking`"),
        (with("top_k", json!(40)), "`top_k`"),
        (with("metadata", json!({ "user_id": "u-1", "plan": "gold" })), "`metadata.plan`"),
        (cached_block, "`messages[0].content[0].cache_control`"),
        (image, "`image` blocks"),
        (with("max_tokens", json!("lots")), "max_tokens"),
        (json!({ "model": MODEL, "max_tokens": 5 }), "messages"),
    ] {
        let response = post(&app, "/v1/messages", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error = assert_anthropic_error(response, 400, "invalid_request_error").await;
        assert!(error["message"].as_str().unwrap().contains(named), "{body}: {error}");
    }
    let response = post(&app, "/v1/messages", &tenant.admin_key, &hello("hi"))
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .send()
        .await
        .unwrap();
    let error = assert_anthropic_error(response, 400, "invalid_request_error").await;
    assert!(error["message"].as_str().unwrap().contains("anthropic-beta"), "{error}");
    assert!(app.mock.requests().is_empty(), "no model was called");
}

#[tokio::test]
async fn keys_are_checked_and_every_error_under_the_door_has_anthropics_shape() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    for key in ["sb_not_a_key", ""] {
        let response = post(&app, "/v1/messages", key, &hello("hi")).send().await.unwrap();
        assert_anthropic_error(response, 401, "authentication_error").await;
    }
    let response = app.client.post(app.url("/v1/messages")).json(&hello("hi")).send().await.unwrap();
    let error = assert_anthropic_error(response, 401, "authentication_error").await;
    assert!(error["message"].as_str().unwrap().contains("x-api-key"), "{error}");
    let response = post(&app, "/v1/messages/count_tokens", "sb_wrong", &hello("hi")).send().await.unwrap();
    assert_anthropic_error(response, 401, "authentication_error").await;

    // A key without the chat scope may not.
    let (_, runs_key) = app.create_key(&tenant, &["runs"]).await;
    let response = post(&app, "/v1/messages", &runs_key, &hello("hi")).send().await.unwrap();
    assert_anthropic_error(response, 403, "permission_error").await;

    // A model the tenant cannot use.
    let mut unknown = hello("hi");
    unknown["model"] = json!("no-such-model-anywhere");
    let response = post(&app, "/v1/messages", &tenant.admin_key, &unknown).send().await.unwrap();
    let error = assert_anthropic_error(response, 404, "not_found_error").await;
    assert!(error["message"].as_str().unwrap().contains("no-such-model-anywhere"), "{error}");

    // The framework's own errors: a wrong method, a route of the Messages API not served here, no JSON.
    let response = app.client.get(app.url("/v1/messages")).header("x-api-key", &tenant.admin_key).send().await.unwrap();
    assert_anthropic_error(response, 405, "invalid_request_error").await;
    let response = post(&app, "/v1/messages/batches", &tenant.admin_key, &json!({})).send().await.unwrap();
    let error = assert_anthropic_error(response, 404, "not_found_error").await;
    assert!(error["message"].as_str().unwrap().contains("POST /v1/messages/batches"), "{error}");
    let response = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", &tenant.admin_key)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_anthropic_error(response, 400, "invalid_request_error").await;

    // The rest of `/v1` keeps OpenAI's shape.
    let response = app.post("/v1/nope", &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].get("param").is_some() && body.get("type").is_none(), "{body}");
    assert!(app.mock.requests().is_empty());
}

#[tokio::test]
async fn failures_before_the_first_text_are_http_errors_and_after_it_an_error_event() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    // The provider refuses the request: no retry, a 502 before anything was streamed.
    app.mock.push(Reply { fault: Some(Fault::Status { status: 400, retry_after: None }), ..Reply::default() });
    let mut body = hello("hi");
    body["stream"] = json!(true);
    let response = post(&app, "/v1/messages", &tenant.admin_key, &body).send().await.unwrap();
    assert_anthropic_error(response, 502, "api_error").await;

    // Cut after two pieces: the stream has begun, so the failure is its last event.
    app.mock.push(Reply { text: "one two three four".into(), fault: Some(Fault::CutAfter(2)), ..Reply::default() });
    let events = streamed(&app, &tenant.admin_key, &hello("hi")).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "error", "{:?}", names(&events));
    assert_eq!(last.data["error"]["type"], "api_error");
    assert!(!names(&events).contains(&"message_stop"), "a failed answer never looks complete");
    assert_eq!(text_of(&events), "one two");
}

#[tokio::test]
async fn limits_and_budgets_answer_in_anthropics_shape() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    let limits = json!({ "tenant": { "requests_per_minute": 1 } });
    let response = app.client.put(app.url("/api/v1/rate-limits")).bearer_auth(&tenant.admin_key).json(&limits);
    assert_eq!(response.send().await.unwrap().status(), 200);
    app.mock.push(Reply { text: "Once".into(), ..Reply::default() });
    let response = post(&app, "/v1/messages", &tenant.admin_key, &hello("hi")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["anthropic-ratelimit-requests-limit"], "1");
    assert_eq!(response.headers()["anthropic-ratelimit-requests-remaining"], "0");
    let reset = response.headers()["anthropic-ratelimit-requests-reset"].to_str().unwrap().to_owned();
    assert!(chrono::DateTime::parse_from_rfc3339(&reset).is_ok(), "{reset}");
    let refused = post(&app, "/v1/messages", &tenant.admin_key, &hello("hi")).send().await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.headers()["anthropic-ratelimit-requests-remaining"], "0");
    assert_anthropic_error(refused, 429, "rate_limit_error").await;

    // A budget with no room: the status Anthropic uses for billing.
    let metered = app.create_tenant("metered").await;
    let settings =
        json!({ "default_provider": "openai", "default_model": "metered-test-model", "monthly_budget_usd": 0 });
    app.configure(&metered, settings).await;
    let body =
        json!({ "model": "metered-test-model", "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] });
    let refused = post(&app, "/v1/messages", &metered.admin_key, &body).send().await.unwrap();
    assert_anthropic_error(refused, 402, "billing_error").await;
    assert_eq!(app.mock.requests().len(), 1, "only the first tenant's one call");
}

#[tokio::test]
async fn an_openai_upstream_answers_the_same_conversation() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    app.mock.push(Reply { tool_calls: vec![weather_call("Lyon")], usage: Some((20, 5)), ..Reply::default() });
    let question = json!({ "role": "user", "content": "Weather in Lyon?" });
    let first = json!({ "model": "gpt-4o-mini", "max_tokens": 100, "system": "Be brief.", "messages": [question],
                        "tools": [weather_tool()], "tool_choice": { "type": "any", "disable_parallel_tool_use": true },
                        "temperature": 0.25, "top_p": 0.5, "stop_sequences": ["END"],
                        "metadata": { "user_id": "customer-7" } });

    let asked = message(&app, &tenant.admin_key, &first).await;
    assert_eq!(asked["stop_reason"], "tool_use", "{asked}");
    assert_eq!(asked["content"][0]["input"], json!({ "city": "Lyon" }));
    assert_eq!(asked["usage"]["input_tokens"], 20);
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent.api, Api::OpenAi);
    let body = &sent.body;
    assert_eq!(body["messages"][0], json!({ "role": "system", "content": "Be brief." }));
    assert_eq!(body["max_completion_tokens"].as_u64().or(body["max_tokens"].as_u64()), Some(100), "{body}");
    assert_eq!((&body["temperature"], &body["top_p"]), (&json!(0.25), &json!(0.5)));
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(body["user"], "customer-7");
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");

    app.mock.push(Reply { text: "Sunny.".into(), ..Reply::default() });
    let call_id = asked["content"][0]["id"].as_str().unwrap();
    let result = json!({ "type": "tool_result", "tool_use_id": call_id, "content": RESULT });
    let second = json!({ "model": "gpt-4o-mini", "max_tokens": 100, "tools": [weather_tool()], "messages": [
        question, { "role": "assistant", "content": asked["content"] }, { "role": "user", "content": [result] } ] });
    let events = streamed(&app, &tenant.admin_key, &second).await;
    assert_eq!(text_of(&events), "Sunny.");
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    let sent = app.mock.requests().pop().unwrap().body;
    let tool = sent["messages"].as_array().unwrap().iter().find(|message| message["role"] == "tool").unwrap();
    assert_eq!(tool["tool_call_id"], call_id);
    assert_eq!(tool["content"], RESULT);

    // An option the tenant's provider cannot honour is refused under this door's name for it.
    let gemini = app.create_tenant("gemini").await;
    app.configure(&gemini, json!({ "default_provider": "gemini", "default_model": "gemini-2.5-flash" })).await;
    let mut body = hello("hi");
    body["model"] = json!("gemini-2.5-flash");
    body["metadata"] = json!({ "user_id": "customer-7" });
    let response = post(&app, "/v1/messages", &gemini.admin_key, &body).send().await.unwrap();
    let error = assert_anthropic_error(response, 400, "invalid_request_error").await;
    assert!(error["message"].as_str().unwrap().contains("`metadata.user_id`"), "{error}");
}

#[tokio::test]
async fn count_tokens_counts_the_prompt_without_calling_a_model() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    let count = |body: Value| {
        let request = post(&app, "/v1/messages/count_tokens", &tenant.admin_key, &body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let counted: Value = response.json().await.unwrap();
            counted["input_tokens"].as_u64().unwrap()
        }
    };
    let question = "What is the weather like in Lyon today, and should I take an umbrella?";
    let bare = count(json!({ "model": MODEL, "messages": [{ "role": "user", "content": question }] })).await;
    let question_tokens = u64::try_from(switchboard::tokens::count(question)).unwrap();
    assert!(bare >= question_tokens && bare <= question_tokens + 8, "{bare} for {question_tokens}");
    let with_system = count(json!({ "model": MODEL, "system": "You are a meteorologist.",
                                    "messages": [{ "role": "user", "content": question }] }))
    .await;
    assert!(with_system > bare);
    let with_tools = count(json!({ "model": MODEL, "system": "You are a meteorologist.", "tools": [weather_tool()],
                                   "tool_choice": { "type": "auto" },
                                   "messages": [{ "role": "user", "content": question }] }))
    .await;
    assert!(with_tools > with_system);

    let response =
        post(&app, "/v1/messages/count_tokens", &tenant.admin_key, &hello("generation options are not counted"))
            .send()
            .await
            .unwrap();
    let error = assert_anthropic_error(response, 400, "invalid_request_error").await;
    assert!(error["message"].as_str().unwrap().contains("`max_tokens`"), "{error}");
    assert!(app.mock.requests().is_empty(), "no model was called");
}

#[tokio::test]
async fn the_official_sdk_parses_every_answer_and_error() {
    crate::openai_compat::sdk_python().await;
    let app = TestApp::spawn().await;
    let tenant = tenant_on_anthropic(&app, "acme").await;
    app.mock.push(Reply { text: "Hello there".into(), usage: Some((11, 2)), ..Reply::default() });
    app.mock.push(Reply { text: "Streamed answer here".into(), usage: Some((7, 3)), ..Reply::default() });
    app.mock.push(Reply { tool_calls: vec![weather_call("Lyon")], ..Reply::default() });
    app.mock.push(Reply { text: "It is sunny in Lyon.".into(), ..Reply::default() });
    app.mock.push(Reply { tool_calls: vec![weather_call("Nantes")], ..Reply::default() });

    let out = crate::openai_compat::run_sdk_script("anthropic-sdk/check.py", &app.url(""), &tenant.admin_key).await;

    assert_eq!(out["plain"]["type"], "message");
    assert_eq!(out["plain"]["text"], "Hello there");
    assert_eq!(out["plain"]["stop_reason"], "end_turn");
    assert_eq!(out["plain"]["usage"]["input_tokens"], 11);
    assert_eq!(out["plain"]["usage"]["output_tokens"], 2);

    assert_eq!(out["streamed"]["pieces"], json!(["Streamed", " answer", " here"]));
    assert_eq!(out["streamed"]["text"], "Streamed answer here");
    assert_eq!(out["streamed"]["stop_reason"], "end_turn");
    assert_eq!(out["streamed"]["usage"]["output_tokens"], 3);
    assert_eq!(out["streamed"]["usage"]["input_tokens"], 7);

    assert_eq!(out["tool"]["stop_reason"], "tool_use");
    assert_eq!(out["tool"]["name"], "get_weather");
    assert_eq!(out["tool"]["input"], json!({ "city": "Lyon" }));
    assert_eq!(out["tool"]["answer"], "It is sunny in Lyon.");
    assert_eq!(out["streamed_tool"]["stop_reason"], "tool_use");
    assert_eq!(out["streamed_tool"]["calls"], json!([{ "name": "get_weather", "input": { "city": "Nantes" } }]));

    assert!(out["count"].as_u64().unwrap() > 0, "{}", out["count"]);
    assert_eq!(out["wrong_key"]["status"], 401);
    assert_eq!(out["wrong_key"]["type"], "authentication_error");
    assert_eq!(out["bad_request"]["status"], 400);
    assert_eq!(out["bad_request"]["type"], "invalid_request_error");
    assert!(out["bad_request"]["message"].as_str().unwrap().contains("frobnicate"), "{}", out["bad_request"]);

    // What the model was sent: the client's system prompt and the tool result, as given.
    let requests = app.mock.requests();
    assert_eq!(requests.len(), 5, "count_tokens and the refused requests called no model");
    assert!(requests.iter().all(|request| request.api_key.as_deref() == Some(TENANT_KEY)));
    assert_eq!(requests[0].body["system"], "Be brief.");
    let returned = &requests[3].body["messages"][2]["content"][0];
    assert_eq!(returned["type"], "tool_result");
    assert_eq!(
        serde_json::from_str::<Value>(returned["content"].as_str().unwrap()).unwrap(),
        json!({ "sky": "sunny" })
    );
}
