//! Tenants' own system prompt templates (`/api/v1/prompt-templates`): versioned, checked at save with the
//! line of what is wrong, put in force and rolled back, previewed, audited, used by every turn and
//! recorded on its run (and on feedback about its answer), and invisible to other tenants.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};

/// The system prompt of the last chat completion the mock received.
fn last_system_prompt(app: &TestApp) -> String {
    let request = app
        .mock
        .requests()
        .into_iter()
        .rev()
        .find(|request| request.path.ends_with("/chat/completions"))
        .expect("a chat completion");
    let first = &request.body["messages"][0];
    assert_eq!(first["role"], "system", "{}", request.body);
    first["content"].as_str().unwrap().to_owned()
}

/// A tenant whose turns go to the mock's OpenAI.
async fn tenant(app: &TestApp, slug: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    tenant
}

async fn save(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post("/api/v1/prompt-templates", key, body).send().await.unwrap()
}

async fn saved(app: &TestApp, tenant: &TestTenant, body: &Value) -> Value {
    let response = save(app, &tenant.admin_key, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn activate(app: &TestApp, key: &str, version: Value) -> reqwest::Response {
    let path = app.url("/api/v1/prompt-templates/active");
    app.client.put(path).bearer_auth(key).json(&json!({ "version": version })).send().await.unwrap()
}

async fn preview(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post("/api/v1/prompt-templates/preview", key, body).send().await.unwrap()
}

/// A turn in a new conversation; returns its run as `GET /runs/{id}` shows it, and its answer.
async fn turn(app: &TestApp, key: &str, question: &str) -> (Value, Value) {
    let session = app.create_session(key).await;
    let events = app.stream_turn(key, &session, question).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let run_id = events[0].data["run_id"].as_str().unwrap().to_owned();
    let run = app.get_json(&format!("/api/v1/runs/{run_id}"), key).await;
    let answer = app.messages(key, &session).await[1].clone();
    (run, answer)
}

fn recorded(run: &Value) -> (Value, Value) {
    (run["prompt_template"].clone(), run["prompt_version"].clone())
}

const V1: &str = "V1 for {{ tenant_name }}.\n{{ policy_summary }}";
const V2: &str = "V2 for {{ tenant_name }} on {{ today }}.\n\
{% if business_context %}About: {{ business_context }}\n{% endif %}\
{% for citation in citations %}[{{ loop.index }}] {{ citation.title }}\n{% endfor %}\
{% for tool in tools %}Tool {{ tool.name }}: {{ tool.description }}\n{% endfor %}\
User: {{ end_user.id if end_user else 'nobody' }}";

#[tokio::test]
async fn versions_are_kept_put_in_force_and_rolled_back_and_every_run_records_the_one_it_used() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "hivewise").await;
    let key = &tenant.admin_key;
    let profile = json!({ "industry": "Beekeeping supplies" });
    let response = app.client.put(app.url("/api/v1/tenant/profile")).bearer_auth(key).json(&profile).send().await;
    assert_eq!(response.unwrap().status(), 200);

    // Nothing saved: the built-in default is in force, and runs record its id.
    let listed = app.get_json("/api/v1/prompt-templates", key).await;
    assert_eq!(listed["versions"], json!([]));
    assert_eq!((listed["active"]["template"].as_str(), &listed["active"]["version"]), (Some("default"), &Value::Null));
    let default_id = listed["active"]["default_id"].as_str().unwrap().to_owned();
    assert!(default_id.starts_with("system.md.j2@"), "{listed}");
    let (run, _) = turn(&app, key, "Hello?").await;
    assert_eq!(recorded(&run), (json!(default_id), Value::Null));
    assert!(last_system_prompt(&app).starts_with("You are the assistant of Tenant hivewise"));

    // Version 1, in force at once: the turn's system prompt is its rendering, and the run says so.
    let first = saved(&app, &tenant, &json!({ "body": V1, "note": " first " })).await;
    assert_eq!((first["name"].as_str(), first["version"].as_i64()), (Some("system"), Some(1)));
    assert_eq!((first["note"].as_str(), first["active"].as_bool()), (Some("first"), Some(true)));
    assert_eq!(first["body"], V1);
    let (run, _) = turn(&app, key, "Hello?").await;
    assert_eq!(last_system_prompt(&app), "V1 for Tenant hivewise.\nNo policy profile is active: no tools may be used.");
    assert_eq!(recorded(&run), (json!("tenant"), json!(1)));

    // Version 2 uses the profile, the passages, the tools and the end user.
    let second = saved(&app, &tenant, &json!({ "name": "system", "body": V2 })).await;
    assert_eq!((second["version"].as_i64(), second["active"].as_bool()), (Some(2), Some(true)));
    let (run, answer) = turn(&app, key, "Hello?").await;
    let prompt = last_system_prompt(&app);
    assert!(prompt.starts_with("V2 for Tenant hivewise on 20"), "{prompt}");
    assert!(prompt.contains("About: Industry: Beekeeping supplies"), "{prompt}");
    assert!(prompt.ends_with("User: nobody"), "{prompt}");
    assert_eq!(recorded(&run), (json!("tenant"), json!(2)));
    // Feedback on the answer carries the run's template and version.
    let path = format!("/api/v1/messages/{}/feedback", answer["id"].as_str().unwrap());
    let feedback: Value = app.post(&path, key, &json!({ "rating": "up" })).send().await.unwrap().json().await.unwrap();
    assert_eq!((&feedback["prompt_template"], &feedback["prompt_version"]), (&json!("tenant"), &json!(2)));
    // An end user's turn (the integration API) names them.
    let chat = json!({ "message": "hello", "external_user_id": "customer-7" });
    let response = app.post("/api/v1/integration/chat", key, &chat).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(last_system_prompt(&app).ends_with("User: customer-7"), "{}", last_system_prompt(&app));

    // Rolled back to version 1, then to the built-in default.
    let response = activate(&app, key, json!(1)).await;
    assert_eq!(response.status(), 200);
    let active: Value = response.json().await.unwrap();
    assert_eq!((active["template"].as_str(), active["version"].as_i64()), (Some("tenant"), Some(1)));
    let (run, _) = turn(&app, key, "Hello?").await;
    assert!(last_system_prompt(&app).starts_with("V1 for Tenant hivewise."));
    assert_eq!(recorded(&run), (json!("tenant"), json!(1)));
    let active: Value = activate(&app, key, Value::Null).await.json().await.unwrap();
    assert_eq!((active["template"].as_str(), &active["version"]), (Some("default"), &Value::Null));
    assert_eq!(app.get_json("/api/v1/prompt-templates/active", key).await, active);
    let (run, _) = turn(&app, key, "Hello?").await;
    assert!(last_system_prompt(&app).starts_with("You are the assistant of Tenant hivewise"));
    assert_eq!(recorded(&run), (json!(default_id), Value::Null));

    // A version saved without being put in force; the list, newest first; one version whole.
    let third = saved(&app, &tenant, &json!({ "body": "V3", "activate": false })).await;
    assert_eq!((third["version"].as_i64(), third["active"].as_bool()), (Some(3), Some(false)));
    let listed = app.get_json("/api/v1/prompt-templates", key).await;
    let versions: Vec<i64> =
        listed["versions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(listed["active"]["template"], "default");
    assert_eq!(listed["versions"][2]["note"], "first");
    assert_eq!(listed["versions"][2]["characters"].as_u64(), Some(V1.chars().count() as u64));
    assert!(listed["versions"][0].get("body").is_none(), "the list leaves bodies out");
    let got = app.get_json("/api/v1/prompt-templates/2", key).await;
    assert_eq!((got["body"].as_str(), got["active"].as_bool()), (Some(V2), Some(false)));
    assert_error(app.get("/api/v1/prompt-templates/9", key).send().await.unwrap(), 404, "not_found").await;
    assert_error(activate(&app, key, json!(9)).await, 404, "not_found").await;
    // `version` must be named (`{}` is not "back to the default"), and a body is an object, never an array.
    let put = |body: Value| app.client.put(app.url("/api/v1/prompt-templates/active")).bearer_auth(key).json(&body);
    assert_error(put(json!({})).send().await.unwrap(), 422, "invalid_request").await;
    assert_error(put(json!([null, null])).send().await.unwrap(), 422, "invalid_request").await;
    assert_error(preview(&app, key, &json!([null, null])).await, 422, "invalid_request").await;

    // Every change is audited.
    let trail = app.get_json("/api/v1/audit-events?limit=100", key).await;
    let actions: Vec<(String, Value)> = trail["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"].as_str().unwrap().starts_with("prompt_template."))
        .map(|event| (event["action"].as_str().unwrap().to_owned(), event["details"].clone()))
        .collect();
    let created = actions.iter().filter(|(action, _)| action == "prompt_template.created").count();
    let activations: Vec<(&Value, &Value)> = actions
        .iter()
        .filter(|(action, _)| action == "prompt_template.activated")
        .map(|(_, details)| (&details["from_version"], &details["to_version"]))
        .rev()
        .collect();
    assert_eq!(created, 3, "{actions:#?}");
    assert_eq!(
        activations,
        [(&Value::Null, &json!(1)), (&json!(1), &json!(2)), (&json!(2), &json!(1)), (&json!(1), &Value::Null)],
        "{actions:#?}"
    );
    let v1 = actions.iter().find(|(action, details)| action == "prompt_template.created" && details["version"] == 1);
    assert_eq!(v1.unwrap().1["body"], V1);

    // Admin only.
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    assert_error(app.get("/api/v1/prompt-templates", &chat_key).send().await.unwrap(), 403, "forbidden").await;
    assert_error(save(&app, &chat_key, &json!({ "body": V1 })).await, 403, "forbidden").await;
    assert_error(activate(&app, &chat_key, json!(1)).await, 403, "forbidden").await;
    assert_error(preview(&app, &chat_key, &json!({})).await, 403, "forbidden").await;
}

