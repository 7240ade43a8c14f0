//! Budgets that hold: a used-up budget refuses a turn with 402 before any provider is called; concurrent
//! turns never spend past a budget together; failed, cancelled and killed turns give back what they
//! reserved; crossing a threshold is audited; a key's own budget replaces the tenant's for every key.

use std::str::FromStr as _;
use std::time::Duration;

use mock_upstream::{Fault, Reply};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error, read_sse};

/// A tenant answering with the test catalog's metered model (1,000 US dollars per million tokens either
/// way, at most 100 output tokens) through the platform's OpenAI key (the mock).
async fn metered_tenant(app: &TestApp, slug: &str, settings: Value) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "metered-test-model" })).await;
    app.configure(&tenant, settings).await;
    tenant
}

pub(crate) fn usd(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or("0")).unwrap()
}

pub(crate) async fn tenant_budget(app: &TestApp, tenant: &TestTenant) -> Value {
    let report = app.get_json("/api/v1/budgets", &tenant.admin_key).await;
    report["budgets"].as_array().unwrap().iter().find(|budget| budget["subject"] == "tenant").cloned().unwrap()
}

fn chat_requests(app: &TestApp) -> usize {
    app.mock.requests().iter().filter(|request| request.path.ends_with("/chat/completions")).count()
}

#[tokio::test]
async fn a_used_up_budget_refuses_the_turn_with_402_before_any_provider_is_called() {
    let app = TestApp::spawn().await;
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 0 })).await;
    let session = app.create_session(&tenant.admin_key).await;
    let path = format!("/api/v1/sessions/{session}/messages");

    let refused = app.post(&path, &tenant.admin_key, &json!({ "content": "Hello?" })).send().await.unwrap();
    let error = assert_error(refused, 402, "budget_exhausted").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("the tenant's monthly budget"), "{error}");
    let streamed =
        app.post(&path, &tenant.admin_key, &json!({ "content": "Hello?" })).header("accept", "text/event-stream");
    assert_error(streamed.send().await.unwrap(), 402, "budget_exhausted").await;
    let v1 = json!({ "model": "metered-test-model", "messages": [{ "role": "user", "content": "Hello?" }] });
    let refused = app.post("/v1/chat/completions", &tenant.admin_key, &v1).send().await.unwrap();
    assert_eq!(refused.status(), 402);
    assert_eq!(chat_requests(&app), 0, "no provider was contacted");
    assert!(app.messages(&tenant.admin_key, &session).await.is_empty(), "nothing was recorded");

    // Raised, the budget lets turns through again.
    app.configure(&tenant, json!({ "monthly_budget_usd": 50 })).await;
    let answered = app.post(&path, &tenant.admin_key, &json!({ "content": "Hello?" })).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    let budget = tenant_budget(&app, &tenant).await;
    assert!(usd(&budget["spent_usd"]) > Decimal::ZERO, "{budget}");
    assert_eq!(usd(&budget["reserved_usd"]), Decimal::ZERO, "settled: {budget}");
}

#[tokio::test]
async fn fifty_concurrent_turns_never_spend_past_the_budget() {
    fifty_concurrent_turns_against_a_budget(Door::Conversation).await;
}

/// Through `/v1`, whose first model call is reserved beside the statements that record the turn.
#[tokio::test]
async fn fifty_concurrent_pass_through_turns_never_spend_past_the_budget() {
    fifty_concurrent_turns_against_a_budget(Door::OpenAi).await;
}

#[derive(Clone, Copy)]
enum Door {
    /// A conversation's streamed turn (`/api/v1/sessions/{id}/messages`).
    Conversation,
    /// `/v1/chat/completions`, not streamed.
    OpenAi,
}

