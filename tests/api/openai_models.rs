//! `GET /v1/models/{id}`: every model `GET /v1/models` lists can be retrieved alone, in OpenAI's shape;
//! any other id is OpenAI's `404 model_not_found`, which the SDKs raise as `NotFoundError`.

use serde_json::{Value, json};

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
    let ids: Vec<&str> = listed.iter().map(|model| model["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["switchboard-assistant", "gpt-4o-mini", "anthropic/claude-haiku"], "{list}");

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
    // Percent-encoded, the slash is the same id.
    let encoded = app.get_json("/v1/models/anthropic%2Fclaude-haiku", &tenant.admin_key).await;
    assert_eq!(encoded["id"], "anthropic/claude-haiku", "{encoded}");

    for unknown in ["gpt-5-unheard-of", "anthropic/nothing"] {
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
