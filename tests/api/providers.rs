//! Real provider clients against the mock upstream, which speaks OpenAI's, Anthropic's and Gemini's
//! streaming wire formats: streamed turns, usage, BYOK against platform keys, faults, retries, fallback.

use mock_upstream::{Api, Fault, Reply, ToolCall};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_well_formed, platform_key, streamed_text};

const HOSTED: [(&str, Api); 3] = [("openai", Api::OpenAi), ("anthropic", Api::Anthropic), ("gemini", Api::Gemini)];
/// The hosted providers and an OpenAI-compatible server (reached with the tenant's key and base URL).
const ALL_KINDS: [(&str, Api); 4] = [
    ("openai", Api::OpenAi),
    ("anthropic", Api::Anthropic),
    ("gemini", Api::Gemini),
    ("openai_compatible", Api::OpenAi),
];

async fn tenant_using(app: &TestApp, slug: &str, provider: &str) -> (TestTenant, String) {
    let tenant = app.create_tenant(&slug.replace('_', "-")).await;
    app.configure(&tenant, json!({"default_provider": provider, "default_model": "model-x"})).await;
    if provider == "openai_compatible" {
        app.put_provider_key(
            &tenant,
            provider,
            json!({"api_key": "tenant-compat-key", "base_url": app.mock_base(provider)}),
        )
        .await;
    }
    let session = app.create_session(&tenant.admin_key).await;
    (tenant, session)
}

