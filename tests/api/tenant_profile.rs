//! The tenant's profile (`/api/v1/tenant/profile`): set whole by an admin, validated with codes a client can
//! act on, audited, and told to the model in every turn's system prompt.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};

fn put(app: &TestApp, key: &str, body: &Value) -> reqwest::RequestBuilder {
    app.client.put(app.url("/api/v1/tenant/profile")).bearer_auth(key).json(body)
}

fn beekeeping() -> Value {
    json!({
        "industry": "  Beekeeping supplies ",
        "description": "Hivewise sells hives, tools and bees to hobby beekeepers.\nWe ship within the EU.",
        "products": ["Starter hive", "Smoker", "Queen excluder"],
        "glossary": [
            { "term": "Super", "meaning": "the upper box where the bees store honey" },
            { "term": "Nuc", "meaning": "a small starter colony with a laying queen" }
        ],
        "tone": "warm and brief",
        "languages": ["en", "de-CH"],
        "free_text": "Never promise a delivery date."
    })
}

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

async fn turn(app: &TestApp, tenant: &TestTenant, question: &str) {
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, question).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
}

#[tokio::test]
async fn a_profile_round_trips_is_replaced_whole_and_every_change_is_audited() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;

    // Never set: every field empty.
    let empty = app.get_json("/api/v1/tenant/profile", &tenant.admin_key).await;
    assert_eq!(
        empty,
        json!({ "industry": null, "description": null, "products": [], "glossary": [], "tone": null,
                "languages": [], "free_text": null, "updated_at": null })
    );

    let response = put(&app, &tenant.admin_key, &beekeeping()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(saved["industry"], "Beekeeping supplies", "trimmed");
    assert_eq!(saved["products"], json!(["Starter hive", "Smoker", "Queen excluder"]));
    assert_eq!(saved["glossary"][1], json!({ "term": "Nuc", "meaning": "a small starter colony with a laying queen" }));
    assert_eq!(saved["languages"], json!(["en", "de-CH"]));
    assert!(saved["updated_at"].is_string());
    assert_eq!(app.get_json("/api/v1/tenant/profile", &tenant.admin_key).await, saved);

    // A PUT replaces the whole profile: what it leaves out is empty afterwards.
    let response = put(&app, &tenant.admin_key, &json!({ "industry": "Honey", "languages": null })).send().await;
    let replaced: Value = response.unwrap().json().await.unwrap();
    assert_eq!(replaced["industry"], "Honey");
    assert_eq!((replaced["description"].clone(), replaced["products"].clone()), (Value::Null, json!([])));
    assert_eq!(app.get_json("/api/v1/tenant/profile", &tenant.admin_key).await, replaced);

    // Each change is in the trail, with the profile as it became.
    let trail = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let changes: Vec<&Value> = trail["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "tenant_profile.updated")
        .collect();
    assert_eq!(changes.len(), 2, "{trail}");
    assert_eq!(changes[0]["details"]["industry"], "Honey", "newest first");
    assert_eq!(changes[1]["details"]["glossary"][0]["term"], "Super");
    assert_eq!(changes[0]["actor_type"], "api_key");

    // Admin only: a chat key and a widget token are refused, reading and writing.
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let widget: Value = app
        .post("/api/v1/widget-tokens", &tenant.admin_key, &json!({ "external_user_id": "visitor", "ttl_seconds": 60 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for token in [chat_key.as_str(), widget["token"].as_str().unwrap()] {
        assert_error(app.get("/api/v1/tenant/profile", token).send().await.unwrap(), 403, "forbidden").await;
        assert_error(put(&app, token, &beekeeping()).send().await.unwrap(), 403, "forbidden").await;
    }
    // Another tenant sees its own (empty) profile, not this one.
    let other = app.create_tenant("other").await;
    assert_eq!(app.get_json("/api/v1/tenant/profile", &other.admin_key).await["industry"], Value::Null);
}

#[tokio::test]
async fn an_invalid_profile_is_refused_with_a_stable_code_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;
    assert_eq!(put(&app, &tenant.admin_key, &beekeeping()).send().await.unwrap().status(), 200);
    let before = app.get_json("/api/v1/tenant/profile", &tenant.admin_key).await;

    let with = |field: &str, value: Value| {
        let mut body = beekeeping();
        body[field] = value;
        body
    };
    let refused = [
        (with("industry", json!("x".repeat(101))), "invalid_profile", "industry"),
        (with("tone", json!("warm\nand brief")), "invalid_profile", "one line"),
        (with("products", json!(vec!["Hive"; 31])), "invalid_profile", "products"),
        (with("products", json!(["Smoker", "smoker"])), "invalid_profile", "twice"),
        (
            with("glossary", json!([{ "term": "Super", "meaning": "a" }, { "term": "super", "meaning": "b" }])),
            "invalid_profile",
            "twice",
        ),
        (with("glossary", json!([{ "term": "Super", "meaning": "  " }])), "invalid_profile", "meaning"),
        (with("languages", json!(["english"])), "invalid_profile", "BCP 47"),
        (with("languages", json!(["en_US"])), "invalid_profile", "BCP 47"),
        (
            json!({ "description": "d".repeat(2000), "free_text": "f".repeat(4000),
                    "glossary": (0..5).map(|n| json!({ "term": format!("t{n}"), "meaning": "m".repeat(500) })).collect::<Vec<_>>() }),
            "profile_too_large",
            "8000",
        ),
        // Unknown fields and wrong types are refused by name, as everywhere.
        (with("mission", json!("Bees for all")), "invalid_request", "mission"),
        (with("glossary", json!([{ "term": "Super", "meaning": "box", "source": "x" }])), "invalid_request", "source"),
        (with("products", json!("Smoker")), "invalid_request", "products"),
    ];
    for (body, code, hint) in refused {
        let error = assert_error(put(&app, &tenant.admin_key, &body).send().await.unwrap(), 422, code).await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(hint), "{hint:?} not in {message:?}");
    }
    let malformed = app
        .client
        .put(app.url("/api/v1/tenant/profile"))
        .bearer_auth(&tenant.admin_key)
        .header("content-type", "application/json")
        .body("{\"industry\": ");
    assert_error(malformed.send().await.unwrap(), 400, "malformed_json").await;

    assert_eq!(app.get_json("/api/v1/tenant/profile", &tenant.admin_key).await, before, "nothing was changed");
    let trail = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let changes = trail["audit_events"].as_array().unwrap().iter().filter(|e| e["action"] == "tenant_profile.updated");
    assert_eq!(changes.count(), 1, "only the accepted change is audited");
}

#[tokio::test]
async fn the_profile_is_in_the_system_prompt_of_every_turn_of_its_tenant_only() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;
    let other = app.create_tenant("other").await;
    for each in [&tenant, &other] {
        app.configure(each, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    }

    turn(&app, &tenant, "What should I buy first?").await;
    let before = last_system_prompt(&app);
    assert!(!before.contains("About Tenant hivewise"), "no profile, no paragraph about the tenant: {before}");

    assert_eq!(put(&app, &tenant.admin_key, &beekeeping()).send().await.unwrap().status(), 200);
    turn(&app, &tenant, "What should I buy first?").await;
    let prompt = last_system_prompt(&app);
    for expected in [
        "About Tenant hivewise:",
        "Industry: Beekeeping supplies",
        "Hivewise sells hives, tools and bees to hobby beekeepers.\nWe ship within the EU.",
        "- Starter hive\n- Smoker\n- Queen excluder",
        "- Super: the upper box where the bees store honey",
        "- Nuc: a small starter colony with a laying queen",
        "Tone of the answers: warm and brief",
        "Languages: en, de-CH.",
        "Never promise a delivery date.",
    ] {
        assert!(prompt.contains(expected), "{expected:?} not in the system prompt:\n{prompt}");
    }

    // The other tenant's turns know nothing of it.
    turn(&app, &other, "What should I buy first?").await;
    let others = last_system_prompt(&app);
    assert!(!others.contains("Beekeeping") && !others.contains("Hivewise"), "{others}");

    // A profile emptied is gone from the next turn.
    assert_eq!(put(&app, &tenant.admin_key, &json!({})).send().await.unwrap().status(), 200);
    turn(&app, &tenant, "What should I buy first?").await;
    let emptied = last_system_prompt(&app);
    assert!(!emptied.contains("Beekeeping") && !emptied.contains("About Tenant hivewise"), "{emptied}");
}
