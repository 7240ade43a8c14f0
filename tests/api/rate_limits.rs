//! Rate limits per API key, per tenant and per end user, and the cap on running runs: refused before
//! anything starts, shared by every process on one database, told in OpenAI's headers on `/v1`. No test
//! depends on speed: every limit used here refills one request in 30 s or more (two a minute at most), far
//! longer than a test takes, and tokens are checked by amounts, never by the clock.

use mock_upstream::Reply;
use reqwest::Response;
use serde_json::{Value, json};
use switchboard::rate_limits::{self, Demand, LimitKind, LimitScope, RateLimitError};

use crate::helpers::{OPERATOR_TOKEN, TestApp, TestTenant, assert_error};
use crate::mcp_server::McpTestServer;
use crate::service_process::wait_for;

/// A tenant whose turns go to the mock's OpenAI.
async fn tenant_on_openai(app: &TestApp, slug: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    tenant
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.client.put(app.url(path)).bearer_auth(token).json(body).send().await.unwrap()
}

async fn set_limits(app: &TestApp, tenant: &TestTenant, path: &str, body: Value) {
    let response = put(app, path, &tenant.admin_key, &body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

fn model_calls(app: &TestApp) -> usize {
    app.mock.requests().iter().filter(|request| request.path.ends_with("/chat/completions")).count()
}

/// `Retry-After`, in seconds: a whole number from 1 to the minute the limits span.
fn retry_after(response: &Response) -> u64 {
    let seconds: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    seconds
}

async fn integration_chat(app: &TestApp, key: &str, body: Value) -> Response {
    app.post("/api/v1/integration/chat", key, &body).send().await.unwrap()
}

#[tokio::test]
async fn a_key_over_its_requests_per_minute_gets_429_and_nothing_starts() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_openai(&app, "acme").await;
    let (key_id, key) = app.create_key(&tenant, &["chat"]).await;
    set_limits(&app, &tenant, &format!("/api/v1/api-keys/{key_id}/rate-limits"), json!({ "requests_per_minute": 1 }))
        .await;
    let session = app.create_session(&key).await;
    let path = format!("/api/v1/sessions/{session}/messages");

    let first = app.post(&path, &key, &json!({ "content": "first question" })).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(model_calls(&app), 1);

    let refused = app.post(&path, &key, &json!({ "content": "second question" })).send().await.unwrap();
    retry_after(&refused);
    let body = assert_error(refused, 429, "rate_limited").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("this API key's limit of 1 requests per minute"), "{message}");
    assert!(message.contains("try again in"), "{message}");
    assert_eq!(model_calls(&app), 1, "the refused request reached no model");
    let messages = app.messages(&key, &session).await;
    assert_eq!(messages.len(), 2, "the refused message was not recorded: {messages:#?}");
    assert!(messages.iter().all(|message| message["content"] != "second question"));

    // The key's limit is the key's: the tenant's other key goes on.
    let other = app.post(&path, &tenant.admin_key, &json!({ "content": "from the admin key" })).send().await.unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn two_processes_on_one_database_share_one_limit() {
    let first = TestApp::spawn().await;
    let tenant = first.create_tenant("acme").await;
    set_limits(&first, &tenant, "/api/v1/rate-limits", json!({ "tenant": { "requests_per_minute": 1 } })).await;
    let second = first.restarted().await;

    let admitted = integration_chat(&first, &tenant.admin_key, json!({ "message": "hello" })).await;
    assert_eq!(admitted.status(), 200);
    let refused = integration_chat(&second, &tenant.admin_key, json!({ "message": "hello again" })).await;
    retry_after(&refused);
    let body = assert_error(refused, 429, "rate_limited").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("the tenant's limit"), "{body}");
}