/// One turn through the door: `completed`, `refused` (402 before it started) or its failure's code.
async fn one_turn(app: &TestApp, key: &str, door: Door, question: String) -> String {
    match door {
        Door::Conversation => {
            let session = app.create_session(key).await;
            let request = app
                .post(&format!("/api/v1/sessions/{session}/messages"), key, &json!({ "content": question }))
                .header("accept", "text/event-stream");
            let response = request.send().await.unwrap();
            if response.status() == 402 {
                return "refused".to_owned();
            }
            let events = read_sse(response).await;
            let last = events.last().unwrap();
            match last.event.as_str() {
                "run.completed" => "completed".to_owned(),
                "run.failed" => last.data["code"].as_str().unwrap().to_owned(),
                other => other.to_owned(),
            }
        }
        Door::OpenAi => {
            let body = json!({ "model": "metered-test-model", "messages": [{ "role": "user", "content": question }] });
            let response = app.post("/v1/chat/completions", key, &body).send().await.unwrap();
            match response.status().as_u16() {
                200 => "completed".to_owned(),
                402 => "refused".to_owned(),
                status => format!("{status}: {}", response.text().await.unwrap()),
            }
        }
    }
}

async fn fifty_concurrent_turns_against_a_budget(door: Door) {
    let app = TestApp::spawn().await;
    // About ten turns' worth: each costs roughly a tenth of a dollar, and reserves a bit more.
    let budget = Decimal::from(2);
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 2 })).await;
    let turns = (0..50).map(|number| one_turn(&app, &tenant.admin_key, door, format!("Question {number}")));
    let outcomes = futures::future::join_all(turns).await;
    let completed = outcomes.iter().filter(|outcome| *outcome == "completed").count();
    assert!(completed >= 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|outcome| ["completed", "refused", "budget_exhausted"].contains(&outcome.as_str())),
        "{outcomes:?}"
    );
    assert!(completed < 50, "the budget stopped some: {outcomes:?}");

    let status = tenant_budget(&app, &tenant).await;
    let spent = usd(&status["spent_usd"]);
    assert!(spent <= budget, "spent {spent} of {budget}: {status}");
    assert_eq!(usd(&status["reserved_usd"]), Decimal::ZERO, "every reservation settled: {status}");
    let recorded: Decimal =
        sqlx::query_scalar("SELECT coalesce(sum(cost_usd), 0) FROM usage_records WHERE tenant_id = $1")
            .bind(tenant.id)
            .fetch_one(&app.owner_db)
            .await
            .unwrap();
    assert_eq!(recorded, spent, "the budget counts exactly what the usage records cost");
    if let Door::OpenAi = door {
        // A bare question's answers spend far less than the output ceiling each reserved: too little
        // to cross a threshold.
        return;
    }
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'percent' FROM audit_events WHERE tenant_id = $1 AND action = 'budget.threshold_crossed' \
         ORDER BY created_at",
    )
    .bind(tenant.id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert!(audited.contains(&"50".to_owned()), "crossing half the budget is audited once: {audited:?}");
    assert_eq!(audited.iter().filter(|percent| *percent == "50").count(), 1, "{audited:?}");
}

/// A service whose questions and documents are embedded by the mock's OpenAI model, priced by the catalog.
async fn with_priced_embeddings() -> TestApp {
    let first = TestApp::spawn().await;
    let retriever = first.retriever_for("openai/text-embedding-3-small", Some(256)).await;
    retriever.promote_document_model();
    first.with_retriever(retriever).await
}

#[tokio::test]
async fn a_turns_question_embedded_by_a_priced_model_is_spent_against_the_budget_with_its_model_calls() {
    let app = with_priced_embeddings().await;
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 2 })).await;
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "How do I rotate the master key?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");

    let (embedding, all): (Decimal, Decimal) = sqlx::query_as(
        "SELECT coalesce(sum(cost_usd) FILTER (WHERE operation = 'embedding'), 0), coalesce(sum(cost_usd), 0) \
         FROM usage_records WHERE tenant_id = $1",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert!(embedding > Decimal::ZERO, "the question's embedding is priced");
    let status = tenant_budget(&app, &tenant).await;
    assert_eq!(usd(&status["spent_usd"]), all, "the budget counts the embedding too: {status}");
    assert_eq!(usd(&status["reserved_usd"]), Decimal::ZERO, "{status}");
}

