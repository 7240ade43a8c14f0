//! Widget tokens: minted by the tenant's backend for one end user, they reach only that user's own
//! conversations, and nothing once expired.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use switchboard::auth::widget::{self, Claims};
use switchboard::ids::{TenantId, UserId};

use crate::helpers::{TestApp, assert_error};

async fn mint(app: &TestApp, admin_key: &str, user: &str) -> Value {
    let response = app
        .post("/api/v1/widget-tokens", admin_key, &json!({ "external_user_id": user, "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_widget_token_reaches_only_its_users_own_conversations_and_expires() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let alice = mint(&app, &tenant.admin_key, "alice").await;
    let bob = mint(&app, &tenant.admin_key, "bob").await;
    let (alice_token, bob_token) = (alice["token"].as_str().unwrap(), bob["token"].as_str().unwrap());

    let session = app.create_session(alice_token).await;
    let events = app.stream_turn(alice_token, &session, "Hello").await;
    assert_eq!(events.last().unwrap().event, "run.completed");
    let run_id = events[0].data["run_id"].as_str().unwrap();
    assert_eq!(app.messages(alice_token, &session).await.len(), 2);
    let listed = app.get_json("/api/v1/sessions", alice_token).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);

    // Bob sees none of it.
    let listed = app.get_json("/api/v1/sessions", bob_token).await;
    assert_eq!(listed["sessions"], json!([]));
    for path in [
        format!("/api/v1/sessions/{session}"),
        format!("/api/v1/sessions/{session}/messages"),
        format!("/api/v1/runs/{run_id}"),
        format!("/api/v1/runs/{run_id}/events"),
    ] {
        let response = app.get(&path, bob_token).send().await.unwrap();
        assert_error(response, 404, "not_found").await;
    }
    let response = app
        .post(&format!("/api/v1/sessions/{session}/messages"), bob_token, &json!({ "content": "hi" }))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "not_found").await;

    // The tenant's key still sees every conversation; the widget token reaches nothing else.
    assert_eq!(
        app.get_json(&format!("/api/v1/sessions/{session}"), &tenant.admin_key).await["user_id"],
        alice["user_id"]
    );
    let forbidden = [
        ("/api/v1/documents", None),
        ("/api/v1/tenant/config", None),
        ("/api/v1/search", Some(json!({ "query": "x" }))),
        ("/api/v1/integration/chat", Some(json!({ "message": "x" }))),
        ("/api/v1/widget-tokens", Some(json!({ "external_user_id": "bob" }))),
    ];
    for (path, body) in forbidden {
        let request = match body {
            None => app.get(path, alice_token),
            Some(body) => app.post(path, alice_token, &body),
        };
        assert_error(request.send().await.unwrap(), 403, "forbidden").await;
    }

    // Expired or forged tokens are refused.
    let tenant_id = TenantId(tenant.id);
    let user_id: UserId = serde_json::from_value(alice["user_id"].clone()).unwrap();
    let expired = widget::sign(
        &app.keys,
        &Claims { tenant_id, user_id, expires_at: Utc::now() - Duration::seconds(1), collections: None },
    );
    assert_error(app.get("/api/v1/sessions", &expired).send().await.unwrap(), 401, "unauthorized").await;
    // The signature's last hex digit changed (to another digit, whatever it was).
    let (kept, last) = alice_token.split_at(alice_token.len() - 1);
    let tampered = format!("{kept}{}", if last == "0" { "1" } else { "0" });
    assert_error(app.get("/api/v1/sessions", &tampered).send().await.unwrap(), 401, "unauthorized").await;

    // Only an admin key mints.
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let response =
        app.post("/api/v1/widget-tokens", &chat_key, &json!({ "external_user_id": "eve" })).send().await.unwrap();
    assert_error(response, 403, "forbidden").await;
}
