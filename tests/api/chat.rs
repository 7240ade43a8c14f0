//! Conversations and chat turns through the chat API, with the offline answerer.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, assert_well_formed, read_sse, streamed_text};

#[tokio::test]
async fn conversations_are_created_listed_filtered_renamed_archived_and_deleted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    let first = app.create_session(key).await;
    let workspace = app.create_workspace(key, "ide").await;
    let second: Value = app
        .post("/api/v1/sessions", key, &json!({"session_type": "workspace", "workspace_id": workspace, "title": "IDE"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["session_type"], "workspace");

    let listed: Value = app.get_json("/api/v1/sessions", key).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
    let filtered: Value = app
        .get(&format!("/api/v1/sessions?session_type=workspace&workspace_id={workspace}"), key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["sessions"][0]["id"], second["id"]);

    let renamed = app.client.patch(app.url(&format!("/api/v1/sessions/{first}"))).bearer_auth(key);
    let renamed: Value =
        renamed.json(&json!({"title": "Renamed", "archived": true})).send().await.unwrap().json().await.unwrap();
    assert_eq!(renamed["title"], "Renamed");
    assert_eq!(renamed["archived"], true);
    let archived: Value = app.get_json("/api/v1/sessions?archived=true", key).await;
    assert_eq!(archived["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(archived["sessions"][0]["id"], first.as_str());

    assert_eq!(app.delete(&format!("/api/v1/sessions/{first}"), key).send().await.unwrap().status(), 204);
    let gone = app.get(&format!("/api/v1/sessions/{first}"), key).send().await.unwrap();
    assert_error(gone, 404, "not_found").await;

    let bad = app.post("/api/v1/sessions", key, &json!({"session_type": "workspace"})).send().await.unwrap();
    assert_error(bad, 422, "invalid_request").await;
    let bad = app.post("/api/v1/sessions", key, &json!({"session_type": "party"})).send().await.unwrap();
    assert_error(bad, 422, "invalid_request").await;
}

#[tokio::test]
async fn a_turn_without_any_provider_key_streams_an_offline_answer_and_records_everything() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let session = app.create_session(&tenant.admin_key).await;

    let events = app.stream_turn(&tenant.admin_key, &session, "How do I rotate an API key?\nThanks").await;
    let run_id = events[0].data["run_id"].as_str().unwrap().to_owned();
    assert_well_formed(&events, &run_id, 1);
    let names: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.started"));
    assert_eq!(&names[names.len() - 2..], ["usage", "run.completed"]);
    assert!(names.iter().filter(|name| **name == "message.delta").count() > 10, "streamed in pieces: {names:?}");
    assert_eq!(events[0].data["provider"], "local");
    let text = streamed_text(&events);
    assert!(text.starts_with("[Offline answer"), "{text}");
    assert!(text.contains("How do I rotate an API key?"));
    let usage = &events[names.len() - 2].data;
    assert_eq!(usage["estimated"], true);
    assert!(usage["input_tokens"].as_u64().unwrap() > 0 && usage["output_tokens"].as_u64().unwrap() > 0);

    let messages: Value = app
        .get(&format!("/api/v1/sessions/{session}/messages"), &tenant.admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = messages["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], text.as_str(), "the recorded answer is exactly the streamed text");
    assert_eq!(messages[1]["provider_used"], "local");
    assert_eq!(messages[1]["is_byok"], false);
    assert_eq!(messages[1]["output_tokens"], usage["output_tokens"]);
    assert_eq!(messages[1]["total_tokens"], usage["total_tokens"]);

    let session: Value = app.get_json(&format!("/api/v1/sessions/{session}"), &tenant.admin_key).await;
    assert_eq!(session["title"], "How do I rotate an API key?", "titled from the first message's first line");

    let run: Value = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(run["status"], "succeeded");
    assert!(run["latency_ms"].is_number() && run["first_token_ms"].is_number());

    let recorded: (i64, String, bool) = sqlx::query_as(
        "SELECT input_tokens::bigint + output_tokens, token_source, is_byok FROM usage_records \
         WHERE run_id = $1::uuid AND operation = 'chat'",
    )
    .bind(&run_id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(recorded, (usage["total_tokens"].as_i64().unwrap(), "estimated".to_owned(), false));
    // The question's vector is the run's usage too: the local model's tokens, at no cost.
    let embedded: (String, i32, String) = sqlx::query_as(
        "SELECT model, input_tokens, cost_usd::text FROM usage_records WHERE run_id = $1::uuid AND operation = 'embedding'",
    )
    .bind(&run_id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(embedded.0, "all-minilm-l6-v2");
    assert!(embedded.1 > 0 && embedded.2.parse::<f64>() == Ok(0.0), "{embedded:?}");
}

#[tokio::test]
async fn without_an_event_stream_the_call_waits_and_returns_the_message_and_run() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let session = app.create_session(&tenant.admin_key).await;
    let response = app
        .post(&format!("/api/v1/sessions/{session}/messages"), &tenant.admin_key, &json!({"content": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["run"]["status"], "succeeded");
    assert_eq!(body["message"]["role"], "assistant");
    assert!(body["message"]["content"].as_str().unwrap().contains("\"Hello\""));
    assert_eq!(body["user_message"]["content"], "Hello");
    assert_eq!(body["message"]["run_id"], body["run"]["id"]);
}

#[tokio::test]
async fn a_finished_runs_events_replay_in_full_or_after_last_event_id() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let session = app.create_session(&tenant.admin_key).await;
    let live = app.stream_turn(&tenant.admin_key, &session, "Replay me").await;
    let run_id = live[0].data["run_id"].as_str().unwrap().to_owned();

    let replayed =
        read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap()).await;
    let as_pairs =
        |events: &[crate::helpers::SseEvent]| events.iter().map(|e| (e.id.clone(), e.data.clone())).collect::<Vec<_>>();
    assert_eq!(as_pairs(&replayed), as_pairs(&live));

    let resumed = app
        .get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key)
        .header("last-event-id", "5")
        .send()
        .await
        .unwrap();
    let resumed = read_sse(resumed).await;
    assert_well_formed(&resumed, &run_id, 6);
    assert_eq!(as_pairs(&resumed), as_pairs(&live[5..]));

    let bad = app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).header("last-event-id", "x");
    assert_error(bad.send().await.unwrap(), 400, "invalid_last_event_id").await;
}

#[tokio::test]
async fn bad_turns_are_refused_and_record_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let session = app.create_session(&tenant.admin_key).await;
    let path = format!("/api/v1/sessions/{session}/messages");
    assert_error(
        app.post(&path, &tenant.admin_key, &json!({"content": "   "})).send().await.unwrap(),
        422,
        "invalid_request",
    )
    .await;
    let missing = format!("/api/v1/sessions/{}/messages", uuid::Uuid::now_v7());
    assert_error(
        app.post(&missing, &tenant.admin_key, &json!({"content": "hi"})).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let (_, runs_key) = app.create_key(&tenant, &["runs"]).await;
    assert_error(app.post(&path, &runs_key, &json!({"content": "hi"})).send().await.unwrap(), 403, "forbidden").await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages").fetch_one(&app.owner_db).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn two_tenants_never_see_each_others_conversations_or_runs() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let session = app.create_session(&acme.admin_key).await;
    let events = app.stream_turn(&acme.admin_key, &session, "secret plans").await;
    let run_id = events[0].data["run_id"].as_str().unwrap().to_owned();

    let listed: Value = app.get_json("/api/v1/sessions", &globex.admin_key).await;
    assert!(listed["sessions"].as_array().unwrap().is_empty());
    for path in [
        format!("/api/v1/sessions/{session}"),
        format!("/api/v1/sessions/{session}/messages"),
        format!("/api/v1/runs/{run_id}"),
        format!("/api/v1/runs/{run_id}/events"),
    ] {
        assert_error(app.get(&path, &globex.admin_key).send().await.unwrap(), 404, "not_found").await;
    }
    let post = app.post(&format!("/api/v1/sessions/{session}/messages"), &globex.admin_key, &json!({"content": "hi"}));
    assert_error(post.send().await.unwrap(), 404, "not_found").await;
    let cancel = app.post(&format!("/api/v1/runs/{run_id}/cancel"), &globex.admin_key, &json!({}));
    assert_error(cancel.send().await.unwrap(), 404, "not_found").await;
    let delete = app.delete(&format!("/api/v1/sessions/{session}"), &globex.admin_key);
    assert_error(delete.send().await.unwrap(), 404, "not_found").await;
    assert_eq!(app.get(&format!("/api/v1/sessions/{session}"), &acme.admin_key).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_message_retried_with_its_idempotency_key_is_one_turn_and_the_key_cannot_ask_another_question() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let key = &tenant.admin_key;
    let session = app.create_session(key).await;
    let path = format!("/api/v1/sessions/{session}/messages");
    let ask = |content: &str, idempotency_key: &str| {
        app.post(&path, key, &json!({ "content": content })).header("idempotency-key", idempotency_key.to_owned())
    };

    let first: Value = ask("What is Switchboard?", "question-1").send().await.unwrap().json().await.unwrap();
    // The network dropped the answer; the client asks again with the same key, streamed this time.
    let again =
        read_sse(ask("What is Switchboard?", "question-1").header("accept", "text/event-stream").send().await.unwrap())
            .await;
    assert_eq!(again[0].data["run_id"], first["run"]["id"], "the retry follows the first turn's run");
    assert_eq!(again.last().unwrap().event, "run.completed");
    let messages = app.messages(key, &session).await;
    assert_eq!(messages.len(), 2, "one question, one answer: {messages:#?}");
    assert_eq!(messages[0]["id"], first["user_message"]["id"]);

    let reused = ask("Something else entirely", "question-1").send().await.unwrap();
    assert_error(reused, 422, "idempotency_key_reused").await;
    let too_long = ask("What is Switchboard?", &"k".repeat(201)).send().await.unwrap();
    assert_error(too_long, 400, "invalid_request").await;
    assert_eq!(app.messages(key, &session).await.len(), 2, "nothing refused was recorded");
}