#[tokio::test]
async fn a_document_embedded_by_a_priced_model_is_spent_against_the_budget_and_refused_once_it_is_used_up() {
    let app = with_priced_embeddings().await;
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 2 })).await;
    let document = |path: &str| json!({ "source_path": path, "content": "# Rotation\n\nThe master key is rotated with `switchboard rotate-key`." });
    let embedding_calls = || app.mock.requests().iter().filter(|request| request.path.ends_with("/embeddings")).count();

    let saved = app.post("/api/v1/documents", &tenant.admin_key, &document("notes/rotation.md")).send().await.unwrap();
    assert_eq!(saved.status(), 201);
    let cost: Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(cost_usd), 0) FROM usage_records WHERE tenant_id = $1 AND operation = 'embedding'",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert!(cost > Decimal::ZERO, "the document's embedding is priced");
    let status = tenant_budget(&app, &tenant).await;
    assert_eq!(usd(&status["spent_usd"]), cost, "the budget counts the document's embedding: {status}");

    // A budget already used up refuses the next document before the embedder is asked or anything stored.
    app.configure(&tenant, json!({ "monthly_budget_usd": 0 })).await;
    let asked = embedding_calls();
    let refused = app.post("/api/v1/documents", &tenant.admin_key, &document("notes/again.md")).send().await.unwrap();
    let body = assert_error(refused, 402, "budget_exhausted").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("the tenant's monthly budget"), "{body}");
    assert_eq!(embedding_calls(), asked, "no provider was asked");
    let listed = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    let paths: Vec<&str> =
        listed["documents"].as_array().unwrap().iter().filter_map(|d| d["source_path"].as_str()).collect();
    assert_eq!(paths, ["notes/rotation.md"], "nothing of the refused document is stored");
}

async fn reserved(app: &TestApp, tenant: &TestTenant) -> Decimal {
    usd(&tenant_budget(app, tenant).await["reserved_usd"])
}

#[tokio::test]
async fn failed_cancelled_and_killed_turns_give_back_what_they_reserved() {
    let app = TestApp::spawn().await;
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 100 })).await;
    let key = &tenant.admin_key;

    // Failed: the provider refuses the key.
    app.mock.push(Reply { fault: Some(Fault::Status { status: 401, retry_after: None }), ..Reply::default() });
    let session = app.create_session(key).await;
    let events = app.stream_turn(key, &session, "Will fail").await;
    assert_eq!(events.last().unwrap().data["code"], "upstream_auth_failed");
    assert_eq!(reserved(&app, &tenant).await, Decimal::ZERO);
    assert_eq!(usd(&tenant_budget(&app, &tenant).await["spent_usd"]), Decimal::ZERO, "a refused call costs nothing");

    // Cancelled mid-answer.
    let words: Vec<String> = (0..400).map(|i| format!("word{i}")).collect();
    app.mock.push(Reply { text: words.join(" "), chunk_delay: Duration::from_millis(20), ..Reply::default() });
    let session = app.create_session(key).await;
    let response = app
        .post(&format!("/api/v1/sessions/{session}/messages"), key, &json!({ "content": "Long" }))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut run_id = String::new();
    while let Some(Ok(event)) = futures::StreamExt::next(&mut stream).await {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        run_id = data["run_id"].as_str().unwrap().to_owned();
        if event.event == "message.delta" {
            break;
        }
    }
    assert!(reserved(&app, &tenant).await > Decimal::ZERO, "a call under way holds its reservation");
    let cancelled = app.post(&format!("/api/v1/runs/{run_id}/cancel"), key, &json!({})).send().await.unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(reserved(&app, &tenant).await, Decimal::ZERO);

    // Killed: a worker's process dies mid-answer; the sweeper gives its reservation back.
    let workspace = app.create_workspace(key, "ide").await;
    app.mock.push(Reply { text: words.join(" "), chunk_delay: Duration::from_millis(20), ..Reply::default() });
    let worker = app.doomed_worker().await;
    let run = app
        .post(&format!("/api/v1/workspaces/{workspace}/runs"), key, &json!({ "instruction": "Write at length" }))
        .send()
        .await
        .unwrap();
    let run: Value = run.json().await.unwrap();
    let run_id = run["run"]["id"].as_str().unwrap().to_owned();
    let response = app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    while let Some(Ok(event)) = futures::StreamExt::next(&mut stream).await {
        if event.event == "message.delta" {
            break;
        }
    }
    drop(stream);
    assert!(reserved(&app, &tenant).await > Decimal::ZERO);
    worker.crash();
    crate::service_process::wait_for("the dead worker's run to be closed", async || {
        app.engine.sweep_stale_runs(Duration::from_secs(60)).await.unwrap() > 0
    })
    .await;
    assert_eq!(reserved(&app, &tenant).await, Decimal::ZERO, "the dead run's reservation was released");
}