fn model_requested(request: &mock_upstream::RecordedRequest) -> String {
    match request.api {
        Api::Gemini => request.path.split("/models/").nth(1).unwrap().split(':').next().unwrap().to_owned(),
        _ => request.body["model"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn each_hosted_provider_streams_a_turn_with_the_platform_key_and_its_own_usage() {
    let app = TestApp::spawn().await;
    for (provider, api) in HOSTED {
        let (tenant, session) = tenant_using(&app, provider, provider).await;
        let said = format!("Hello from {provider}, streamed piece by piece.");
        app.mock.push(Reply { text: said.clone(), usage: Some((11, 7)), ..Reply::default() });

        let events = app.stream_turn(&tenant.admin_key, &session, "Say hello").await;
        let run_id = events[0].data["run_id"].as_str().unwrap().to_owned();
        assert_well_formed(&events, &run_id, 1);
        assert_eq!(events.last().unwrap().event, "run.completed", "{provider}: {events:#?}");
        assert_eq!(streamed_text(&events), said, "{provider}");
        assert!(events.iter().filter(|e| e.event == "message.delta").count() >= 5, "{provider} streamed in pieces");
        let usage = events.iter().find(|e| e.event == "usage").unwrap();
        assert_eq!((usage.data["input_tokens"].as_u64(), usage.data["output_tokens"].as_u64()), (Some(11), Some(7)));
        assert_eq!(usage.data["estimated"], false, "{provider}: the provider's own report is used");

        let request = app.mock.requests().pop().unwrap();
        assert_eq!(request.api, api);
        assert_eq!(request.api_key.as_deref(), Some(platform_key(provider).as_str()));
        assert_eq!(model_requested(&request), "model-x");
        let sent = request.body.to_string();
        assert!(
            sent.contains("Say hello") && sent.contains("assistant of Tenant"),
            "{provider}: history and system prompt sent"
        );

        let messages = app.messages(&tenant.admin_key, &session).await;
        assert_eq!(messages[1]["content"], said.as_str());
        assert_eq!(messages[1]["provider_used"], provider);
        assert_eq!(messages[1]["model_used"], "model-x");
        assert_eq!(messages[1]["is_byok"], false);
        let (tokens, source, byok): (i32, String, bool) = sqlx::query_as(
            "SELECT input_tokens + output_tokens, token_source, is_byok FROM usage_records \
             WHERE run_id = $1::uuid AND operation = 'chat'",
        )
        .bind(&run_id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
        assert_eq!((tokens, source.as_str(), byok), (18, "provider", false), "{provider}");
    }
}

#[tokio::test]
async fn an_openai_compatible_server_is_reached_with_the_tenants_key_and_base_url() {
    let app = TestApp::spawn().await;
    let (tenant, session) = tenant_using(&app, "compat", "openai_compatible").await;
    app.put_provider_key(
        &tenant,
        "openai_compatible",
        json!({"api_key": "tenant-compat-key", "base_url": app.mock.openai_base()}),
    )
    .await;
    app.mock.push(Reply { text: "Served by vLLM, say.".into(), ..Reply::default() });
    let events = app.stream_turn(&tenant.admin_key, &session, "hi").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    assert_eq!(streamed_text(&events), "Served by vLLM, say.");
    let request = app.mock.requests().pop().unwrap();
    assert_eq!(request.api_key.as_deref(), Some("tenant-compat-key"));
    // No cap the caller did not ask for (a cap asked for goes as `max_tokens`: see finish_reasons.rs).
    assert!(request.body.get("max_tokens").is_none() && request.body.get("max_completion_tokens").is_none());
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["provider_used"], "openai_compatible");
    assert_eq!(messages[1]["is_byok"], true);
}

#[tokio::test]
async fn the_tenants_own_key_wins_over_the_platform_key_and_is_never_shown() {
    let app = TestApp::spawn().await;
    let canary = "sk-canary-7f3a9b1c2d";
    for (provider, _) in HOSTED {
        let (tenant, session) = tenant_using(&app, provider, provider).await;
        app.put_provider_key(&tenant, provider, json!({"api_key": canary, "base_url": app.mock_base(provider)})).await;

        let shown = app.get(&format!("/api/v1/providers/{provider}"), &tenant.admin_key).send().await.unwrap();
        assert_eq!(shown.status(), 200);
        let shown = shown.text().await.unwrap();
        assert!(!shown.contains(canary), "{shown}");
        assert_eq!(serde_json::from_str::<Value>(&shown).unwrap()["key_configured"], true);

        app.mock.push(Reply { text: "byok answer".into(), ..Reply::default() });
        let events = app.stream_turn(&tenant.admin_key, &session, "hi").await;
        assert_eq!(events.last().unwrap().event, "run.completed");
        assert_eq!(app.mock.requests().pop().unwrap().api_key.as_deref(), Some(canary));
        let messages = app.messages(&tenant.admin_key, &session).await;
        assert_eq!(messages[1]["is_byok"], true, "{provider}");

        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT key_ciphertext FROM provider_credentials WHERE tenant_id = $1")
                .bind(tenant.id)
                .fetch_one(&app.owner_db)
                .await
                .unwrap();
        assert!(!stored.windows(canary.len()).any(|window| window == canary.as_bytes()), "stored in the clear");
        let audit = app.get("/api/v1/audit-events", &tenant.admin_key).send().await.unwrap().text().await.unwrap();
        assert!(audit.contains("provider_credentials.saved") && !audit.contains(canary));

        assert_eq!(
            app.delete(&format!("/api/v1/providers/{provider}"), &tenant.admin_key).send().await.unwrap().status(),
            204
        );
        app.mock.push(Reply { text: "platform answer".into(), ..Reply::default() });
        app.stream_turn(&tenant.admin_key, &session, "again").await;
        assert_eq!(app.mock.requests().pop().unwrap().api_key, Some(platform_key(provider)));
        let messages = app.messages(&tenant.admin_key, &session).await;
        assert_eq!(messages[3]["is_byok"], false, "{provider}: back on the platform key");
    }
}

/// Each fault, for each hosted provider, ends the run with its stable code and keeps the user's message.
#[tokio::test]
async fn upstream_faults_become_run_failed_with_a_stable_code_and_the_message_is_kept() {
    let app = TestApp::spawn().await;
    let attempts = 3; // the first try and max_retries = 2
    let faults: Vec<(&str, Vec<Fault>, &str)> = vec![
        ("server error", vec![Fault::Status { status: 500, retry_after: None }; attempts], "upstream_unavailable"),
        ("rate limited", vec![Fault::Status { status: 429, retry_after: Some(0) }; attempts], "upstream_rate_limited"),
        ("bad request", vec![Fault::Status { status: 400, retry_after: None }], "upstream_invalid_request"),
        ("cut mid-way", vec![Fault::CutAfter(2)], "upstream_bad_response"),
        ("malformed JSON", vec![Fault::MalformedAfter(2)], "upstream_bad_response"),
        ("stall", vec![Fault::StallAfter(2)], "upstream_timeout"),
    ];
    for (provider, _) in ALL_KINDS {
        let (tenant, session) = tenant_using(&app, provider, provider).await;
        for (turn, (name, replies, code)) in faults.iter().enumerate() {
            for fault in replies {
                app.mock.push(Reply {
                    text: "one two three four five".into(),
                    fault: Some(fault.clone()),
                    ..Reply::default()
                });
            }
            let question = format!("question {turn}");
            let events = app.stream_turn(&tenant.admin_key, &session, &question).await;
            let last = events.last().unwrap();
            assert_eq!(last.event, "run.failed", "{provider} {name}: {events:#?}");
            assert_eq!(last.data["code"], *code, "{provider} {name}");
            let partial = streamed_text(&events);
            let messages = app.messages(&tenant.admin_key, &session).await;
            let asked =
                messages.iter().find(|m| m["content"] == question.as_str()).expect("the user's message is kept");
            assert_eq!(asked["role"], "user");
            if !partial.is_empty() {
                let kept =
                    messages.iter().find(|m| m["run_id"] == asked["run_id"] && m["role"] == "assistant").unwrap();
                assert_eq!(kept["content"], partial.as_str(), "{provider} {name}: the partial answer is kept");
                assert_eq!(kept["status"], "incomplete");
            }
        }
        let auth = tenant_using(&app, &format!("{provider}-auth"), provider).await;
        app.put_provider_key(&auth.0, provider, json!({"api_key": "invalid-key", "base_url": app.mock_base(provider)}))
            .await;
        let events = app.stream_turn(&auth.0.admin_key, &auth.1, "hi").await;
        assert_eq!(events.last().unwrap().data["code"], "upstream_auth_failed", "{provider}");
        assert!(!events.last().unwrap().data["message"].as_str().unwrap().contains("invalid-key"));
    }
}

#[tokio::test]
async fn a_429_is_retried_and_the_turn_then_succeeds() {
    let app = TestApp::spawn().await;
    for (provider, _) in ALL_KINDS {
        let (tenant, session) = tenant_using(&app, provider, provider).await;
        let before = app.mock.requests().len();
        app.mock.push(Reply { fault: Some(Fault::Status { status: 429, retry_after: Some(1) }), ..Reply::default() });
        app.mock.push(Reply { text: "after the wait".into(), ..Reply::default() });
        let events = app.stream_turn(&tenant.admin_key, &session, "hi").await;
        assert_eq!(events.last().unwrap().event, "run.completed", "{provider}: {events:#?}");
        assert_eq!(streamed_text(&events), "after the wait");
        assert_eq!(app.mock.requests().len() - before, 2, "{provider}: one retry");
    }
}

#[tokio::test]
async fn the_fallback_model_answers_when_the_primary_fails_before_its_first_token() {
    let app = TestApp::spawn().await;
    let (tenant, session) = tenant_using(&app, "fallback", "openai").await;
    app.configure(&tenant, json!({"fallback_model": "backup-model"})).await;
    for _ in 0..3 {
        app.mock.push(Reply { fault: Some(Fault::Status { status: 503, retry_after: None }), ..Reply::default() });
    }
    app.mock.push(Reply { text: "the backup speaks".into(), ..Reply::default() });
    let events = app.stream_turn(&tenant.admin_key, &session, "hi").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    assert_eq!(model_requested(&app.mock.requests().pop().unwrap()), "backup-model");
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["model_used"], "backup-model");
    let run_id = events[0].data["run_id"].as_str().unwrap();
    let run: Value = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(run["model"], "backup-model");
}

#[tokio::test]
async fn tool_call_deltas_are_assembled_for_every_provider() {
    let app = TestApp::spawn().await;
    for (provider, _) in ALL_KINDS {
        let (tenant, session) = tenant_using(&app, provider, provider).await;
        let call = ToolCall {
            id: "call_7".into(),
            name: "crm_lookup".into(),
            arguments: json!({"customer": 42, "fields": ["name"]}),
        };
        app.mock.push(Reply { text: "Let me look.".into(), tool_calls: vec![call], ..Reply::default() });
        let events = app.stream_turn(&tenant.admin_key, &session, "who is 42?").await;
        assert_eq!(events.last().unwrap().event, "run.completed", "{provider}");
        let messages = app.messages(&tenant.admin_key, &session).await;
        let calls = messages[1]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{provider}: {calls:?}");
        assert_eq!(calls[0]["name"], "crm_lookup");
        let arguments: Value = serde_json::from_str(calls[0]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"customer": 42, "fields": ["name"]}), "{provider}");
    }
}

