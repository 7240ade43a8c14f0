//! Policy profiles per API key and per end-user group: the most specific profile assigned is the one in
//! force (key, else group, else the tenant's active one), whole; every tool call records which profile,
//! which version and where it came from. A real MCP server on 127.0.0.1 and the mock upstream scripting the
//! model's tool calls, through the chat API, the integration API and a widget token.

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, SseEvent, TestApp, TestTenant, assert_error};
use crate::mcp_server::McpTestServer;
use crate::tools::{call, tenant_with_tools};

/// Creates a policy profile; returns its id.
async fn profile(app: &TestApp, tenant: &TestTenant, name: &str, document: Value) -> String {
    let mut body = document;
    body["name"] = json!(name);
    let response = app.post("/api/v1/policy-profiles", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// Creates a `chat` key naming `profile` (or none); returns the key as created and its token.
async fn key_with(app: &TestApp, tenant: &TestTenant, profile: Option<&str>) -> (Value, String) {
    let body = json!({ "name": "support bot", "scopes": ["chat"], "policy_profile_id": profile });
    let response = app.post("/api/v1/api-keys", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    let token = created["key"].as_str().unwrap().to_owned();
    (created, token)
}

/// The model asks to delete customer 7, then answers.
fn model_deletes(app: &TestApp) {
    app.mock.push(Reply { tool_calls: vec![call("crm__delete_customer", json!({ "id": 7 }))], ..Reply::default() });
    app.mock.push(Reply { text: "Done what I could.".into(), ..Reply::default() });
}

/// The policy's decision on the one tool call of `run_id`, as the audit trail records it.
async fn decision_of(app: &TestApp, tenant: &TestTenant, run_id: &str) -> Value {
    let audit = app.get_json("/api/v1/audit-events?limit=1000", &tenant.admin_key).await;
    let decided: Vec<&Value> = audit["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "tool_call.decided" && event["details"]["run_id"] == run_id)
        .collect();
    assert_eq!(decided.len(), 1, "{audit}");
    decided[0]["details"].clone()
}

fn named<'a>(events: &'a [SseEvent], name: &str) -> Vec<&'a SseEvent> {
    events.iter().filter(|event| event.event == name).collect()
}

/// One integration-API turn for `external_user_id`; returns its run's id once it has finished.
async fn integration_turn(app: &TestApp, key: &str, external_user_id: &str) -> String {
    let body = json!({ "message": "Delete customer 7", "external_user_id": external_user_id });
    let response = app.post("/api/v1/integration/chat", key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "succeeded", "{answer}");
    answer["run_id"].as_str().unwrap().to_owned()
}

async fn put_group(app: &TestApp, tenant: &TestTenant, group: &str, profile: &str) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/policy-groups/{group}")))
        .bearer_auth(&tenant.admin_key)
        .json(&json!({ "policy_profile_id": profile }))
        .send()
        .await
        .unwrap()
}

async fn put_user_group(app: &TestApp, tenant: &TestTenant, user: &str, group: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/end-users/{user}/policy-group")))
        .bearer_auth(&tenant.admin_key)
        .json(&json!({ "group": group }))
        .send()
        .await
        .unwrap()
}

/// The tenant's active profile (its `default`, allowing every `crm` tool) and its id.
async fn tenant_allowing_everything(app: &TestApp, server: &McpTestServer) -> (TestTenant, String) {
    let tenant = tenant_with_tools(app, "acme", server, json!({ "tool_allowlist": ["crm.*"] })).await;
    let config = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    let default = config["active_policy_profile_id"].as_str().unwrap().to_owned();
    (tenant, default)
}

#[tokio::test]
async fn a_keys_own_profile_replaces_the_tenants_and_each_call_records_it() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let (tenant, default) = tenant_allowing_everything(&app, &server).await;
    let lookups = profile(&app, &tenant, "lookups only", json!({ "tool_allowlist": ["crm.find_*"] })).await;
    let (key, token) = key_with(&app, &tenant, Some(&lookups)).await;
    assert_eq!(key["policy_profile_id"], lookups.as_str());
    let listed = app.get_json("/api/v1/api-keys", &tenant.admin_key).await;
    let listed_key = listed["api_keys"].as_array().unwrap().iter().find(|listed| listed["id"] == key["id"]).unwrap();
    assert_eq!(listed_key["policy_profile_id"], lookups.as_str());

    // The tenant's profile would allow the deletion; the key's own denies it, and never offers it.
    model_deletes(&app);
    let session = app.create_session(&token).await;
    let events = app.stream_turn(&token, &session, "Delete customer 7").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let denied = named(&events, "tool_call.denied");
    assert_eq!(denied.len(), 1, "{events:#?}");
    assert!(denied[0].data["reason"].as_str().unwrap().contains("allow-list"), "{}", denied[0].data);
    assert_eq!(server.calls(), 0);
    let requested = named(&events, "tool_call.requested");
    assert_eq!(requested[0].data["policy"], json!({ "profile_id": lookups, "version": 1, "source": "key" }));
    let first_request = app.mock.requests().into_iter().find(|r| r.path.ends_with("/chat/completions")).unwrap();
    let offered: Vec<&str> = first_request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"crm__find_customers") && !offered.contains(&"crm__delete_customer"), "{offered:?}");
    let run_id = requested[0].data["run_id"].as_str().unwrap();
    let decided = decision_of(&app, &tenant, run_id).await;
    assert_eq!(decided["decision"], "deny");
    assert_eq!(decided["policy_profile_id"], lookups.as_str());
    assert_eq!((decided["policy_version"].clone(), decided["policy_source"].clone()), (json!(1), json!("key")));

    // The tenant's own admin key names no profile: the tenant's active one applies, and allows it.
    model_deletes(&app);
    let admin_session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &admin_session, "Delete customer 7").await;
    assert_eq!(named(&events, "tool_call.completed").len(), 1, "{events:#?}");
    assert_eq!(server.calls(), 1);
    let requested = named(&events, "tool_call.requested");
    assert_eq!(requested[0].data["policy"], json!({ "profile_id": default, "version": 1, "source": "tenant" }));

    // A new version of the key's profile is recorded as such.
    let response = app
        .client
        .put(app.url(&format!("/api/v1/policy-profiles/{lookups}")))
        .bearer_auth(&tenant.admin_key)
        .json(&json!({ "name": "lookups only", "tool_allowlist": ["crm.find_customers"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    model_deletes(&app);
    let events = app.stream_turn(&token, &session, "Delete customer 7, please").await;
    let requested = named(&events, "tool_call.requested");
    assert_eq!(requested[0].data["policy"], json!({ "profile_id": lookups, "version": 2, "source": "key" }));
    assert_eq!(named(&events, "tool_call.denied").len(), 1);

    // Back to inheriting: `null` removes the key's profile, and the tenant's applies to it again.
    let id = key["id"].as_str().unwrap();
    let response =
        app.patch(&format!("/api/v1/api-keys/{id}"), &tenant.admin_key, &json!({ "policy_profile_id": null })).send();
    let changed: Value = response.await.unwrap().json().await.unwrap();
    assert_eq!(changed["policy_profile_id"], Value::Null, "{changed}");
    model_deletes(&app);
    let events = app.stream_turn(&token, &session, "Now delete customer 7").await;
    assert_eq!(named(&events, "tool_call.completed").len(), 1, "{events:#?}");
    assert_eq!(named(&events, "tool_call.requested")[0].data["policy"]["source"], "tenant");
    assert_eq!(server.calls(), 2);

    // The changes are in the audit trail; nonsense is refused by name.
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let updated = audit["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "api_key.updated" && event["target_id"] == id)
        .unwrap();
    assert_eq!(updated["details"]["previous_policy_profile_id"], lookups.as_str(), "{updated}");
    let response =
        app.patch(&format!("/api/v1/api-keys/{id}"), &tenant.admin_key, &json!({ "policy_profile_id": 5 })).send();
    assert_error(response.await.unwrap(), 422, "invalid_request").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let response =
        app.patch(&format!("/api/v1/api-keys/{id}"), &tenant.admin_key, &json!({ "policy_profile_id": unknown }));
    assert_error(response.send().await.unwrap(), 422, "unknown_policy_profile").await;
}

#[tokio::test]
async fn a_groups_profile_applies_to_its_end_users_on_every_door_and_a_keys_profile_beats_it() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let (tenant, default) = tenant_allowing_everything(&app, &server).await;
    let lookups = profile(&app, &tenant, "lookups only", json!({ "tool_allowlist": ["crm.find_*"] })).await;
    let operations = profile(&app, &tenant, "operations", json!({ "tool_allowlist": ["crm.*"] })).await;
    let (_, crm_key) = key_with(&app, &tenant, None).await;
    let (_, ops_key) = key_with(&app, &tenant, Some(&operations)).await;

    // A group: its end users are named as the tenant's systems name them, before they ever chat.
    let response = put_group(&app, &tenant, "support", &lookups).await;
    assert_eq!(response.status(), 200);
    let group: Value = response.json().await.unwrap();
    assert_eq!(
        (group["group"].as_str(), group["policy_profile_id"].as_str()),
        (Some("support"), Some(lookups.as_str()))
    );
    let response = put_user_group(&app, &tenant, "cust-1", json!("support")).await;
    assert_eq!(response.status(), 200);
    let set: Value = response.json().await.unwrap();
    assert_eq!(set, json!({ "external_user_id": "cust-1", "policy_group": "support" }));
    let read = app.get_json("/api/v1/end-users/cust-1/policy-group", &tenant.admin_key).await;
    assert_eq!(read, set, "the group reads back");
    let response = app.get("/api/v1/end-users/nobody/policy-group", &tenant.admin_key).send().await.unwrap();
    assert_error(response, 404, "end_user_not_found").await;
    let listed = app.get_json("/api/v1/policy-groups", &tenant.admin_key).await;
    assert_eq!(listed["policy_groups"].as_array().unwrap().len(), 1, "{listed}");

    // The integration API: cust-1 is in the group, whose profile denies the deletion.
    model_deletes(&app);
    let run = integration_turn(&app, &crm_key, "cust-1").await;
    let decided = decision_of(&app, &tenant, &run).await;
    assert_eq!(decided["decision"], "deny", "{decided}");
    assert_eq!(decided["policy_profile_id"], lookups.as_str());
    assert_eq!(decided["policy_source"], "group");
    assert_eq!(server.calls(), 0);

    // cust-2 is in no group: the tenant's profile.
    model_deletes(&app);
    let run = integration_turn(&app, &crm_key, "cust-2").await;
    let decided = decision_of(&app, &tenant, &run).await;
    assert_eq!((decided["decision"].as_str(), decided["policy_source"].as_str()), (Some("allow"), Some("tenant")));
    assert_eq!(decided["policy_profile_id"], default.as_str());
    assert_eq!(server.calls(), 1);

    // A key naming its own profile beats the group's.
    model_deletes(&app);
    let run = integration_turn(&app, &ops_key, "cust-1").await;
    let decided = decision_of(&app, &tenant, &run).await;
    assert_eq!((decided["decision"].as_str(), decided["policy_source"].as_str()), (Some("allow"), Some("key")));
    assert_eq!(decided["policy_profile_id"], operations.as_str());
    assert_eq!(server.calls(), 2);

    // The widget: a token for cust-1 carries no key, so the group's profile is the one.
    let response = app
        .post("/api/v1/widget-tokens", &tenant.admin_key, &json!({ "external_user_id": "cust-1", "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let minted: Value = response.json().await.unwrap();
    let widget = minted["token"].as_str().unwrap();
    model_deletes(&app);
    let session = app.create_session(widget).await;
    let events = app.stream_turn(widget, &session, "Delete customer 7").await;
    assert_eq!(named(&events, "tool_call.denied").len(), 1, "{events:#?}");
    assert_eq!(named(&events, "tool_call.requested")[0].data["policy"]["source"], "group");
    assert_eq!(server.calls(), 2);

    // The group loses its profile: its users inherit the tenant's again.
    let response = app.delete("/api/v1/policy-groups/support", &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = app.delete("/api/v1/policy-groups/support", &tenant.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    model_deletes(&app);
    let run = integration_turn(&app, &crm_key, "cust-1").await;
    let decided = decision_of(&app, &tenant, &run).await;
    assert_eq!((decided["decision"].as_str(), decided["policy_source"].as_str()), (Some("allow"), Some("tenant")));
    assert_eq!(server.calls(), 3);

    // Mapped again, then the user leaves the group: the tenant's.
    assert_eq!(put_group(&app, &tenant, "support", &lookups).await.status(), 200);
    assert_eq!(put_user_group(&app, &tenant, "cust-1", Value::Null).await.status(), 200);
    model_deletes(&app);
    let run = integration_turn(&app, &crm_key, "cust-1").await;
    assert_eq!(decision_of(&app, &tenant, &run).await["policy_source"], "tenant");

    // Names are checked.
    for bad in ["Support", "", "a b", "-x", &"g".repeat(65)] {
        let response = put_user_group(&app, &tenant, "cust-1", json!(bad)).await;
        assert_error(response, 422, "invalid_request").await;
    }
    let response = put_group(&app, &tenant, "Not%20Valid", &lookups).await;
    assert_error(response, 422, "invalid_request").await;
    let response = put_user_group(&app, &tenant, "erased-0123", json!("support")).await;
    assert_error(response, 422, "invalid_request").await;
    let response = app
        .client
        .put(app.url("/api/v1/policy-groups/support"))
        .bearer_auth(&tenant.admin_key)
        .json(&json!({ "policy_profile_id": lookups, "inherit": true }))
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "invalid_request").await;
    // Only admins assign profiles.
    let response =
        put_group(&app, &TestTenant { id: tenant.id, admin_key: crm_key.clone() }, "support", &lookups).await;
    assert_error(response, 403, "forbidden").await;
}

#[tokio::test]
async fn a_profile_in_use_cannot_be_deleted_until_nothing_names_it() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let lookups = profile(&app, &tenant, "lookups only", json!({ "tool_allowlist": ["crm.find_*"] })).await;
    let (key, _) = key_with(&app, &tenant, Some(&lookups)).await;
    assert_eq!(put_group(&app, &tenant, "support", &lookups).await.status(), 200);

    let response = app.delete(&format!("/api/v1/policy-profiles/{lookups}"), &tenant.admin_key).send().await.unwrap();
    let refused = assert_error(response, 409, "policy_profile_in_use").await;
    assert_eq!(refused["error"]["details"]["api_key_ids"], json!([key["id"]]), "{refused}");
    assert_eq!(refused["error"]["details"]["policy_groups"], json!(["support"]), "{refused}");

    // The group goes; the key still names it.
    assert_eq!(app.delete("/api/v1/policy-groups/support", &tenant.admin_key).send().await.unwrap().status(), 204);
    let response = app.delete(&format!("/api/v1/policy-profiles/{lookups}"), &tenant.admin_key).send().await.unwrap();
    let refused = assert_error(response, 409, "policy_profile_in_use").await;
    assert_eq!(refused["error"]["details"]["policy_groups"], json!([]), "{refused}");

    // A revoked key never acts again: it does not hold the profile.
    let id = key["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/api-keys/{id}"), &tenant.admin_key).send().await.unwrap().status(), 204);
    let response = app.delete(&format!("/api/v1/policy-profiles/{lookups}"), &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = app.get(&format!("/api/v1/policy-profiles/{lookups}"), &tenant.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn another_tenant_can_neither_assign_nor_see_a_tenants_profiles_and_groups() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let lookups = profile(&app, &tenant, "lookups only", json!({ "tool_allowlist": ["crm.find_*"] })).await;
    assert_eq!(put_group(&app, &tenant, "support", &lookups).await.status(), 200);
    let other = app.create_tenant("other").await;

    // Naming acme's profile: refused as a profile that does not exist, on every path.
    let response = put_group(&app, &other, "support", &lookups).await;
    assert_error(response, 422, "unknown_policy_profile").await;
    let body = json!({ "name": "borrowed", "scopes": ["chat"], "policy_profile_id": lookups });
    let response = app.post("/api/v1/api-keys", &other.admin_key, &body).send().await.unwrap();
    assert_error(response, 422, "unknown_policy_profile").await;
    let (other_key, _) = key_with(&app, &other, None).await;
    let id = other_key["id"].as_str().unwrap();
    let response =
        app.patch(&format!("/api/v1/api-keys/{id}"), &other.admin_key, &json!({ "policy_profile_id": lookups })).send();
    assert_error(response.await.unwrap(), 422, "unknown_policy_profile").await;

    // acme's groups are not there for it, nor can it remove them; acme's are intact.
    let listed = app.get_json("/api/v1/policy-groups", &other.admin_key).await;
    assert_eq!(listed["policy_groups"], json!([]));
    let response = app.delete("/api/v1/policy-groups/support", &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let listed = app.get_json("/api/v1/policy-groups", &tenant.admin_key).await;
    assert_eq!(listed["policy_groups"][0]["policy_profile_id"], lookups.as_str());

    // Nor can it delete the profile acme's group uses (it does not exist for it).
    let response = app.delete(&format!("/api/v1/policy-profiles/{lookups}"), &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn a_call_waiting_for_approval_shows_the_profile_it_was_decided_under() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let (tenant, _) = tenant_allowing_everything(&app, &server).await;
    let careful = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let careful = profile(&app, &tenant, "careful", careful).await;
    let (_, token) = key_with(&app, &tenant, Some(&careful)).await;
    model_deletes(&app);
    let session = app.create_session(&token).await;
    let events = app.stream_turn(&token, &session, "Delete customer 7").await;
    assert_eq!(events.last().unwrap().event, "run.awaiting_approval", "{events:#?}");
    let waiting = named(&events, "tool_call.awaiting_approval");
    let call_id = waiting[0].data["tool_call_id"].as_str().unwrap();
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/approve"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let approved: Value = response.json().await.unwrap();
    assert_eq!(approved["policy_profile_id"], careful.as_str(), "{approved}");
    assert_eq!((approved["policy_version"].clone(), approved["policy_source"].clone()), (json!(1), json!("key")));
}

#[tokio::test]
async fn a_tenant_whose_keys_and_groups_name_profiles_is_still_deleted_whole() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let lookups = profile(&app, &tenant, "lookups only", json!({ "tool_allowlist": ["crm.find_*"] })).await;
    key_with(&app, &tenant, Some(&lookups)).await;
    assert_eq!(put_group(&app, &tenant, "support", &lookups).await.status(), 200);
    assert_eq!(put_user_group(&app, &tenant, "cust-1", json!("support")).await.status(), 200);
    app.configure(&tenant, json!({ "active_policy_profile_id": lookups })).await;

    let count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT count(*) FROM policy_groups WHERE tenant_id = $1) \
                  + (SELECT count(*) FROM policy_profiles WHERE tenant_id = $1) \
                  + (SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND policy_profile_id IS NOT NULL)",
        )
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap()
    };
    assert_eq!(count().await, 3, "a group, a profile and a key naming it");

    let url = app.url(&format!("/api/v1/tenants/{}", tenant.id));
    let suspend = app.client.patch(&url).bearer_auth(OPERATOR_TOKEN).json(&json!({ "status": "suspended" }));
    assert_eq!(suspend.send().await.unwrap().status(), 200);
    let deleted = app.client.delete(format!("{url}?confirm=acme")).bearer_auth(OPERATOR_TOKEN).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(count().await, 0);
}
