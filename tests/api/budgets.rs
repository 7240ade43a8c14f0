//! Budgets that hold: a used-up budget refuses a turn with 402 before any provider is called; concurrent
//! turns never spend past a budget together; failed, cancelled and killed turns give back what they
//! reserved; crossing a threshold is audited.

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

fn usd(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or("0")).unwrap()
}

async fn tenant_budget(app: &TestApp, tenant: &TestTenant) -> Value {
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
    let app = TestApp::spawn().await;
    // About ten turns' worth: each costs roughly a tenth of a dollar, and reserves a bit more.
    let budget = Decimal::from(2);
    let tenant = metered_tenant(&app, "acme", json!({ "monthly_budget_usd": 2 })).await;
    let mut turns = Vec::new();
    for number in 0..50 {
        let session = app.create_session(&tenant.admin_key).await;
        let key = tenant.admin_key.clone();
        let app = &app;
        turns.push(async move {
            let request = app
                .post(
                    &format!("/api/v1/sessions/{session}/messages"),
                    &key,
                    &json!({ "content": format!("Question {number}") }),
                )
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
        });
    }
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
