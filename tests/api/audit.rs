//! Admin actions leave audit events, which hold no secret and cannot be changed or deleted.

use serde_json::Value;

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn admin_actions_are_audited_without_secrets() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, key) = app.create_key(&tenant, &["chat"]).await;
    let revoke = app
        .delete(&format!("/api/v1/api-keys/{key_id}"), &tenant.admin_key)
        .header("x-request-id", "revoke-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);

    let response = app.get("/api/v1/audit-events", &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains(&key) && !text.contains(&tenant.admin_key), "an audit event holds a secret");
    let body: Value = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> =
        body["audit_events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["api_key.revoked", "api_key.created", "api_key.created", "tenant.created"]);
    let revoked = &body["audit_events"][0];
    assert_eq!(revoked["target_id"], key_id.as_str());
    assert_eq!(revoked["actor_type"], "api_key");
    assert_eq!(revoked["request_id"], "revoke-request-1");
    assert_eq!(body["audit_events"][3]["actor_type"], "operator");
}

#[tokio::test]
async fn the_audit_trail_needs_the_admin_scope_and_shows_only_the_own_tenant() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let (_, chat_key) = app.create_key(&acme, &["chat"]).await;
    assert_error(app.get("/api/v1/audit-events", &chat_key).send().await.unwrap(), 403, "forbidden").await;

    let body: Value = app.get_json("/api/v1/audit-events", &globex.admin_key).await;
    let events = body["audit_events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "globex sees only its own creation and first key: {body}");
}