#[tokio::test]
async fn an_agent_run_stops_at_its_step_budget_and_bad_budgets_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = metered_tenant(&app, "acme", json!({ "agent_run_max_steps": 1 })).await;
    let key = &tenant.admin_key;
    let workspace = app.create_workspace(key, "ide").await;
    // The model asks for a tool: its second step is one too many.
    let call =
        mock_upstream::ToolCall { id: String::new(), name: "workspace__list_files".to_owned(), arguments: json!({}) };
    app.mock.push(Reply { tool_calls: vec![call], ..Reply::default() });
    app.engine.start_workers(1);
    let run = app
        .post(&format!("/api/v1/workspaces/{workspace}/runs"), key, &json!({ "instruction": "List the files" }))
        .send()
        .await
        .unwrap();
    let run: Value = run.json().await.unwrap();
    let run_id = run["run"]["id"].as_str().unwrap();
    let events = read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap()).await;
    let last = events.last().unwrap();
    assert_eq!((last.event.as_str(), &last.data["code"]), ("run.failed", &json!("budget_exhausted")), "{events:#?}");
    assert_eq!(chat_requests(&app), 1, "the second step never reached the provider");

    for bad in [
        json!({ "monthly_budget_usd": -1 }),
        json!({ "key_monthly_budget_usd": "ten" }),
        json!({ "agent_run_max_steps": 0 }),
        json!({ "end_user_monthly_budget_usd": 1e12 }),
    ] {
        let response =
            app.client.patch(app.url("/api/v1/tenant/config")).bearer_auth(key).json(&bad).send().await.unwrap();
        assert_error(response, 422, "invalid_request").await;
    }
}