#[tokio::test]
async fn each_end_user_has_a_limit_of_their_own() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    set_limits(&app, &tenant, "/api/v1/rate-limits", json!({ "end_user": { "requests_per_minute": 1 } })).await;
    let chat = |user: &str| json!({ "message": format!("hello from {user}"), "external_user_id": user });

    assert_eq!(integration_chat(&app, &tenant.admin_key, chat("alice")).await.status(), 200);
    let refused = integration_chat(&app, &tenant.admin_key, chat("alice")).await;
    let body = assert_error(refused, 429, "rate_limited").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("this end user's limit"), "{body}");
    assert_eq!(integration_chat(&app, &tenant.admin_key, chat("bob")).await.status(), 200);
    // Requests that name no end user are the key's and the tenant's only.
    let anonymous = integration_chat(&app, &tenant.admin_key, json!({ "message": "no one in particular" })).await;
    assert_eq!(anonymous.status(), 200);

    // A widget user is the same end user as the integration's, by the tenant's own id.
    let widget_token = |user: &str| {
        let body = json!({ "external_user_id": user, "ttl_seconds": 600 });
        app.post("/api/v1/widget-tokens", &tenant.admin_key, &body).send()
    };
    for (user, expected) in [("carol", 200), ("alice", 429)] {
        let minted: Value = widget_token(user).await.unwrap().json().await.unwrap();
        let token = minted["token"].as_str().unwrap();
        let session = app.create_session(token).await;
        let path = format!("/api/v1/sessions/{session}/messages");
        let response = app.post(&path, token, &json!({ "content": "from the widget" })).send().await.unwrap();
        assert_eq!(response.status(), expected, "{user}");
    }
}

#[tokio::test]
async fn a_long_prompt_is_refused_by_tokens_per_minute_and_settling_gives_tokens_back() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    set_limits(&app, &tenant, "/api/v1/rate-limits", json!({ "tenant": { "tokens_per_minute": 2000 } })).await;

    let long = "word ".repeat(3000);
    let refused = integration_chat(&app, &tenant.admin_key, json!({ "message": long })).await;
    retry_after(&refused);
    let body = assert_error(refused, 429, "rate_limited").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("tokens are more than the tenant's limit of 2000 tokens per minute"), "{message}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of the refused request was stored");

    // A prompt with no output ceiling is estimated with the default one.
    let hello = u64::try_from(switchboard::tokens::count("hello") + switchboard::tokens::PER_MESSAGE_OVERHEAD).unwrap();
    assert_eq!(rate_limits::estimate_tokens(&["hello"], None).await, hello + rate_limits::DEFAULT_OUTPUT_TOKENS);

    // As a door admits and the engine settles: this request reserves 1,505 tokens of the 2,000, and a
    // second does not fit until 1,010 more have come back (30 s of refilling, or a settlement).
    let context = switchboard::auth::authenticate_api_key(&app.app_db, &tenant.admin_key, None).await.unwrap();
    let demand = Demand { prompt: &["hello"], max_output_tokens: Some(1500), end_user: None };
    let admission = rate_limits::admit(&app.app_db, &context, &demand).await.unwrap();
    let estimated = admission.reservation.estimated;
    assert_eq!(estimated, hello + 1500);
    let tokens = admission.standings.tokens.unwrap();
    assert_eq!((tokens.scope, tokens.limit, tokens.remaining), (LimitScope::Tenant, 2000, 2000 - estimated));
    match rate_limits::admit(&app.app_db, &context, &demand).await {
        Err(RateLimitError::Limited(refusal)) => {
            let named = (refusal.scope, refusal.kind, refusal.requested);
            assert_eq!(named, (LimitScope::Tenant, LimitKind::Tokens, estimated));
            assert!(refusal.retry_after.is_some());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The first run turns out to have used 5 tokens: the rest of its reservation comes back, and the
    // second request fits.
    rate_limits::settle_tokens(&app.app_db, &admission.reservation, 5).await.unwrap();
    let again = rate_limits::admit(&app.app_db, &context, &demand).await.unwrap();
    let left = again.standings.tokens.unwrap().remaining;
    assert!(left >= 2000 - 5 - estimated, "{left}");

    // A run that used more than its estimate is charged the difference: here a whole minute's worth more,
    // so nothing fits for over a minute.
    rate_limits::settle_tokens(&app.app_db, &again.reservation, estimated + 2000).await.unwrap();
    let small = Demand { prompt: &["hi"], max_output_tokens: Some(1), end_user: None };
    assert!(matches!(rate_limits::admit(&app.app_db, &context, &small).await, Err(RateLimitError::Limited(_))));
}

/// A request is admitted by all its limits or by none: one that a single limit refuses takes nothing
/// from the others (the admission takes every bucket at once, and puts back what it took when one did
/// not fit).
#[tokio::test]
async fn a_request_refused_by_one_limit_takes_nothing_from_the_others() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let limits = json!({ "tenant": { "requests_per_minute": 2, "tokens_per_minute": 2000 } });
    set_limits(&app, &tenant, "/api/v1/rate-limits", limits).await;
    let context = switchboard::auth::authenticate_api_key(&app.app_db, &tenant.admin_key, None).await.unwrap();

    // Each fits the requests limit and not the tokens one: refused, three times over.
    let long = Demand { prompt: &["hello"], max_output_tokens: Some(5000), end_user: None };
    for _ in 0..3 {
        match rate_limits::admit(&app.app_db, &context, &long).await {
            Err(RateLimitError::Limited(refusal)) => assert_eq!(refusal.kind, LimitKind::Tokens),
            other => panic!("expected a refusal by tokens, got {other:?}"),
        }
    }
    // The two requests a minute are still all there, and the third is refused by them.
    let small = Demand { prompt: &["hi"], max_output_tokens: Some(1), end_user: None };
    for _ in 0..2 {
        let admitted = rate_limits::admit(&app.app_db, &context, &small).await.unwrap();
        assert!(admitted.standings.requests.is_some());
    }
    match rate_limits::admit(&app.app_db, &context, &small).await {
        Err(RateLimitError::Limited(refusal)) => assert_eq!(refusal.kind, LimitKind::Requests),
        other => panic!("expected a refusal by requests, got {other:?}"),
    }
}

