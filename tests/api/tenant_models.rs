//! Models a tenant declares for its own OpenAI-compatible server: their window trims the prompt sent to
//! the server, their prices cost the usage, and declarations are checked.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

/// Every text the last chat request sent: the system prompt and each message.
fn last_request_texts(app: &TestApp) -> Vec<String> {
    let requests = app.mock.requests();
    let last = requests.iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
    last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_declared_models_window_trims_the_prompt_and_its_prices_cost_the_usage() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    app.configure(&tenant, json!({ "default_provider": "openai_compatible", "default_model": "house-7b" })).await;
    let credential = json!({ "api_key": "tenant-compat-key", "base_url": app.mock_base("openai_compatible") });
    app.put_provider_key(&tenant, "openai_compatible", credential).await;
    let session = app.create_session(key).await;
    let long_question = |number: usize| format!("Question {number}: {}", "tell me about the harvest ".repeat(60));
    for number in 0..4 {
        app.stream_turn(key, &session, &long_question(number)).await;
    }
    // Unknown to the catalog, the model gets a generous guess: the whole conversation is sent.
    assert_eq!(last_request_texts(&app).len(), 1 + 7, "the system prompt, 3 exchanges and the question");

    let declaration = json!({ "context_window": 1024, "max_output_tokens": 256,
                              "input_usd_per_million": "2", "output_usd_per_million": 4 });
    let path = "/api/v1/providers/openai_compatible/models/house-7b";
    let declared = app.client.put(app.url(path)).bearer_auth(key).json(&declaration).send().await.unwrap();
    assert_eq!(declared.status(), 200);
    let declared: Value = declared.json().await.unwrap();
    assert_eq!(
        (declared["context_window"].as_u64(), declared["output_usd_per_million"].as_str()),
        (Some(1024), Some("4"))
    );

    let events = app.stream_turn(key, &session, &long_question(4)).await;
    let sent = last_request_texts(&app);
    assert!(sent.len() < 1 + 9, "the oldest messages were left out: {} sent", sent.len());
    let tokens: usize =
        sent.iter().map(|text| switchboard::tokens::count(text) + switchboard::tokens::PER_MESSAGE_OVERHEAD).sum();
    assert!(tokens + 256 <= 1024, "the prompt ({tokens} tokens) and the answer's room fit the window");
    assert!(sent.last().unwrap().starts_with("Question 4"), "the question is always sent");

    // The usage is priced with the declared prices.
    let usage = events.iter().find(|event| event.event == "usage").unwrap();
    let (input, output) = (usage.data["input_tokens"].as_i64().unwrap(), usage.data["output_tokens"].as_i64().unwrap());
    let expected = rust_decimal::Decimal::from(input * 2 + output * 4) / rust_decimal::Decimal::from(1_000_000);
    let cost: rust_decimal::Decimal = usage.data["cost_usd"].as_str().unwrap().parse().unwrap();
    assert_eq!(cost, expected);

    let listed = app.get_json("/api/v1/providers/openai_compatible/models", key).await;
    assert_eq!(listed["models"].as_array().unwrap().len(), 1);
    let removed = app.delete(path, key).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    assert_error(app.delete(path, key).send().await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn declarations_are_checked() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    let good = json!({ "context_window": 4096, "max_output_tokens": 512, "input_usd_per_million": "0.1", "output_usd_per_million": "0.2" });
    for (path, body) in [
        ("/api/v1/providers/openai/models/gpt-x", good.clone()),
        (
            "/api/v1/providers/openai_compatible/models/m",
            json!({ "context_window": 0, "max_output_tokens": 1, "input_usd_per_million": 1, "output_usd_per_million": 1 }),
        ),
        (
            "/api/v1/providers/openai_compatible/models/m",
            json!({ "context_window": 100, "max_output_tokens": 100, "input_usd_per_million": 1, "output_usd_per_million": 1 }),
        ),
        (
            "/api/v1/providers/openai_compatible/models/m",
            json!({ "context_window": 4096, "max_output_tokens": 512, "input_usd_per_million": "-1", "output_usd_per_million": 1 }),
        ),
        (
            "/api/v1/providers/openai_compatible/models/m",
            json!({ "context_window": 4096, "max_output_tokens": 512, "input_usd_per_million": "cheap", "output_usd_per_million": 1 }),
        ),
    ] {
        let response = app.client.put(app.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
        assert_error(response, 422, "invalid_request").await;
    }
    let unknown_field = json!({ "context_window": 4096, "max_output_tokens": 512, "input_usd_per_million": 1, "output_usd_per_million": 1, "colour": "red" });
    let response = app
        .client
        .put(app.url("/api/v1/providers/openai_compatible/models/m"))
        .bearer_auth(key)
        .json(&unknown_field)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let response = app
        .client
        .put(app.url("/api/v1/providers/openai_compatible/models/m"))
        .bearer_auth(&chat_key)
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "forbidden").await;
}
