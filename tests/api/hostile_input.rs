//! Input PostgreSQL cannot store is refused at the edge with a 422 and a stable code, on every route:
//! NUL characters in any text, an amount past its column, a workspace that does not exist; and a body
//! that is JSON but not an object (which serde would read into a struct by position).

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, TestApp, assert_error};

#[tokio::test]
async fn a_nul_character_anywhere_is_a_422_never_a_500() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    let session = app.create_session(key).await;
    let workspace = app.create_workspace(key, "shop").await;
    let nul = "before\u{0}after";
    let bodies: Vec<(String, Value)> = vec![
        ("/api/v1/api-keys".to_owned(), json!({ "name": nul, "scopes": ["chat"] })),
        ("/api/v1/sessions".to_owned(), json!({ "title": nul })),
        (format!("/api/v1/sessions/{session}/messages"), json!({ "content": nul })),
        ("/api/v1/search".to_owned(), json!({ "query": nul })),
        ("/api/v1/workspaces".to_owned(), json!({ "name": nul })),
        ("/api/v1/integration/chat".to_owned(), json!({ "message": nul })),
        ("/api/v1/integration/chat".to_owned(), json!({ "message": "hi", "external_user_id": nul })),
        ("/api/v1/integration/chat".to_owned(), json!({ "message": "hi", "metadata": { nul: 1 } })),
        ("/api/v1/widget-tokens".to_owned(), json!({ "external_user_id": nul })),
        ("/api/v1/policy-profiles".to_owned(), json!({ "name": nul, "document": {} })),
    ];
    for (path, body) in bodies {
        let response = app.post(&path, key, &body).send().await.unwrap();
        assert_error(response, 422, "invalid_text").await;
    }
    let tenant = json!({ "name": nul, "slug": "nul" });
    let response = app.post("/api/v1/tenants", OPERATOR_TOKEN, &tenant).send().await.unwrap();
    assert_error(response, 422, "invalid_text").await;
    let file = format!("/api/v1/workspaces/{workspace}/files/notes.md");
    let response = app.client.put(app.url(&file)).bearer_auth(key).json(&json!({ "content": nul })).send();
    assert_error(response.await.unwrap(), 422, "invalid_text").await;
    let response = app.get("/api/v1/sessions?title=a%00b", key).send().await.unwrap();
    assert_error(response, 422, "invalid_text").await;

    // The OpenAI-compatible door refuses it in OpenAI's shape.
    let request = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": nul }] });
    let response = app.post("/v1/chat/completions", key, &request).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_text", "{body}");

    // A backslash followed by `u0000` is ordinary text.
    let response = app.post("/api/v1/sessions", key, &json!({ "title": "a \\u0000 b" })).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let messages = app.messages(key, &session).await;
    assert!(messages.is_empty(), "nothing was stored by the refused turn");
}

#[tokio::test]
async fn a_budget_past_its_column_and_a_workspace_that_does_not_exist_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    let patch = |budget: f64| {
        app.client
            .patch(app.url("/api/v1/tenant/config"))
            .bearer_auth(key)
            .json(&json!({ "monthly_budget_usd": budget }))
    };
    assert_error(patch(99_999_999.999_999_9).send().await.unwrap(), 422, "invalid_request").await;
    assert_eq!(patch(99_999_999.99).send().await.unwrap().status(), 200);

    let session = json!({ "session_type": "workspace", "workspace_id": uuid::Uuid::now_v7() });
    assert_error(app.post("/api/v1/sessions", key, &session).send().await.unwrap(), 422, "invalid_request").await;
    let other = app.create_tenant("globex").await;
    let theirs = app.create_workspace(&other.admin_key, "theirs").await;
    let session = json!({ "session_type": "workspace", "workspace_id": theirs });
    assert_error(app.post("/api/v1/sessions", key, &session).send().await.unwrap(), 422, "invalid_request").await;
}

#[tokio::test]
async fn a_body_that_is_json_but_not_an_object_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    for body in ["[]", "[null, null]", "null", "42", "\"title\"", "true"] {
        let response = app
            .client
            .post(app.url("/api/v1/sessions"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, 422, "invalid_request").await;
    }
    let sessions = app.get_json("/api/v1/sessions", key).await;
    assert_eq!(sessions["sessions"], json!([]), "no session was made from an array: {sessions}");
    // Malformed JSON is still told apart from JSON of the wrong shape.
    let response = app
        .client
        .post(app.url("/api/v1/sessions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body("[1,")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "malformed_json").await;
}