#[tokio::test]
async fn an_invalid_template_is_refused_with_its_line_and_nothing_is_saved() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "hivewise").await;
    let key = &tenant.admin_key;
    let cases = [
        ("Hello {{ tenant_name }}.\n{{ customer_name }}", Some(2), "customer_name"),
        ("Hello.\n\n{% if false %}{{ secret }}{% endif %}", Some(3), "secret"),
        ("Hello.\n{% if tenant_name %}\nnever closed", Some(3), "unexpected end of input"),
        ("Hello {{ tenant_name }\n", Some(1), "syntax error"),
        ("Hi.\n{{ end_user.email.upper() }}", Some(2), "undefined"),
    ];
    for (body, line, says) in cases {
        let error = assert_error(save(&app, key, &json!({ "body": body })).await, 422, "invalid_template").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body:?}: {error}");
        assert!(message.starts_with(&format!("line {}: ", line.unwrap())), "{body:?}: {error}");
        assert_eq!(error["error"]["details"]["line"], json!(line), "{body:?}: {error}");
        // The preview checks an unsaved body the same way.
        let error = assert_error(preview(&app, key, &json!({ "body": body })).await, 422, "invalid_template").await;
        assert!(error["error"]["message"].as_str().unwrap().contains(says), "{error}");
    }
    let error = assert_error(save(&app, key, &json!({ "body": "x".repeat(20_001) })).await, 422, "invalid_template");
    assert!(error.await["error"]["message"].as_str().unwrap().contains("20000"));
    assert_error(save(&app, key, &json!({ "body": "  " })).await, 422, "invalid_template").await;
    assert_error(save(&app, key, &json!({ "name": "greeting", "body": "Hi" })).await, 422, "invalid_request").await;
    assert_error(save(&app, key, &json!({ "body": "Hi", "note": "n".repeat(501) })).await, 422, "invalid_request")
        .await;
    let endless = "{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}";
    assert_error(save(&app, key, &json!({ "body": endless })).await, 422, "invalid_template").await;

    let listed = app.get_json("/api/v1/prompt-templates", key).await;
    assert_eq!((listed["versions"].clone(), listed["active"]["template"].clone()), (json!([]), json!("default")));
    let trail = app.get_json("/api/v1/audit-events", key).await;
    assert!(!trail.to_string().contains("prompt_template."), "a refused save is not audited: {trail}");
}

