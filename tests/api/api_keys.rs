use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn keys_are_listed_without_their_secret_and_revocation_is_immediate() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, key) = app.create_key(&tenant, &["chat"]).await;

    let listed = app.get("/api/v1/api-keys", &tenant.admin_key).send().await.unwrap();
    let text = listed.text().await.unwrap();
    assert!(!text.contains(&key), "the list shows a secret");
    assert!(!text.contains(&tenant.admin_key), "the list shows a secret");
    let body: Value = serde_json::from_str(&text).unwrap();
    let keys = body["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|key| key.get("key").is_none() && key.get("secret_hash").is_none()));

    // The new key works (it has only `chat`, so admin routes answer 403, not 401).
    let response = app.get("/api/v1/api-keys", &key).send().await.unwrap();
    assert_error(response, 403, "forbidden").await;

    let revoked = app.delete(&format!("/api/v1/api-keys/{key_id}"), &tenant.admin_key).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    let response = app.get("/api/v1/api-keys", &key).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;

    let listed: Value = app.get_json("/api/v1/api-keys", &tenant.admin_key).await;
    let entry = listed["api_keys"].as_array().unwrap().iter().find(|k| k["id"] == key_id.as_str()).unwrap().clone();
    assert!(entry["revoked_at"].is_string());
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, key) = app.create_key(&tenant, &["admin"]).await;
    assert_eq!(app.get("/api/v1/api-keys", &key).send().await.unwrap().status(), 200);

    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&key_id)
        .execute(&app.owner_db)
        .await
        .unwrap();
    let response = app.get("/api/v1/api-keys", &key).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_key_past_its_creation_time_limit_cannot_be_made() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let body = json!({"name": "old", "scopes": ["chat"], "expires_at": "2001-01-01T00:00:00Z"});
    let response = app.post("/api/v1/api-keys", &tenant.admin_key, &body).send().await.unwrap();
    assert_error(response, 422, "invalid_request").await;
    let body = json!({"name": "root", "scopes": ["root"]});
    let response = app.post("/api/v1/api-keys", &tenant.admin_key, &body).send().await.unwrap();
    assert_error(response, 422, "invalid_request").await;
}

#[tokio::test]
async fn a_forged_or_malformed_token_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let mut forged = tenant.admin_key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    for token in [forged.as_str(), "sb_short", "", "Basic abc"] {
        let response = app.get("/api/v1/api-keys", token).send().await.unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
    let response = app.client.get(app.url("/api/v1/api-keys")).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn using_a_key_records_when_it_was_last_used() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, key) = app.create_key(&tenant, &["admin"]).await;
    let before: Value = app.get_json("/api/v1/api-keys", &tenant.admin_key).await;
    let entry =
        |body: &Value| body["api_keys"].as_array().unwrap().iter().find(|k| k["id"] == key_id.as_str()).cloned();
    assert!(entry(&before).unwrap()["last_used_at"].is_null());
    app.get("/api/v1/api-keys", &key).send().await.unwrap();
    let after: Value = app.get_json("/api/v1/api-keys", &tenant.admin_key).await;
    assert!(entry(&after).unwrap()["last_used_at"].is_string());
}

#[tokio::test]
async fn another_tenants_key_cannot_be_seen_or_revoked() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let (acme_key_id, acme_key) = app.create_key(&acme, &["chat"]).await;

    let listed: Value = app.get_json("/api/v1/api-keys", &globex.admin_key).await;
    assert!(listed["api_keys"].as_array().unwrap().iter().all(|k| k["id"] != acme_key_id.as_str()));

    let response = app.delete(&format!("/api/v1/api-keys/{acme_key_id}"), &globex.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    // Still usable: the foreign revocation changed nothing.
    let response = app.get("/api/v1/api-keys", &acme_key).send().await.unwrap();
    assert_error(response, 403, "forbidden").await;
}