/// Creates a key for chat with a monthly budget of its own; returns its id and token.
async fn key_with_budget(app: &TestApp, tenant: &TestTenant, budget: Value) -> (String, String) {
    let body = json!({ "name": "budgeted", "scopes": ["chat"], "monthly_budget_usd": budget });
    let response = app.post("/api/v1/api-keys", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (body["id"].as_str().unwrap().to_owned(), body["key"].as_str().unwrap().to_owned())
}

/// The report's line for one key, if it has one.
async fn key_budget(app: &TestApp, tenant: &TestTenant, key_id: &str) -> Option<Value> {
    let report = app.get_json("/api/v1/budgets", &tenant.admin_key).await;
    let subject = format!("api_key:{key_id}");
    report["budgets"].as_array().unwrap().iter().find(|budget| budget["subject"] == subject.as_str()).cloned()
}

/// A key as `GET /api/v1/api-keys` shows it.
async fn listed_key(app: &TestApp, tenant: &TestTenant, key_id: &str) -> Value {
    let listed = app.get_json("/api/v1/api-keys", &tenant.admin_key).await;
    listed["api_keys"].as_array().unwrap().iter().find(|key| key["id"] == key_id).cloned().unwrap()
}

#[tokio::test]
async fn a_keys_own_budget_refuses_it_once_spent_while_the_tenants_other_keys_answer() {
    let app = TestApp::spawn().await;
    // Keys without a budget of their own may spend nothing; a key's own budget replaces that, looser or not.
    let tenant = metered_tenant(&app, "acme", json!({ "key_monthly_budget_usd": 0 })).await;
    let (small_id, small) = key_with_budget(&app, &tenant, json!("0.50")).await;
    let (large_id, large) = key_with_budget(&app, &tenant, json!(50)).await;
    assert_eq!(usd(&listed_key(&app, &tenant, &small_id).await["monthly_budget_usd"]), Decimal::new(5, 1));

    // The provider reports 500 input and 100 output tokens: 0.60 US dollars, past the small budget.
    app.mock.push(Reply { text: "Hello there.".to_owned(), usage: Some((500, 100)), ..Reply::default() });
    let session = app.create_session(&small).await;
    let path = format!("/api/v1/sessions/{session}/messages");
    let answered = app.post(&path, &small, &json!({ "content": "Hello?" })).send().await.unwrap();
    assert_eq!(answered.status(), 200, "{}", answered.text().await.unwrap());

    let refused = app.post(&path, &small, &json!({ "content": "Again?" })).send().await.unwrap();
    let error = assert_error(refused, 402, "budget_exhausted").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("this API key's monthly budget"), "{error}");
    let v1 = json!({ "model": "metered-test-model", "messages": [{ "role": "user", "content": "Again?" }] });
    let refused = app.post("/v1/chat/completions", &small, &v1).send().await.unwrap();
    assert_eq!(refused.status(), 402);

    // Another key of the same tenant still gets answers, under its own budget.
    let session = app.create_session(&large).await;
    let answered =
        app.post(&format!("/api/v1/sessions/{session}/messages"), &large, &json!({ "content": "Hello?" })).send();
    assert_eq!(answered.await.unwrap().status(), 200);
    // A key without one is under the tenant's budget for every key.
    let session = app.create_session(&tenant.admin_key).await;
    let refused = app
        .post(&format!("/api/v1/sessions/{session}/messages"), &tenant.admin_key, &json!({ "content": "Hello?" }))
        .send()
        .await
        .unwrap();
    assert_error(refused, 402, "budget_exhausted").await;
    assert_eq!(chat_requests(&app), 2, "only the answered turns reached the provider");

    let spent = key_budget(&app, &tenant, &small_id).await.unwrap();
    assert_eq!(spent["budget"], "api_key", "{spent}");
    assert_eq!(usd(&spent["limit_usd"]), Decimal::new(5, 1), "{spent}");
    assert_eq!(usd(&spent["spent_usd"]), Decimal::new(6, 1), "{spent}");
    assert_eq!(usd(&spent["remaining_usd"]), Decimal::ZERO, "{spent}");
    let open = key_budget(&app, &tenant, &large_id).await.unwrap();
    assert_eq!(usd(&open["limit_usd"]), Decimal::from(50), "{open}");
    assert!(usd(&open["spent_usd"]) > Decimal::ZERO, "{open}");

    // The budget is audited with the key it was made with.
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let created = audit["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "api_key.created" && event["target_id"] == small_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(created["details"]["monthly_budget_usd"], "0.5", "{created}");

    // A key cannot be made with a budget that is not one.
    for bad in [json!(-1), json!("-0.01"), json!("ten"), json!(true), json!("0.0000001"), json!(1e12)] {
        let body = json!({ "name": "bad", "scopes": ["chat"], "monthly_budget_usd": bad });
        let response = app.post("/api/v1/api-keys", &tenant.admin_key, &body).send().await.unwrap();
        let error = assert_error(response, 422, "invalid_request").await;
        assert!(error["error"]["message"].as_str().unwrap().contains("monthly_budget_usd"), "{error}");
    }
}

#[tokio::test]
async fn a_key_whose_budget_cannot_fit_a_call_leaves_nothing_reserved_against_the_tenants() {
    let app = TestApp::spawn().await;
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 100 })).await;
    // Open (nothing spent), but smaller than any call's worst case: the output ceiling alone costs 0.10.
    let (_, key) = key_with_budget(&app, &tenant, json!("0.05")).await;
    let session = app.create_session(&key).await;

    let events = app.stream_turn(&key, &session, "Hello?").await;
    let last = events.last().unwrap();
    assert_eq!((last.event.as_str(), &last.data["code"]), ("run.failed", &json!("budget_exhausted")), "{events:#?}");
    assert!(last.data.to_string().contains("this API key's monthly budget"), "{last:?}");
    assert_eq!(chat_requests(&app), 0, "no provider was contacted");
    // The tenant's budget, reserved first, gave back what the key's refusal left it holding.
    assert_eq!(reserved(&app, &tenant).await, Decimal::ZERO);
}

