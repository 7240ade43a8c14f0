//! Agent runs for the workspace IDE: queued in PostgreSQL, claimed by workers (`SKIP LOCKED`), executed
//! in the background with the workspace tools; events replay; cancel; a dead worker's run is closed.

use std::time::Duration;

use futures::StreamExt as _;
use mock_upstream::{Reply, ToolCall};
use serde_json::{Value, json};
use switchboard::runs;

use crate::helpers::{SseEvent, TestApp, TestTenant, read_sse};

async fn workspace_tenant(app: &TestApp) -> (TestTenant, String) {
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    let response = app.post("/api/v1/workspaces", &tenant.admin_key, &json!({ "name": "shop" })).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let workspace: Value = response.json().await.unwrap();
    (tenant, workspace["id"].as_str().unwrap().to_owned())
}

async fn put_file(app: &TestApp, key: &str, workspace: &str, path: &str, content: &str) {
    let url = app.url(&format!("/api/v1/workspaces/{workspace}/files/{path}"));
    let response = app.client.put(url).bearer_auth(key).json(&json!({ "content": content })).send().await.unwrap();
    assert_eq!(response.status(), 204);
}

async fn start_run(app: &TestApp, key: &str, workspace: &str, instruction: &str) -> Value {
    let path = format!("/api/v1/workspaces/{workspace}/runs");
    let response = app.post(&path, key, &json!({ "instruction": instruction })).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    body["run"].clone()
}

/// Every event of the run from the start, once it has ended.
async fn events(app: &TestApp, key: &str, run_id: &str) -> Vec<SseEvent> {
    read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap()).await
}

fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall { id: String::new(), name: name.to_owned(), arguments }
}