#[tokio::test]
async fn v1_answers_carry_openais_rate_limit_headers_and_its_429() {
    let app = TestApp::spawn().await;
    let tenant = tenant_on_openai(&app, "acme").await;
    let (key_id, key) = app.create_key(&tenant, &["chat"]).await;
    let limits = json!({ "requests_per_minute": 2, "tokens_per_minute": 100_000 });
    set_limits(&app, &tenant, &format!("/api/v1/api-keys/{key_id}/rate-limits"), limits).await;
    app.mock.push(Reply { text: "Hi there".into(), ..Reply::default() });
    app.mock.push(Reply { text: "Streamed hi".into(), ..Reply::default() });
    let question = "Say hi";
    let completion = |stream: bool| {
        json!({
            "model": "gpt-4o-mini",
            "messages": [{ "role": "user", "content": question }],
            "max_tokens": 50,
            "stream": stream,
        })
    };
    // The estimate: the prompt's tokens, the per-message overhead, and the output ceiling asked for.
    let estimated =
        u64::try_from(switchboard::tokens::count(question) + switchboard::tokens::PER_MESSAGE_OVERHEAD).unwrap() + 50;
    let header = |response: &Response, name: &str| {
        response.headers().get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap().to_owned()
    };

    let first = app.post("/v1/chat/completions", &key, &completion(false)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-requests"), "2");
    assert_eq!(header(&first, "x-ratelimit-remaining-requests"), "1");
    // Two a minute: one request is 30 s of the limit, and the bucket is whole again 30 s from now.
    assert_eq!(header(&first, "x-ratelimit-reset-requests"), "30s");
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), "100000");
    assert_eq!(header(&first, "x-ratelimit-remaining-tokens"), (100_000 - estimated).to_string());
    // 100,000 tokens a minute: each token is 0.6 ms.
    assert_eq!(header(&first, "x-ratelimit-reset-tokens"), format!("{}ms", (estimated * 600).div_ceil(1000)));
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");

    let streamed = app.post("/v1/chat/completions", &key, &completion(true)).send().await.unwrap();
    assert_eq!(streamed.status(), 200);
    assert_eq!(header(&streamed, "x-ratelimit-remaining-requests"), "0");
    let remaining_tokens: u64 = header(&streamed, "x-ratelimit-remaining-tokens").parse().unwrap();
    assert!(remaining_tokens <= 100_000 - estimated, "{remaining_tokens}");
    let text = streamed.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    let refused = app.post("/v1/chat/completions", &key, &completion(false)).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert_eq!(header(&refused, "x-ratelimit-limit-requests"), "2");
    assert_eq!(header(&refused, "x-ratelimit-remaining-requests"), "0");
    assert!(refused.headers().contains_key("x-ratelimit-reset-tokens"));
    assert!(refused.headers().contains_key("x-request-id"));
    let body: Value = refused.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["type"], "requests", "{body}");
    assert_eq!(error["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(error["param"], Value::Null, "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("Rate limit reached for requests per min (RPM)"), "{message}");
    assert!(message.contains("Please try again in"), "{message}");
    assert!(wait <= 30, "one request of two a minute frees within 30 s: {wait}");
    assert_eq!(model_calls(&app), 2, "the refused completion reached no model");
}

