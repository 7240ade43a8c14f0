//! The integration door: an external system's messages, one conversation per external user, safe retries.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read_sse};

async fn chat(app: &TestApp, key: &str, body: &Value, idempotency_key: Option<&str>) -> reqwest::Response {
    let mut request = app.post("/api/v1/integration/chat", key, body);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("idempotency-key", idempotency_key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn conversations_are_kept_per_external_user_and_answers_come_back_as_json() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (_, crm_key) = app.create_key(&tenant, &["chat"]).await;
    let document = json!({ "source_path": "ops/keys.md", "content": "# Keys\n\nRotate the master key with switchboard rotate-master-key." });
    assert_eq!(app.post("/api/v1/documents", &tenant.admin_key, &document).send().await.unwrap().status(), 201);
    let first = chat(
        &app,
        &crm_key,
        &json!({ "message": "How do I rotate the master key?", "external_user_id": "cust-42",
                                              "metadata": { "ticket": 981 } }),
        None,
    )
    .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "succeeded");
    assert!(!first["message"]["content"].as_str().unwrap().is_empty());
    assert!(first["message"]["citations"].as_array().is_some_and(|citations| !citations.is_empty()), "{first}");
    assert!(first["usage"]["total_tokens"].as_i64().unwrap() > 0);
    let session = first["session_id"].as_str().unwrap();

    // The same customer's next message joins the same conversation; another customer gets their own.
    let second: Value =
        chat(&app, &crm_key, &json!({ "message": "And how do I revoke a key?", "external_user_id": "cust-42" }), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(second["session_id"], session);
    let other: Value = chat(&app, &crm_key, &json!({ "message": "Hello", "external_user_id": "cust-7" }), None)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(other["session_id"], session);
    let anonymous: Value = chat(&app, &crm_key, &json!({ "message": "Hello" }), None).await.json().await.unwrap();
    assert_ne!(anonymous["session_id"], session);
    assert_ne!(anonymous["session_id"], other["session_id"]);

    let messages = app.messages(&crm_key, session).await;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["metadata"], json!({ "ticket": 981 }));
    let listed = app.get_json("/api/v1/sessions?session_type=integration", &crm_key).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 3);

    // Naming a conversation of another customer, or another tenant's, finds nothing.
    let response =
        chat(&app, &crm_key, &json!({ "message": "hi", "session_id": session, "external_user_id": "cust-7" }), None)
            .await;
    assert_error(response, 404, "not_found").await;
    let globex = app.create_tenant("globex").await;
    let response = chat(&app, &globex.admin_key, &json!({ "message": "hi", "session_id": session }), None).await;
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn a_retried_request_with_the_same_idempotency_key_does_not_run_twice() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let body = json!({ "message": "What does Switchboard do?", "external_user_id": "cust-1" });
    let first: Value = chat(&app, &tenant.admin_key, &body, Some("order-77")).await.json().await.unwrap();
    let retried = chat(&app, &tenant.admin_key, &body, Some("order-77")).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["run_id"], first["run_id"]);
    assert_eq!(retried["message"]["id"], first["message"]["id"]);
    assert_eq!(retried["replayed"], true);
    let messages = app.messages(&tenant.admin_key, first["session_id"].as_str().unwrap()).await;
    assert_eq!(messages.len(), 2, "one question, one answer");

    // A streamed retry replays the same run's events.
    let streamed = read_sse(
        app.post(
            "/api/v1/integration/chat",
            &tenant.admin_key,
            &json!({ "message": "What does Switchboard do?", "external_user_id": "cust-1", "stream": true }),
        )
        .header("idempotency-key", "order-77")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(streamed[0].data["run_id"], first["run_id"]);
    assert_eq!(streamed.last().unwrap().event, "run.completed");

    // Concurrent duplicates: exactly one run.
    let body = json!({ "message": "Tell me about retrieval" });
    let (a, b) = tokio::join!(
        chat(&app, &tenant.admin_key, &body, Some("dup-1")),
        chat(&app, &tenant.admin_key, &body, Some("dup-1"))
    );
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["run_id"], b["run_id"], "{a} {b}");

    let response = chat(&app, &tenant.admin_key, &json!({ "message": "something else" }), Some("order-77")).await;
    assert_error(response, 422, "idempotency_key_reused").await;
}
