//! `POST /v1/embeddings`: OpenAI's shape on the deployment's embedding model (the local one, offline) or a
//! named remote one; usage and cost recorded for the key; budgets and the request's bounds refuse before
//! any provider is asked; and the official SDK reads every answer.

use base64::Engine as _;
use mock_upstream::Api;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TestApp, shared_local_embedder};
use crate::openai_compat::{run_sdk_script, sdk_python};

#[tokio::test]
async fn texts_are_embedded_by_the_local_model_as_floats_or_base64_and_recorded() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let texts = ["bees make honey", "hives in spring"];
    let expected = shared_local_embedder().embed(&texts.map(str::to_owned)).await.unwrap();

    let body = json!({ "model": "all-minilm-l6-v2", "input": texts });
    let answer: Value =
        app.post("/v1/embeddings", &tenant.admin_key, &body).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["object"], "list", "{answer}");
    assert_eq!(answer["model"], "all-minilm-l6-v2");
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!((item["object"].as_str(), item["index"].as_u64()), (Some("embedding"), Some(index as u64)));
        let vector: Vec<f32> = serde_json::from_value(item["embedding"].clone()).unwrap();
        assert_eq!(vector, expected[index], "the same vectors retrieval stores");
    }
    let tokens = answer["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens > 0 && answer["usage"]["total_tokens"] == tokens, "{answer}");

    let body = json!({ "model": "local", "input": texts[0], "encoding_format": "base64" });
    let answer: Value =
        app.post("/v1/embeddings", &tenant.admin_key, &body).send().await.unwrap().json().await.unwrap();
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(answer["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let decoded: Vec<f32> = bytes.chunks(4).map(|four| f32::from_le_bytes(four.try_into().unwrap())).collect();
    assert_eq!(decoded, expected[0]);

    // Token ids (cl100k_base) are the text they spell.
    let encode = |text: &str| switchboard::tokens::encoder().encode_ordinary(text);
    let ids = json!([encode("bees make honey"), encode("C")]);
    let answer: Value = app
        .post("/v1/embeddings", &tenant.admin_key, &json!({ "model": "local", "input": ids }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vector: Vec<f32> = serde_json::from_value(answer["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(vector, expected[0], "{answer}");

    let usage = app.get_json("/api/v1/usage?group_by=model", &tenant.admin_key).await;
    let local = usage["groups"].as_array().unwrap().iter().find(|group| group["group"] == "local/all-minilm-l6-v2");
    let local = local.unwrap_or_else(|| panic!("embedding usage is reported: {usage}"));
    assert_eq!(local["cost_usd"], "0", "the local model costs nothing: {local}");
}

#[tokio::test]
async fn a_named_remote_model_is_asked_with_its_dimensions_and_its_cost_recorded() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let body = json!({ "model": "text-embedding-3-small", "input": ["rotate the master key"], "dimensions": 256 });
    let response = app.post("/v1/embeddings", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let vector: Vec<f32> = serde_json::from_value(answer["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(vector, mock_upstream::embedding::embed("rotate the master key", 256));
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent.api, Api::OpenAi);
    assert_eq!(
        (sent.body["model"].as_str(), sent.body["dimensions"].as_u64()),
        (Some("text-embedding-3-small"), Some(256))
    );

    let tokens = u64::from(mock_upstream::embedding::tokens(["rotate the master key"]));
    assert_eq!(answer["usage"]["prompt_tokens"], tokens, "the provider's own count: {answer}");
    let usage = app.get_json("/api/v1/usage?group_by=model", &tenant.admin_key).await;
    let group =
        usage["groups"].as_array().unwrap().iter().find(|group| group["group"] == "openai/text-embedding-3-small");
    let group = group.unwrap_or_else(|| panic!("{usage}"));
    // text-embedding-3-small: $0.02 per million input tokens.
    let cost = Decimal::from(tokens) * Decimal::new(2, 2) / Decimal::from(1_000_000);
    assert_eq!(group["cost_usd"].as_str().unwrap().parse::<Decimal>().unwrap(), cost, "{group}");
    assert_eq!(group["input_tokens"], tokens, "{group}");
}

#[tokio::test]
async fn bad_requests_unknown_models_and_spent_budgets_are_refused_before_any_provider_is_asked() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let embed = |body: Value| app.post("/v1/embeddings", &tenant.admin_key, &body).send();

    for (body, param) in [
        (json!({ "model": "local", "input": [] }), "input"),
        (json!({ "model": "local", "input": [""] }), "input"),
        (json!({ "model": "local", "input": [{ "text": "x" }] }), "input"),
        (json!({ "model": "local", "input": "x", "encoding_format": "int8" }), "encoding_format"),
        (json!({ "model": "local", "input": "x", "user": "someone" }), "user"),
    ] {
        let response = embed(body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    }
    let refused = embed(json!({ "model": "local", "input": "x", "dimensions": 128 })).await.unwrap();
    assert_eq!(refused.status(), 400, "the local model has 384 dimensions");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["param"], "dimensions", "{error}");

    let unknown = embed(json!({ "model": "no-such-embedder", "input": "x" })).await.unwrap();
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(
        (error["error"]["code"].as_str(), error["error"]["param"].as_str()),
        (Some("model_not_found"), Some("model"))
    );

    app.configure(&tenant, json!({ "monthly_budget_usd": 0 })).await;
    let spent = embed(json!({ "model": "text-embedding-3-small", "input": "x" })).await.unwrap();
    assert_eq!(spent.status(), 402);
    let error: Value = spent.json().await.unwrap();
    assert_eq!(error["error"]["code"], "budget_exhausted", "{error}");
    assert!(app.mock.requests().is_empty(), "no provider was asked");
}

#[tokio::test]
async fn the_official_sdk_reads_embeddings_in_both_encodings_and_the_errors() {
    sdk_python().await;
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let parsed = run_sdk_script("openai-sdk/embeddings.py", &app.url("/v1"), &tenant.admin_key).await;
    let default = &parsed["default"];
    assert_eq!(default["count"], 2, "{parsed}");
    assert_eq!(default["indexes"], json!([0, 1]));
    assert_eq!(default["dimensions"], json!([384, 384]));
    assert!(default["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{parsed}");
    assert_eq!(default["first"], parsed["float_first"], "base64 (the SDK's default) and floats agree");
    assert_eq!(parsed["shortened"]["dimensions"], 256, "{parsed}");
    assert_eq!(parsed["unknown"], json!({ "status": 404, "code": "model_not_found", "param": "model" }));
    assert_eq!(parsed["empty"], json!({ "status": 400, "param": "input" }));
}