#[tokio::test]
async fn limits_are_validated_audited_and_removed_with_null() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let key_path = format!("/api/v1/api-keys/{key_id}/rate-limits");

    for bad in [
        json!({ "tenant": { "requests_per_minute": -1 } }),
        json!({ "tenant": { "requests_per_minute": 0 } }),
        json!({ "tenant": { "requests_per_minute": "10" } }),
        json!({ "tenant": { "requests_per_minute": 2.5 } }),
        json!({ "tenant": { "requests_per_hour": 5 } }),
        json!({ "end_user": 5 }),
        json!({ "everyone": { "requests_per_minute": 5 } }),
    ] {
        let response = put(&app, "/api/v1/rate-limits", &tenant.admin_key, &bad).await;
        assert_error(response, 422, "invalid_rate_limit").await;
    }
    for bad in [json!({ "tokens_per_minute": -5 }), json!({ "tokens_per_minute": [1] }), json!({ "burst": 3 })] {
        assert_error(put(&app, &key_path, &tenant.admin_key, &bad).await, 422, "invalid_rate_limit").await;
    }
    let missing = format!("/api/v1/api-keys/{}/rate-limits", uuid::Uuid::now_v7());
    let body = json!({ "requests_per_minute": 5 });
    assert_error(put(&app, &missing, &tenant.admin_key, &body).await, 404, "not_found").await;
    assert_error(put(&app, &key_path, &chat_key, &body).await, 403, "forbidden").await;
    assert_error(app.get("/api/v1/rate-limits", &chat_key).send().await.unwrap(), 403, "forbidden").await;
    // Another tenant's key is no key of this one.
    let other = app.create_tenant("other").await;
    assert_error(put(&app, &key_path, &other.admin_key, &body).await, 404, "not_found").await;

    let limits = json!({ "tenant": { "requests_per_minute": 600, "tokens_per_minute": 90_000 }, "end_user": null });
    set_limits(&app, &tenant, "/api/v1/rate-limits", limits).await;
    let shown = app.get_json("/api/v1/rate-limits", &tenant.admin_key).await;
    assert_eq!(shown["tenant"], json!({ "requests_per_minute": 600, "tokens_per_minute": 90_000 }));
    assert_eq!(shown["end_user"], json!({ "requests_per_minute": null, "tokens_per_minute": null }));
    assert!(shown["max_concurrent_runs"].as_u64().unwrap() >= 1, "{shown}");
    set_limits(
        &app,
        &tenant,
        "/api/v1/rate-limits",
        json!({ "tenant": { "requests_per_minute": null, "tokens_per_minute": 90_000 } }),
    )
    .await;
    let shown = app.get_json("/api/v1/rate-limits", &tenant.admin_key).await;
    assert_eq!(shown["tenant"], json!({ "requests_per_minute": null, "tokens_per_minute": 90_000 }));

    set_limits(&app, &tenant, &key_path, json!({ "requests_per_minute": 5 })).await;
    let shown = app.get_json(&key_path, &tenant.admin_key).await;
    assert_eq!((shown["api_key_id"].as_str(), &shown["requests_per_minute"]), (Some(key_id.as_str()), &json!(5)));
    set_limits(&app, &tenant, &key_path, json!({ "requests_per_minute": null })).await;
    assert_eq!(app.get_json(&key_path, &tenant.admin_key).await["requests_per_minute"], Value::Null);

    let trail = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let changes: Vec<&Value> = trail["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "rate_limits.updated")
        .collect();
    assert_eq!(changes.len(), 4, "{trail:#}");
    assert!(changes.iter().any(|event| event["target_type"] == "api_key" && event["target_id"] == key_id.as_str()));
}