#[tokio::test]
async fn a_preview_renders_a_body_a_version_or_the_one_in_force_with_sample_data() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "hivewise").await;
    let key = &tenant.admin_key;

    let rendered = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["rendered"].as_str().unwrap().to_owned()
    };
    // Nothing saved: the built-in default, with sample passages.
    let default = rendered(preview(&app, key, &json!({})).await).await;
    assert!(default.starts_with("You are the assistant of Tenant hivewise"), "{default}");
    assert!(default.contains("[1] Guide (guide.md)"), "{default}");

    let body = "Hi {{ tenant_name }}: {{ citations | length }} passages, {% for tool in tools %}{{ tool.name }}, \
                {% endfor %}{{ end_user.id if end_user else 'nobody' }}. {{ policy_summary }}";
    let shown = rendered(preview(&app, key, &json!({ "body": body })).await).await;
    assert_eq!(
        shown,
        "Hi Tenant hivewise: 2 passages, crm__lookup, customer-1. No policy profile is active: no tools may be used."
    );
    assert_eq!(app.get_json("/api/v1/prompt-templates", key).await["versions"], json!([]), "a preview saves nothing");

    saved(&app, &tenant, &json!({ "body": V1 })).await;
    let expected = "V1 for Tenant hivewise.\nNo policy profile is active: no tools may be used.";
    assert_eq!(rendered(preview(&app, key, &json!({ "version": 1 })).await).await, expected);
    assert_eq!(rendered(preview(&app, key, &json!({})).await).await, expected, "the one in force");
    assert_error(preview(&app, key, &json!({ "version": 2 })).await, 404, "not_found").await;
    assert_error(preview(&app, key, &json!({ "version": 1, "body": "x" })).await, 422, "invalid_request").await;
}