#[tokio::test]
async fn a_workspace_run_completes_in_the_background_with_its_tools_and_its_events_replay() {
    let app = TestApp::spawn().await;
    app.engine.start_workers(2);
    let (tenant, workspace) = workspace_tenant(&app).await;
    put_file(&app, &tenant.admin_key, &workspace, "src/main.rs", "fn main() {\n    println!(\"helo\");\n}\n").await;
    app.mock.push(Reply {
        tool_calls: vec![
            call("workspace__list_files", json!({})),
            call("workspace__search_files", json!({ "query": "HELO" })),
        ],
        ..Reply::default()
    });
    app.mock.push(Reply {
        tool_calls: vec![call(
            "workspace__write_file",
            json!({ "path": "src/main.rs", "content": "fn main() {\n    println!(\"hello\");\n}\n", "summary": "Fix the typo" }),
        )],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "I proposed a fix for the typo.".into(), ..Reply::default() });

    let run = start_run(&app, &tenant.admin_key, &workspace, "Fix the typo in the greeting").await;
    assert_eq!(run["status"], "queued");
    assert_eq!(run["kind"], "agent");
    let run_id = run["id"].as_str().unwrap();
    let first = events(&app, &tenant.admin_key, run_id).await;
    assert_eq!(first.last().unwrap().event, "run.completed", "{first:#?}");
    let completed: Vec<&SseEvent> = first.iter().filter(|event| event.event == "tool_call.completed").collect();
    assert_eq!(completed.len(), 3, "{first:#?}");

    // The model saw the workspace: the file list and the matching line.
    let requests = app.mock.requests();
    let second = requests.iter().filter(|r| r.path.ends_with("/chat/completions")).nth(1).unwrap().body.to_string();
    assert!(second.contains("src/main.rs") && second.contains("helo"), "{second}");

    let patches = app.get_json(&format!("/api/v1/runs/{run_id}/patches"), &tenant.admin_key).await;
    assert_eq!(patches["patches"][0]["path"], "src/main.rs");
    assert_eq!(patches["patches"][0]["summary"], "Fix the typo");
    assert!(patches["patches"][0]["content"].as_str().unwrap().contains("hello"));

    // A finished run's events replay the same, and resume after any of them.
    let again = events(&app, &tenant.admin_key, run_id).await;
    assert_eq!(
        again.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        first.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    let rest = read_sse(
        app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key)
            .header("last-event-id", "3")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest[0].id, "4");
    let status = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(status["status"], "succeeded");
    assert!(status["usage"]["total_tokens"].as_i64().unwrap() > 0, "{status}");

    // Another tenant sees neither the workspace nor the run.
    let other = app.create_tenant("other").await;
    let response = app
        .post(&format!("/api/v1/workspaces/{workspace}/runs"), &other.admin_key, &json!({ "instruction": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.get(&format!("/api/v1/runs/{run_id}/patches"), &other.admin_key).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn two_engines_on_one_database_never_run_the_same_job() {
    let first = TestApp::spawn().await;
    let second = first.restarted().await;
    first.engine.start_workers(2);
    second.engine.start_workers(2);
    let (tenant, workspace) = workspace_tenant(&first).await;
    let mut run_ids = Vec::new();
    for number in 0..8 {
        let app = if number % 2 == 0 { &first } else { &second };
        let run = start_run(app, &tenant.admin_key, &workspace, &format!("Task {number}")).await;
        run_ids.push(run["id"].as_str().unwrap().to_owned());
    }
    for run_id in &run_ids {
        let all = events(&first, &tenant.admin_key, run_id).await;
        assert_eq!(all.last().unwrap().event, "run.completed", "{all:#?}");
        assert_eq!(all.iter().filter(|event| event.event == "run.started").count(), 1);
    }
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM runs WHERE kind = 'agent'").fetch_all(&first.owner_db).await.unwrap();
    assert_eq!(attempts, vec![1; 8], "every run claimed exactly once");
    let claimers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT claimed_by FROM runs WHERE kind = 'agent'")
        .fetch_all(&first.owner_db)
        .await
        .unwrap();
    assert!(!claimers.is_empty());
    let model_calls = first.mock.requests().iter().filter(|r| r.path.ends_with("/chat/completions")).count();
    assert_eq!(model_calls, 8, "one model call per run, none twice");
}

/// The tenant's running runs as admission reads them (the count the triggers on `runs` keep, migration
/// 0051) and as the runs themselves say.
async fn running_counted(app: &TestApp, tenant: &TestTenant) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT coalesce(sum(running), 0) FROM tenant_running_runs WHERE tenant_id = $1), \
                (SELECT count(*) FROM runs WHERE tenant_id = $1 AND status = 'running')",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_queued_run_can_be_cancelled_and_a_dead_workers_run_is_closed_as_failed() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = workspace_tenant(&app).await;

    // No worker yet: the run waits in the queue, and cancelling it ends it for good.
    let cancelled = start_run(&app, &tenant.admin_key, &workspace, "Never mind").await;
    let cancelled_id = cancelled["id"].as_str().unwrap();
    let response =
        app.post(&format!("/api/v1/runs/{cancelled_id}/cancel"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // A worker of another process claimed this one, then died: its heartbeat stops.
    let orphan = start_run(&app, &tenant.admin_key, &workspace, "Orphaned").await;
    let orphan_id = orphan["id"].as_str().unwrap();
    let mut transaction = app.app_db.begin().await.unwrap();
    let dead_process = runs::ExecutorId::random();
    let claimed = runs::store::claim_queued(&mut transaction, "a-worker-that-dies", dead_process).await.unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(
        claimed.map(|(id, _)| id.to_string()),
        Some(orphan_id.to_owned()),
        "the oldest queued run, skipping the cancelled one"
    );
    assert_eq!(running_counted(&app, &tenant).await, (1, 1), "the claim, bound to no tenant, is counted");
    // Its heartbeat is fresh, but no process holds its executor's lock: the sweeper closes it at once.
    assert_eq!(app.engine.sweep_stale_runs(Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(running_counted(&app, &tenant).await, (0, 0), "the sweeper's close is counted");
    let closed = events(&app, &tenant.admin_key, orphan_id).await;
    assert_eq!(closed.last().unwrap().event, "run.failed");
    assert_eq!(closed.last().unwrap().data["code"], "interrupted");

    // Workers start: the next run is executed; the cancelled one never is.
    app.engine.start_workers(1);
    let next = start_run(&app, &tenant.admin_key, &workspace, "Do it").await;
    let done = events(&app, &tenant.admin_key, next["id"].as_str().unwrap()).await;
    assert_eq!(done.last().unwrap().event, "run.completed");
    let status = app.get_json(&format!("/api/v1/runs/{cancelled_id}"), &tenant.admin_key).await;
    assert_eq!(status["status"], "cancelled");
    assert_eq!(running_counted(&app, &tenant).await, (0, 0), "the worker's run, claimed and ended, is counted");
    assert_eq!(app.mock.requests().iter().filter(|r| r.path.ends_with("/chat/completions")).count(), 1);
}

#[tokio::test]
async fn a_worker_killed_mid_run_leaves_a_run_that_is_closed_as_failed() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = workspace_tenant(&app).await;
    let words: Vec<String> = (0..200).map(|i| format!("word{i}")).collect();
    app.mock.push(Reply { text: words.join(" "), chunk_delay: Duration::from_millis(50), ..Reply::default() });
    let worker = app.doomed_worker().await;
    let run = start_run(&app, &tenant.admin_key, &workspace, "Write a long answer").await;
    let run_id = run["id"].as_str().unwrap().to_owned();

    // Wait until the worker is mid-answer (text is streaming), then kill it.
    let response = app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    while let Some(event) = stream.next().await {
        if event.unwrap().event == "message.delta" {
            break;
        }
    }
    drop(stream);
    worker.crash();
    let status = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(status["status"], "running", "nothing recorded the crash");

    // Its connection closed with it, and so its executor lock: the sweeper of a surviving process closes
    // the run at its next round, long before its heartbeat would be old.
    sweep_until_closed(&app).await;
    let all = events(&app, &tenant.admin_key, &run_id).await;
    assert_eq!(all.last().unwrap().event, "run.failed", "{all:#?}");
    assert_eq!(all.last().unwrap().data["code"], "interrupted");
    let status = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(status["status"], "failed");
}

#[tokio::test]
async fn after_a_crash_no_event_number_is_reused_and_the_streamed_answer_is_kept() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = workspace_tenant(&app).await;
    let key = &tenant.admin_key;
    let words: Vec<String> = (0..400).map(|i| format!("word{i}")).collect();
    app.mock.push(Reply { text: words.join(" "), chunk_delay: Duration::from_millis(30), ..Reply::default() });
    let worker = app.doomed_worker().await;
    let run = start_run(&app, key, &workspace, "Write a long answer").await;
    let run_id = run["id"].as_str().unwrap().to_owned();

    // A follower sees a few deltas (some not yet written: they are written in batches), then the
    // process dies.
    let response = app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        if event.event == "message.delta" {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            seen.push((event.id.parse::<i64>().unwrap(), data["text"].as_str().unwrap().to_owned()));
            if seen.len() == 20 {
                break;
            }
        }
    }
    drop(stream);
    worker.crash();
    sweep_until_closed(&app).await;

    // Resuming after the last event seen gives the end of the run, under a number never used before.
    let last_seen = seen.last().unwrap().0;
    let resumed = app.get(&format!("/api/v1/runs/{run_id}/events"), key).header("last-event-id", last_seen.to_string());
    let rest = read_sse(resumed.send().await.unwrap()).await;
    let terminal = rest.last().expect("the terminal event after the last one seen");
    assert_eq!((terminal.event.as_str(), &terminal.data["code"]), ("run.failed", &json!("interrupted")));
    assert!(terminal.id.parse::<i64>().unwrap() > last_seen);
    let stored = events(&app, key, &run_id).await;
    for (seq, text) in &seen {
        let same_number = stored.iter().find(|event| event.id == seq.to_string());
        assert!(
            same_number.is_none_or(|event| event.event == "message.delta" && event.data["text"] == text.as_str()),
            "seq {seq} means what the follower saw: {same_number:?}"
        );
    }

    // What was written of the answer is kept, as an incomplete message the run names.
    let kept_id = terminal.data["message_id"].as_str().expect("the partial answer is kept");
    let session = run["session_id"].as_str().unwrap();
    let messages = app.messages(key, session).await;
    let kept = messages.iter().find(|message| message["id"] == kept_id).unwrap();
    assert_eq!(kept["status"], "incomplete");
    let text = kept["content"].as_str().unwrap();
    assert!(!text.is_empty() && words.join(" ").starts_with(text), "{text}");
}

#[tokio::test]
async fn cancelling_a_run_that_another_process_executes_stops_it_there() {
    let first = TestApp::spawn().await;
    let second = first.restarted().await;
    second.engine.start_workers(1);
    let (tenant, workspace) = workspace_tenant(&first).await;
    // An answer that would stream for two minutes.
    let words: Vec<String> = (0..600).map(|i| format!("word{i}")).collect();
    first.mock.push(Reply { text: words.join(" "), chunk_delay: Duration::from_millis(200), ..Reply::default() });
    let run = start_run(&first, &tenant.admin_key, &workspace, "Write at length").await;
    let run_id = run["id"].as_str().unwrap().to_owned();

    // Wait until the second process streams the answer.
    let response = first.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    while let Some(event) = stream.next().await {
        if event.unwrap().event == "message.delta" {
            break;
        }
    }
    drop(stream);

    // Cancelled through the first process, which is not executing it.
    let response =
        first.post(&format!("/api/v1/runs/{run_id}/cancel"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(first.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await["status"], "cancelled");
    // The executing process is told at once (a notice) and stops the run as a local cancel would,
    // well within a minute (the answer needs two): no turn is left for shutdown to cut.
    assert!(second.engine.shutdown(Duration::from_secs(60)).await, "the second process stopped the cancelled run");
    let all = events(&first, &tenant.admin_key, &run_id).await;
    let terminal: Vec<&str> = all
        .iter()
        .filter(|e| e.event.starts_with("run.") && e.event != "run.started")
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(terminal, ["run.cancelled"], "{all:#?}");
}

/// Sweeps until the one run of a crashed worker is closed: PostgreSQL drops a dead connection's locks
/// as soon as it sees the socket close, which is not at the very instant the process dies.
async fn sweep_until_closed(app: &TestApp) {
    let mut closed = 0;
    crate::service_process::wait_for("the dead worker's run to be closed", async || {
        closed += app.engine.sweep_stale_runs(Duration::from_secs(60)).await.unwrap();
        closed > 0
    })
    .await;
    assert_eq!(closed, 1);
}