#[tokio::test]
async fn the_cap_on_running_runs_refuses_new_runs_with_too_many_runs() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let cap = app.get_json("/api/v1/rate-limits", &tenant.admin_key).await["max_concurrent_runs"].as_i64().unwrap();
    // The tenant's runs, running in other processes as far as this one can tell.
    sqlx::query(
        "INSERT INTO runs (id, tenant_id, kind, status) \
         SELECT gen_random_uuid(), $1, 'chat', 'running' FROM generate_series(1, $2)",
    )
    .bind(tenant.id)
    .bind(i32::try_from(cap).unwrap())
    .execute(&app.owner_db)
    .await
    .unwrap();

    let session = app.create_session(&tenant.admin_key).await;
    let path = format!("/api/v1/sessions/{session}/messages");
    let refused = app.post(&path, &tenant.admin_key, &json!({ "content": "one more" })).send().await.unwrap();
    retry_after(&refused);
    let body = assert_error(refused, 429, "too_many_runs").await;
    assert!(body["error"]["message"].as_str().unwrap().contains(&format!("{cap} runs running")), "{body}");
    assert!(app.messages(&tenant.admin_key, &session).await.is_empty(), "nothing was recorded");
    let workspace = app.create_workspace(&tenant.admin_key, "repo").await;
    let agent_run = json!({ "instruction": "tidy up" });
    let response = app.post(&format!("/api/v1/workspaces/{workspace}/runs"), &tenant.admin_key, &agent_run);
    assert_error(response.send().await.unwrap(), 429, "too_many_runs").await;
    // Another tenant is not held back by this one's runs.
    let other = app.create_tenant("other").await;
    let answered = integration_chat(&app, &other.admin_key, json!({ "message": "hello" })).await;
    assert_eq!(answered.status(), 200);

    // One run ends: there is room again.
    sqlx::query("UPDATE runs SET status = 'succeeded' WHERE id = (SELECT id FROM runs WHERE tenant_id = $1 LIMIT 1)")
        .bind(tenant.id)
        .execute(&app.owner_db)
        .await
        .unwrap();
    let admitted = app.post(&path, &tenant.admin_key, &json!({ "content": "one more" })).send().await.unwrap();
    assert_eq!(admitted.status(), 200);

    // The operator deletes the tenant while its other runs still run: the count of them goes with it.
    let suspend = crate::tenants::patch_tenant(&app, tenant.id, &json!({ "status": "suspended" })).await;
    assert_eq!(suspend.status(), 200);
    let deleted = app.delete(&format!("/api/v1/tenants/{}?confirm=acme", tenant.id), OPERATOR_TOKEN).send().await;
    assert_eq!(deleted.unwrap().status(), 204);
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_running_runs WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(counted, 0);
}

#[tokio::test]
async fn an_agent_runs_tokens_are_corrected_to_what_it_used_by_the_worker_that_ran_it() {
    let app = TestApp::spawn().await;
    app.engine.start_workers(1);
    let tenant = tenant_on_openai(&app, "acme").await;
    set_limits(&app, &tenant, "/api/v1/rate-limits", json!({ "tenant": { "tokens_per_minute": 4000 } })).await;
    let workspace = app.post("/api/v1/workspaces", &tenant.admin_key, &json!({ "name": "shop" })).send().await.unwrap();
    let workspace: Value = workspace.json().await.unwrap();
    let runs = format!("/api/v1/workspaces/{}/runs", workspace["id"].as_str().unwrap());
    let queue = async |instruction: &str| {
        app.post(&runs, &tenant.admin_key, &json!({ "instruction": instruction })).send().await.unwrap()
    };

    // Admitted on its estimate (about 1,000 tokens of the 4,000), it turns out to use 20,100.
    app.mock.push(Reply { text: "Done, at length.".into(), usage: Some((20_000, 100)), ..Reply::default() });
    let first = queue("Tidy the shop").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let events = app.get(&format!("/api/v1/runs/{}/events", first["run"]["id"].as_str().unwrap()), &tenant.admin_key);
    let events = crate::helpers::read_sse(events.send().await.unwrap()).await;
    assert_eq!(events.last().map(|event| event.event.as_str()), Some("run.completed"), "{events:#?}");

    // The correction is made once the run's end is published (off the run's path): waited for.
    wait_for("the first run's tokens to be corrected", async || tokens_over_the_minute(&app, &tenant).await).await;
    // Two estimates would fit in the minute; what the first really used does not leave room for a second.
    let second = queue("Tidy it again").await;
    // 20,100 tokens charged to a limit of 4,000 a minute: over it for minutes, not for the usual one.
    let seconds: u64 = second.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(seconds > 60, "{seconds}");
    let body = assert_error(second, 429, "rate_limited").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("tokens"), "{body}");
}