#[tokio::test]
async fn the_tools_offered_and_the_policy_are_in_the_prompt() {
    let app = TestApp::spawn().await;
    let server = crate::mcp_server::McpTestServer::start().await;
    let tenant = tenant(&app, "hivewise").await;
    let key = &tenant.admin_key;
    let connector = json!({ "name": "crm", "transport": "streamable_http", "url": server.url });
    assert_eq!(app.post("/api/v1/mcp-connectors", key, &connector).send().await.unwrap().status(), 201);
    let profile = json!({ "name": "support", "tool_allowlist": ["crm.find_customers"], "read_only_mode": true });
    let profile: Value = app.post("/api/v1/policy-profiles", key, &profile).send().await.unwrap().json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;
    saved(&app, &tenant, &json!({ "body": V2 })).await;
    saved(&app, &tenant, &json!({ "body": V1 })).await;

    // Version 1 is V2's body, version 2 V1's.
    assert_eq!(activate(&app, key, json!(1)).await.status(), 200);
    turn(&app, key, "Who is Ada?").await;
    let prompt = last_system_prompt(&app);
    assert!(prompt.contains("find_customers: Find customers by name."), "{prompt}");
    assert!(!prompt.contains("delete_customer"), "a tool the policy hides is not listed: {prompt}");
    assert_eq!(activate(&app, key, json!(2)).await.status(), 200);
    turn(&app, key, "Who is Ada?").await;
    assert_eq!(
        last_system_prompt(&app),
        "V1 for Tenant hivewise.\nPolicy profile \"support\" (version 1), read-only: 1 tool pattern allowed, none \
         waiting for approval."
    );
}

#[tokio::test]
async fn another_tenant_neither_sees_nor_uses_them() {
    let app = TestApp::spawn().await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    saved(&app, &acme, &json!({ "body": "ACME ONLY {{ tenant_name }}" })).await;

    let key = &globex.admin_key;
    let listed = app.get_json("/api/v1/prompt-templates", key).await;
    assert_eq!((listed["versions"].clone(), listed["active"]["template"].clone()), (json!([]), json!("default")));
    assert_error(app.get("/api/v1/prompt-templates/1", key).send().await.unwrap(), 404, "not_found").await;
    assert_error(activate(&app, key, json!(1)).await, 404, "not_found").await;
    assert_error(preview(&app, key, &json!({ "version": 1 })).await, 404, "not_found").await;
    let (run, _) = turn(&app, key, "Hello?").await;
    assert!(last_system_prompt(&app).starts_with("You are the assistant of Tenant globex"));
    assert_eq!(run["prompt_version"], Value::Null);
    // Versions are numbered per tenant.
    assert_eq!(saved(&app, &globex, &json!({ "body": "Globex" })).await["version"], 1);
    turn(&app, &acme.admin_key, "Hello?").await;
    assert_eq!(last_system_prompt(&app), "ACME ONLY Tenant acme");
}
