//! `PATCH /api/v1/tenant/config`: settings that cannot be honoured yet are refused, not stored to do
//! nothing.

use serde_json::json;

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn turning_on_multi_agent_runs_is_refused_until_they_exist_and_off_is_accepted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let before = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!(before["multi_agent_enabled"], false);

    let patch = |body: serde_json::Value| app.patch("/api/v1/tenant/config", &tenant.admin_key, &body).send();
    let refused =
        assert_error(patch(json!({ "multi_agent_enabled": true })).await.unwrap(), 400, "unsupported_setting").await;
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("multi_agent_enabled") && message.contains("planned"), "{message}");
    // Refused whole: the other fields of the same request are not applied either.
    let mixed = json!({ "default_model": "gpt-4o-mini", "multi_agent_enabled": true });
    assert_error(patch(mixed).await.unwrap(), 400, "unsupported_setting").await;
    let after = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!((&after["multi_agent_enabled"], &after["default_model"]), (&json!(false), &before["default_model"]));
    let trail = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    assert!(!trail["audit_events"].as_array().unwrap().iter().any(|event| event["action"] == "tenant_config.updated"));

    // `false` is what it is, and still accepted.
    let response = patch(json!({ "multi_agent_enabled": false })).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["multi_agent_enabled"], false);
    assert_error(patch(json!({ "multi_agent_enabled": "yes" })).await.unwrap(), 422, "invalid_request").await;
}