/// The tenant's tokens bucket is set far ahead: more than a minute's tokens were counted against it.
async fn tokens_over_the_minute(app: &TestApp, tenant: &TestTenant) -> bool {
    sqlx::query_scalar(
        "SELECT coalesce(bool_or(tat > now() + interval '60 seconds'), false) FROM rate_limit_buckets \
         WHERE tenant_id = $1 AND kind = 'tokens'",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_resumed_after_an_approval_counts_its_later_steps_tokens_too() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let tenant = crate::tools::tenant_with_tools(&app, "acme", &server, profile).await;
    set_limits(&app, &tenant, "/api/v1/rate-limits", json!({ "tenant": { "tokens_per_minute": 4000 } })).await;

    // A small first step, paused for an approval: its tokens are within the minute.
    app.mock.push(Reply {
        tool_calls: vec![crate::tools::call("crm__delete_customer", json!({ "id": 1 }))],
        usage: Some((100, 10)),
        ..Reply::default()
    });
    let session = app.create_session(&tenant.admin_key).await;
    let path = format!("/api/v1/sessions/{session}/messages");
    let paused = app.post(&path, &tenant.admin_key, &json!({ "content": "Delete customer 1" })).send().await.unwrap();
    assert_eq!(paused.status(), 202);
    let paused: Value = paused.json().await.unwrap();
    let run_id = paused["run"]["id"].as_str().unwrap().to_owned();
    let events = app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap();
    let events = crate::helpers::read_sse(events).await;
    let waiting = events.iter().find(|event| event.event == "tool_call.awaiting_approval").expect("a waiting call");
    let call_id = waiting.data["tool_call_id"].as_str().unwrap();

    // After the approval the run goes on, and its next step uses 20,100 tokens: five minutes' worth.
    app.mock.push(Reply { text: "Deleted, at length.".into(), usage: Some((20_000, 100)), ..Reply::default() });
    let approve = format!("/api/v1/tool-calls/{call_id}/approve");
    let approved = app.post(&approve, &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(approved.status(), 200, "{}", approved.text().await.unwrap());
    let events = app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap();
    let events = crate::helpers::read_sse(events).await;
    assert_eq!(events.last().map(|event| event.event.as_str()), Some("run.completed"), "{events:#?}");
    assert_eq!(server.calls(), 1, "the approved call was made");

    // Counted once the resumed run's end is published (off its path): waited for.
    wait_for("the resumed run's tokens to be counted", async || tokens_over_the_minute(&app, &tenant).await).await;
    let refused = app.post(&path, &tenant.admin_key, &json!({ "content": "And customer 2" })).send().await.unwrap();
    let seconds: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(seconds > 60, "{seconds}");
    assert_error(refused, 429, "rate_limited").await;
}

/// The operator's defaults (`SWITCHBOARD_RATE_LIMIT_*`) hold for a tenant that set no limit of its own:
/// the real binary, started with a tenant default of two requests a minute, refuses the third.
#[tokio::test]
async fn the_operators_default_limits_hold_for_a_tenant_without_limits_of_its_own() {
    use crate::service_process::{create_tenant, free_port, fresh_data_dir, start_service_with, wait_until_ready};
    let data_dir = fresh_data_dir("operator-limits");
    let port = free_port();
    let settings = [("SWITCHBOARD_RATE_LIMIT_TENANT_REQUESTS_PER_MINUTE", "2"), ("RUST_LOG", "warn")];
    let mut service = start_service_with(&data_dir, port, &settings);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut service, &data_dir, &base).await;
    let key = create_tenant(&base, &data_dir, "defaulted").await;
    let client = reqwest::Client::new();
    let ask = || {
        let body = json!({ "model": "switchboard-extractive", "messages": [{ "role": "user", "content": "Hello?" }] });
        client.post(format!("{base}/v1/chat/completions")).bearer_auth(&key).json(&body).send()
    };

    for _ in 0..2 {
        let answered = ask().await.unwrap();
        assert_eq!(answered.status(), 200);
        assert_eq!(answered.headers()["x-ratelimit-limit-requests"], "2");
    }
    let refused = ask().await.unwrap();
    assert_eq!(refused.headers()["x-ratelimit-remaining-requests"], "0");
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(service.stop().await.success(), "a polite stop exits cleanly");
    let _ = std::fs::remove_dir_all(&data_dir);
}