#[tokio::test]
async fn a_keys_budget_is_set_changed_and_removed_audited_and_bad_amounts_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let patch = |token: &str, id: &str, body: Value| {
        app.client.patch(app.url(&format!("/api/v1/api-keys/{id}"))).bearer_auth(token).json(&body).send()
    };
    let admin = tenant.admin_key.as_str();
    assert!(listed_key(&app, &tenant, &key_id).await["monthly_budget_usd"].is_null());
    assert!(key_budget(&app, &tenant, &key_id).await.is_none(), "no budget applies to the key");

    let response = patch(admin, &key_id, json!({ "monthly_budget_usd": "12.50" })).await.unwrap();
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["id"], key_id.as_str());
    assert_eq!(usd(&changed["monthly_budget_usd"]), Decimal::new(1250, 2), "{changed}");
    assert!(changed.get("key").is_none(), "never the token again");
    // The report shows the key's budget before it spent anything.
    let line = key_budget(&app, &tenant, &key_id).await.unwrap();
    assert_eq!(usd(&line["limit_usd"]), Decimal::new(1250, 2), "{line}");
    assert_eq!(usd(&line["remaining_usd"]), Decimal::new(1250, 2), "{line}");

    let changed: Value = patch(admin, &key_id, json!({ "monthly_budget_usd": 7 })).await.unwrap().json().await.unwrap();
    assert_eq!(usd(&changed["monthly_budget_usd"]), Decimal::from(7), "{changed}");
    let unchanged: Value = patch(admin, &key_id, json!({})).await.unwrap().json().await.unwrap();
    assert_eq!(usd(&unchanged["monthly_budget_usd"]), Decimal::from(7), "an empty change changes nothing");

    for bad in [
        json!({ "monthly_budget_usd": -1 }),
        json!({ "monthly_budget_usd": "-0.01" }),
        json!({ "monthly_budget_usd": "ten" }),
        json!({ "monthly_budget_usd": "1e3" }),
        json!({ "monthly_budget_usd": "0.0000001" }),
        json!({ "monthly_budget_usd": "100000000" }),
        json!({ "monthly_budget_usd": 1e12 }),
        json!({ "monthly_budget_usd": [12] }),
        json!({ "name": "renamed" }),
    ] {
        assert_error(patch(admin, &key_id, bad).await.unwrap(), 422, "invalid_request").await;
    }
    assert_eq!(usd(&listed_key(&app, &tenant, &key_id).await["monthly_budget_usd"]), Decimal::from(7));

    let cleared: Value =
        patch(admin, &key_id, json!({ "monthly_budget_usd": null })).await.unwrap().json().await.unwrap();
    assert!(cleared["monthly_budget_usd"].is_null(), "{cleared}");
    assert!(key_budget(&app, &tenant, &key_id).await.is_none(), "no budget applies to the key again");

    // Each change is audited once, with the budget before and after; refused and empty ones are not.
    let audit = app.get_json("/api/v1/audit-events", admin).await;
    let audited: Vec<(Value, Value)> = audit["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "api_key.updated")
        .inspect(|event| assert_eq!(event["target_id"], key_id.as_str()))
        .map(|event| {
            (event["details"]["previous_monthly_budget_usd"].clone(), event["details"]["monthly_budget_usd"].clone())
        })
        .collect();
    assert_eq!(
        audited,
        [(json!("7"), json!(null)), (json!("12.5"), json!("7")), (json!(null), json!("12.5"))],
        "newest first"
    );

    // Only an admin changes a key, and only its own tenant's.
    let forbidden = patch(&chat_key, &key_id, json!({ "monthly_budget_usd": 1 })).await.unwrap();
    assert_error(forbidden, 403, "forbidden").await;
    let other = app.create_tenant("globex").await;
    let theirs = patch(&other.admin_key, &key_id, json!({ "monthly_budget_usd": 1 })).await.unwrap();
    assert_error(theirs, 404, "not_found").await;
    let nobody = patch(admin, &uuid::Uuid::now_v7().to_string(), json!({ "monthly_budget_usd": 1 })).await.unwrap();
    assert_error(nobody, 404, "not_found").await;
    assert!(listed_key(&app, &tenant, &key_id).await["monthly_budget_usd"].is_null());
}