#[tokio::test]
async fn a_provider_without_any_key_fails_the_turn_but_keeps_the_message() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("nokey").await;
    app.configure(&tenant, json!({"default_provider": "openai_compatible"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "anyone there?").await;
    assert_eq!(events.last().unwrap().data["code"], "provider_not_configured");
    assert_eq!(app.messages(&tenant.admin_key, &session).await[0]["content"], "anyone there?");
}

#[tokio::test]
async fn provider_keys_and_settings_are_validated() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let put = |provider: &str, body: Value| {
        app.client
            .put(app.url(&format!("/api/v1/providers/{provider}")))
            .bearer_auth(&tenant.admin_key)
            .json(&body)
            .send()
    };
    let internal = put("openai", json!({"api_key": "k", "base_url": "http://10.1.2.3/v1"})).await.unwrap();
    crate::helpers::assert_error(internal, 422, "invalid_request").await;
    let metadata = put("openai", json!({"api_key": "k", "base_url": "http://169.254.169.254/"})).await.unwrap();
    crate::helpers::assert_error(metadata, 422, "invalid_request").await;
    let no_base = put("openai_compatible", json!({"api_key": "k"})).await.unwrap();
    crate::helpers::assert_error(no_base, 422, "invalid_request").await;
    crate::helpers::assert_error(put("local", json!({"api_key": "k"})).await.unwrap(), 404, "not_found").await;
    crate::helpers::assert_error(put("skynet", json!({"api_key": "k"})).await.unwrap(), 404, "not_found").await;
    crate::helpers::assert_error(put("openai", json!({"api_key": ""})).await.unwrap(), 422, "invalid_request").await;
    let missing = app.get("/api/v1/providers/openai", &tenant.admin_key).send().await.unwrap();
    crate::helpers::assert_error(missing, 404, "not_found").await;

    let patch = |body: Value| {
        app.client.patch(app.url("/api/v1/tenant/config")).bearer_auth(&tenant.admin_key).json(&body).send()
    };
    for bad in [json!({"default_provider": "skynet"}), json!({"monthly_budget_usd": -1}), json!({"colour": "blue"})] {
        crate::helpers::assert_error(patch(bad).await.unwrap(), 422, "invalid_request").await;
    }
    let updated: Value =
        patch(json!({"default_provider": "gemini", "monthly_budget_usd": 25.5})).await.unwrap().json().await.unwrap();
    assert_eq!(updated["default_provider"], "gemini");
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let forbidden = app
        .client
        .patch(app.url("/api/v1/tenant/config"))
        .bearer_auth(&chat_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(forbidden, 403, "forbidden").await;
}

#[tokio::test]
async fn a_stored_credential_names_its_provider_as_the_path_does() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("spelled").await;
    for provider in ["openai", "openai_compatible"] {
        let mut body = json!({ "api_key": "sk-spelled-0123456789" });
        if provider == "openai_compatible" {
            body["base_url"] = json!(app.mock_base("openai"));
        }
        app.put_provider_key(&tenant, provider, body).await;
        let shown = app.get_json(&format!("/api/v1/providers/{provider}"), &tenant.admin_key).await;
        assert_eq!(shown["provider"], provider, "{shown}");
    }
}
