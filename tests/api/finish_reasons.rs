//! Answers are never cut by a cap nobody asked for, and an answer that was cut says so on every door:
//! the provider's finish reason is recorded on the message and the run and passed through.

use mock_upstream::{Api, Reply};
use serde_json::{Value, json};

use futures::StreamExt as _;

use crate::helpers::{TestApp, TestTenant, streamed_text};

/// A reply of `words` words: "w1 w2 w3 …".
fn words(count: usize) -> String {
    (1..=count).map(|n| format!("w{n}")).collect::<Vec<_>>().join(" ")
}

async fn tenant_on(app: &TestApp, slug: &str, provider: &str, model: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": provider, "default_model": model })).await;
    if provider == "openai_compatible" {
        let credential = json!({ "api_key": "tenant-compat-key", "base_url": app.mock_base(provider) });
        app.put_provider_key(&tenant, provider, credential).await;
    }
    tenant
}

async fn completion(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = app.post("/v1/chat/completions", key, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The `chat.completion.chunk`s of a streamed completion, up to `[DONE]`.
async fn completion_chunks(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut chunks = Vec::new();
    while let Some(event) = events.next().await {
        let data = event.expect("well-formed SSE").data;
        if data == "[DONE]" {
            return chunks;
        }
        chunks.push(serde_json::from_str(&data).expect("a JSON chunk"));
    }
    panic!("the stream ended without [DONE]");
}

#[tokio::test]
async fn a_long_answer_is_not_cut_by_a_cap_nobody_asked_for() {
    let app = TestApp::spawn().await;
    let long = words(2_000);
    for (provider, api, model) in [
        ("openai", Api::OpenAi, "gpt-4o-mini"),
        ("openai_compatible", Api::OpenAi, "llama-3"),
        ("gemini", Api::Gemini, "gemini-2.5-flash"),
        ("anthropic", Api::Anthropic, "claude-sonnet-4-5"),
    ] {
        let tenant = tenant_on(&app, &provider.replace('_', "-"), provider, model).await;
        let session = app.create_session(&tenant.admin_key).await;
        app.mock.push(Reply { text: long.clone(), ..Reply::default() });
        let events = app.stream_turn(&tenant.admin_key, &session, "Tell me everything").await;
        assert_eq!(streamed_text(&events), long, "{provider}: the whole answer");
        let completed = events.last().unwrap();
        assert_eq!(completed.event, "run.completed", "{provider}");
        assert_eq!(completed.data["finish_reason"], "stop", "{provider}");

        let request = app.mock.requests().pop().unwrap();
        assert_eq!(request.api, api);
        let body = &request.body;
        match provider {
            // Anthropic requires a cap: the model's own ceiling, never a smaller default.
            "anthropic" => assert_eq!(body["max_tokens"], 64_000, "{body}"),
            "gemini" => assert!(body.pointer("/generationConfig/maxOutputTokens").is_none(), "{body}"),
            _ => assert!(body.get("max_tokens").is_none() && body.get("max_completion_tokens").is_none(), "{body}"),
        }
        let messages = app.messages(&tenant.admin_key, &session).await;
        assert_eq!(messages[1]["finish_reason"], "stop", "{provider}");
    }
}

#[tokio::test]
async fn an_answer_cut_at_the_models_limit_says_so_on_every_door() {
    let app = TestApp::spawn().await;
    for (provider, model) in
        [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-pro")]
    {
        let tenant = tenant_on(&app, provider, provider, model).await;
        let key = &tenant.admin_key;

        // The chat API: the stream's end, the stored message and the run.
        let session = app.create_session(key).await;
        app.mock.push(Reply { text: words(20), limit: Some(5), ..Reply::default() });
        let events = app.stream_turn(key, &session, "Go on").await;
        assert_eq!(streamed_text(&events), words(5), "{provider}");
        let completed = events.last().unwrap();
        assert_eq!((completed.event.as_str(), &completed.data["finish_reason"]), ("run.completed", &json!("length")));
        let messages = app.messages(key, &session).await;
        assert_eq!(messages[1]["finish_reason"], "length", "{provider}: stored as cut, not as complete");
        let run_id = completed.data["run_id"].as_str().unwrap();
        let run = app.get_json(&format!("/api/v1/runs/{run_id}"), key).await;
        assert_eq!(run["finish_reason"], "length", "{provider}");

        // The integration API.
        app.mock.push(Reply { text: words(20), limit: Some(5), ..Reply::default() });
        let response = app.post("/api/v1/integration/chat", key, &json!({ "message": "Go on" })).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["message"]["finish_reason"], "length", "{provider}: {answer}");

        // The OpenAI-compatible door, whole and streamed.
        app.mock.push(Reply { text: words(20), limit: Some(5), ..Reply::default() });
        let request = json!({ "model": model, "messages": [{ "role": "user", "content": "Go on" }] });
        let whole = completion(&app, key, &request).await;
        assert_eq!(whole["choices"][0]["finish_reason"], "length", "{provider}: {whole}");
        assert_eq!(whole["choices"][0]["message"]["content"], words(5));

        app.mock.push(Reply { text: words(20), limit: Some(5), ..Reply::default() });
        let streamed = json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "Go on" }] });
        let response = app.post("/v1/chat/completions", key, &streamed).send().await.unwrap();
        let chunks = completion_chunks(response).await;
        let reasons: Vec<&Value> = chunks
            .iter()
            .map(|chunk| &chunk["choices"][0]["finish_reason"])
            .filter(|reason| !reason.is_null())
            .collect();
        assert_eq!(reasons, [&json!("length")], "{provider}: one finish, and it says cut");
    }
}

#[tokio::test]
async fn a_cap_the_caller_asks_for_reaches_the_model_in_its_own_field_and_cuts_the_answer() {
    let app = TestApp::spawn().await;
    for (provider, model, field) in [
        ("openai", "gpt-4o-mini", "/max_completion_tokens"),
        ("openai_compatible", "llama-3", "/max_tokens"),
        ("anthropic", "claude-sonnet-4-5", "/max_tokens"),
        ("gemini", "gemini-2.5-flash", "/generationConfig/maxOutputTokens"),
    ] {
        let tenant = tenant_on(&app, &format!("cap-{}", provider.replace('_', "-")), provider, model).await;
        app.mock.push(Reply { text: words(10), ..Reply::default() });
        let request =
            json!({ "model": model, "max_tokens": 4, "messages": [{ "role": "user", "content": "Count to ten" }] });
        let answer = completion(&app, &tenant.admin_key, &request).await;
        assert_eq!(answer["choices"][0]["message"]["content"], words(4), "{provider}");
        assert_eq!(answer["choices"][0]["finish_reason"], "length", "{provider}");
        let sent = app.mock.requests().pop().unwrap().body;
        assert_eq!(sent.pointer(field), Some(&json!(4)), "{provider}: {sent}");
    }
}
