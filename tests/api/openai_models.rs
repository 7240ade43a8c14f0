//! `GET /v1/models/{id}`: every model `GET /v1/models` lists can be retrieved alone, in OpenAI's shape;
//! any other id is OpenAI's `404 model_not_found`, which the SDKs raise as `NotFoundError`.

use serde_json::{Value, json};

use mock_upstream::{Api, Reply};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_listed_model_is_retrieved_alone_and_an_unknown_one_is_model_not_found() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    // A `provider/model` name has a slash: it is still one id, as clients send it in the path.
    app.configure(&tenant, json!({ "default_model": "gpt-4o-mini", "fallback_model": "anthropic/claude-haiku" })).await;

    let list = app.get_json("/v1/models", &tenant.admin_key).await;
    assert_eq!(list["object"], "list", "{list}");
    let listed = list["data"].as_array().unwrap();
    let owner = |id: &str| listed.iter().find(|model| model["id"] == id).map(|model| model["owned_by"].clone());
    // The assistant, the offline model, the tenant's chosen models and the catalog's models of every
    // provider with a key (the test platform has OpenAI, Anthropic and Gemini keys), each with its owner.
    assert_eq!(owner("switchboard-assistant"), Some(json!("switchboard")), "{list}");
    assert_eq!(owner("switchboard-extractive"), Some(json!("local")), "{list}");
    assert_eq!(owner("gpt-4o-mini"), Some(json!("openai")), "{list}");
    assert_eq!(owner("anthropic/claude-haiku"), Some(json!("anthropic")), "{list}");
    assert_eq!(owner("claude-sonnet-4-5"), Some(json!("anthropic")), "{list}");
    assert_eq!(owner("gemini-2.5-flash"), Some(json!("gemini")), "{list}");
    let ids: Vec<&str> = listed.iter().map(|model| model["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "each model once: {ids:?}");

    for model in listed {
        let id = model["id"].as_str().unwrap();
        let response = app.get(&format!("/v1/models/{id}"), &tenant.admin_key).send().await.unwrap();
        assert_eq!(response.status(), 200, "{id}");
        let retrieved: Value = response.json().await.unwrap();
        assert_eq!(&retrieved, model, "{id}");
        let keys: Vec<&String> = retrieved.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{retrieved}");
        assert_eq!(retrieved["object"], "model");
        assert!(retrieved["created"].is_i64() && retrieved["owned_by"].is_string(), "{retrieved}");
    }
    // A listed model named with its provider is the same model; percent-encoded, the slash is the same id.
    let qualified = app.get_json("/v1/models/anthropic%2Fclaude-sonnet-4-5", &tenant.admin_key).await;
    assert_eq!(qualified["id"], "anthropic/claude-sonnet-4-5", "{qualified}");
    assert_eq!(qualified["owned_by"], "anthropic", "{qualified}");

    for unknown in ["gpt-5-unheard-of", "anthropic/nothing", "gemini/gpt-4o-mini"] {
        let response = app.get(&format!("/v1/models/{unknown}"), &tenant.admin_key).send().await.unwrap();
        assert_eq!(response.status(), 404, "{unknown}");
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        let error = &body["error"];
        assert!(error["message"].as_str().is_some_and(|message| message.contains(unknown)), "{body}");
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert_eq!(error["param"], "model", "{body}");
        assert_eq!(error["code"], "model_not_found", "{body}");
    }

    // Another tenant's models are not this one's: its default is unknown here.
    let other = app.create_tenant("other").await;
    app.configure(&other, json!({ "default_model": "other-only-model" })).await;
    let response = app.get("/v1/models/other-only-model", &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 404);

    let response = app.get("/v1/models/gpt-4o-mini", "sb_nonsense").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    let (_, admin_only) = app.create_key(&tenant, &["admin"]).await;
    let response = app.get("/v1/models/gpt-4o-mini", &admin_only).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

/// `model` routes the request: `provider/model` to that provider, a catalog name to its provider, each
/// with the key the tenant or the platform has for it; an unknown model is refused before anything is
/// recorded.
#[tokio::test]
async fn the_model_name_chooses_the_provider_and_an_unknown_one_is_refused_before_anything_is_kept() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let ask = |model: &str| json!({ "model": model, "messages": [{ "role": "user", "content": "Hello" }] });

    for (model, api, upstream_model) in [
        ("anthropic/claude-sonnet-4-5", Api::Anthropic, "claude-sonnet-4-5"),
        ("gemini-2.5-flash", Api::Gemini, "gemini-2.5-flash"),
        ("openai/gpt-4o-mini", Api::OpenAi, "gpt-4o-mini"),
    ] {
        app.mock.push(Reply { text: format!("{model} says hi"), ..Reply::default() });
        let response = app.post("/v1/chat/completions", &tenant.admin_key, &ask(model)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{model}: {}", response.text().await.unwrap());
        let completion: Value = response.json().await.unwrap();
        assert_eq!(completion["model"], model, "{completion}");
        assert_eq!(completion["choices"][0]["message"]["content"], format!("{model} says hi"), "{completion}");
        let sent = app.mock.requests().pop().unwrap();
        assert_eq!(sent.api, api, "{model} went to {:?}", sent.api);
        let named = sent.body["model"].as_str().map(str::to_owned).unwrap_or(sent.path.clone());
        assert!(named.contains(upstream_model), "{model}: {named}");
    }

    let conversations_before = app.get_json("/api/v1/sessions", &tenant.admin_key).await;
    let requests_before = app.mock.requests().len();
    let response = app.post("/v1/chat/completions", &tenant.admin_key, &ask("gpt-5-unheard-of")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
    assert_eq!(body["error"]["param"], "model", "{body}");
    assert_eq!(app.mock.requests().len(), requests_before, "no provider was asked");
    let conversations_after = app.get_json("/api/v1/sessions", &tenant.admin_key).await;
    assert_eq!(conversations_after, conversations_before, "no conversation was kept for a refused model");

    // The chat API routes its `model` the same way.
    let session = app.create_session(&tenant.admin_key).await;
    let turn = json!({ "content": "Hello", "model": "nowhere/nothing" });
    let response =
        app.post(&format!("/api/v1/sessions/{session}/messages"), &tenant.admin_key, &turn).send().await.unwrap();
    let error = crate::helpers::assert_error(response, 404, "model_not_found").await;
    assert!(error.to_string().contains("nowhere/nothing"), "{error}");
}
