//! The generation is decoupled from the connection: a client that drops the stream can resume exactly
//! where it was, and a cancelled run stops and says so.

use std::time::Duration;

use futures::StreamExt as _;
use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, assert_well_formed, read_sse, streamed_text, to_sse_event};

fn slow_reply(words: usize, delay_ms: u64) -> Reply {
    let text: Vec<String> = (0..words).map(|index| format!("word{index}")).collect();
    Reply { text: text.join(" "), chunk_delay: Duration::from_millis(delay_ms), ..Reply::default() }
}

/// Opens a turn's stream and reads its first `count` events, then drops the connection.
async fn read_first_events(app: &TestApp, key: &str, session: &str, count: usize) -> Vec<SseEvent> {
    let response = app
        .post(&format!("/api/v1/sessions/{session}/messages"), key, &json!({"content": "tell me a long story"}))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut events = Vec::new();
    while events.len() < count {
        events.push(to_sse_event(stream.next().await.unwrap().unwrap()));
    }
    events
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_resumes_with_last_event_id_without_loss_or_duplication() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "openai"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    app.mock.push(slow_reply(40, 15));

    let first = read_first_events(&app, &tenant.admin_key, &session, 6).await;
    let run_id = first[0].data["run_id"].as_str().unwrap().to_owned();
    let last_seen = first.last().unwrap().id.clone();

    // The run goes on without its client; reconnecting from the last event gets exactly the rest.
    let rest = app
        .get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key)
        .header("last-event-id", &last_seen)
        .send()
        .await
        .unwrap();
    let rest = read_sse(rest).await;
    let whole: Vec<SseEvent> = first.iter().chain(&rest).cloned().collect();
    assert_well_formed(&whole, &run_id, 1);
    assert_eq!(whole.last().unwrap().event, "run.completed");

    let expected: Vec<String> = (0..40).map(|index| format!("word{index}")).collect();
    assert_eq!(streamed_text(&whole), expected.join(" "));
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["content"], expected.join(" "), "the run finished and was recorded without its client");
}

/// Deltas are stored joined (a row per write, not per token), yet a finished run's stream, replayed from
/// any `Last-Event-ID`, is exactly the live stream from there: the same ids, events and text.
#[tokio::test]
async fn a_finished_run_replays_exactly_as_it_streamed_from_every_last_event_id() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "openai"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    let words: Vec<String> = (0..60).map(|index| format!("naïve{index}🦀")).collect();
    app.mock.push(Reply { text: words.join(" "), chunk_delay: Duration::from_millis(5), ..Reply::default() });

    let live = app.stream_turn(&tenant.admin_key, &session, "tell me a story").await;
    let run_id = live[0].data["run_id"].as_str().unwrap().to_owned();
    assert_well_formed(&live, &run_id, 1);
    assert_eq!(streamed_text(&live), words.join(" "));
    let deltas = live.iter().filter(|event| event.event == "message.delta").count();

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM run_events WHERE run_id = $1::uuid")
        .bind(&run_id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert!(rows < i64::try_from(deltas / 4).unwrap(), "{deltas} deltas stored in {rows} rows");

    for after in 0..=live.len() {
        let mut request = app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key);
        if after > 0 {
            request = request.header("last-event-id", after.to_string());
        }
        let replayed = read_sse(request.send().await.unwrap()).await;
        assert_eq!(replayed, live[after..].to_vec(), "replayed after event {after}");
    }
}

#[tokio::test]
async fn a_run_whose_client_left_still_completes_and_is_recorded() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "anthropic"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    app.mock.push(slow_reply(20, 10));
    let first = read_first_events(&app, &tenant.admin_key, &session, 2).await;
    let run_id = first[0].data["run_id"].as_str().unwrap().to_owned();

    // Waiting on the full replay (no Last-Event-ID) proves the run reached its end on its own.
    let replay =
        read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap()).await;
    assert_well_formed(&replay, &run_id, 1);
    assert_eq!(replay.last().unwrap().event, "run.completed");
    let run: Value = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(run["status"], "succeeded");
}

#[tokio::test]
async fn cancel_stops_a_run_records_run_cancelled_and_keeps_the_partial_answer() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "gemini"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    app.mock.push(slow_reply(400, 25));

    let first = read_first_events(&app, &tenant.admin_key, &session, 4).await;
    let run_id = first[0].data["run_id"].as_str().unwrap().to_owned();
    let cancelled =
        app.post(&format!("/api/v1/runs/{run_id}/cancel"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["run"]["status"], "cancelled");
    let partial = cancelled["message"]["content"].as_str().unwrap().to_owned();
    assert_eq!(cancelled["message"]["status"], "incomplete");
    assert!(partial.starts_with("word0") && partial.split(' ').count() < 400, "{partial}");

    let replay =
        read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap()).await;
    assert_well_formed(&replay, &run_id, 1);
    assert_eq!(replay.last().unwrap().event, "run.cancelled");
    assert_eq!(streamed_text(&replay), partial, "the kept answer is exactly what was streamed");

    let again = app.post(&format!("/api/v1/runs/{run_id}/cancel"), &tenant.admin_key, &json!({})).send().await.unwrap();
    crate::helpers::assert_error(again, 409, "run_ended").await;
}

#[tokio::test]
async fn a_run_whose_process_died_is_closed_as_interrupted_and_its_followers_are_released() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let session = app.create_session(&tenant.admin_key).await;
    // A run as a crashed process leaves it: the user's message, the start event, no end, an old heartbeat.
    let run_id = uuid::Uuid::now_v7();
    let tenant_id = tenant.id;
    for statement in [
        "INSERT INTO runs (id, tenant_id, session_id, kind, status, provider, model, heartbeat_at) \
         VALUES ($1, $2, $3::uuid, 'chat', 'running', 'openai', 'gpt-x', now() - interval '10 minutes')",
        "INSERT INTO chat_messages (id, tenant_id, session_id, run_id, role, content) \
         VALUES (gen_random_uuid(), $2, $3::uuid, $1, 'user', 'lost in a crash?')",
        "INSERT INTO run_events (tenant_id, run_id, seq, event_type, data) \
         VALUES ($2, $1, 1, 'run.started', jsonb_build_object('type', 'run.started', 'provider', 'openai', 'model', 'gpt-x', 'session_id', $3::text))",
    ] {
        sqlx::query(statement).bind(run_id).bind(tenant_id).bind(&session).execute(&app.owner_db).await.unwrap();
    }
    let fresh = app.create_session(&tenant.admin_key).await;
    app.stream_turn(&tenant.admin_key, &fresh, "a healthy run").await;

    assert_eq!(app.engine.sweep_stale_runs(Duration::from_secs(60)).await.unwrap(), 1, "only the dead run");
    let replay =
        read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap()).await;
    assert_well_formed(&replay, &run_id.to_string(), 1);
    assert_eq!(replay.last().unwrap().data["code"], "interrupted");
    let run: Value = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(app.messages(&tenant.admin_key, &session).await[0]["content"], "lost in a crash?");
    assert_eq!(app.engine.sweep_stale_runs(Duration::from_secs(60)).await.unwrap(), 0);
}
