//! The real binary outlives its embedded PostgreSQL: while the database is down every answer is a prompt
//! 503 `database_unavailable` (never a 500, never a hang), the server is started again on its own, and the
//! service serves tenants and turns once more without being restarted itself. What was answered before the
//! crash is still there.

use std::net::TcpListener;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard::db::embedded::Layout;

use crate::helpers::{assert_error, read_sse, streamed_text};
use crate::service_process::{
    call, create_tenant, free_port, fresh_data_dir, is_running, postmaster, start_service, wait_for, wait_until_ready,
};

/// Takes the killed server's port, so that it cannot be started again until the test lets go: the
/// outage then lasts as long as the test needs to observe it. `None` if the server was back first.
async fn hold_port(port: u16) -> Option<TcpListener> {
    // The port is free once the killed process has fully exited, a moment after the signal.
    for _ in 0..200 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// An answer given while the database may be down: 503 `database_unavailable` with a `Retry-After`, or,
/// when `may_be_back`, a 200; never anything else.
async fn assert_unavailable_or_ok(response: reqwest::Response, may_be_back: bool) {
    if may_be_back && response.status() == 200 {
        return;
    }
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    assert_error(response, 503, "database_unavailable").await;
}

#[tokio::test]
async fn the_service_survives_its_embedded_postgres_being_killed() {
    let data_dir = fresh_data_dir("restart");
    let cluster_dir = Layout::for_data_dir(&data_dir).unwrap().cluster_dir;
    let service_port = free_port();
    let base = format!("http://127.0.0.1:{service_port}");
    let mut service = start_service(&data_dir, service_port);
    // Generous: a hang fails the test here instead of stalling it, and no speed is asserted.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    wait_until_ready(&mut service, &data_dir, &base).await;

    let key = create_tenant(&base, &data_dir, "survivor").await;
    let sessions = format!("{base}/api/v1/sessions");
    assert_eq!(client.get(&sessions).bearer_auth(&key).send().await.unwrap().status(), 200);

    // An answer through `/v1`, whose start commits without waiting for the disk (`engine::Receipt`): the
    // answer's record takes it there before the client has the answer, so the crash right after keeps it.
    let asked = json!({ "model": "switchboard-extractive", "messages": [{ "role": "user", "content": "Kept?" }] });
    let completion = call(&base, Method::POST, "/v1/chat/completions", &key, Some(asked)).await;
    let answered = completion["id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).expect("a completion");
    let answered_run = uuid::Uuid::parse_str(answered).unwrap();

    let (postgres, port) = postmaster(&cluster_dir);
    kill(postgres, Signal::SIGKILL).unwrap();
    let held = hold_port(port).await;
    let may_be_back = held.is_none();

    let ready = client.get(format!("{base}/readyz")).send().await.expect("/readyz answers while the database is down");
    assert_unavailable_or_ok(ready, may_be_back).await;
    let listed = client.get(&sessions).bearer_auth(&key).send().await.expect("a tenant request answers");
    assert_unavailable_or_ok(listed, may_be_back).await;

    drop(held);
    wait_until_ready(&mut service, &data_dir, &base).await;
    let (restarted, restarted_port) = postmaster(&cluster_dir);
    assert_ne!(restarted, postgres, "a new postmaster");
    assert_eq!(restarted_port, port, "on the same port");

    assert_eq!(client.get(&sessions).bearer_auth(&key).send().await.unwrap().status(), 200);
    let run = call(&base, Method::GET, &format!("/api/v1/runs/{answered_run}"), &key, None).await;
    assert_eq!(run["status"], "succeeded", "the answered run outlived the crash: {run}");
    let session: Value =
        client.post(&sessions).bearer_auth(&key).json(&json!({})).send().await.unwrap().json().await.unwrap();
    let session = session["id"].as_str().expect("a session id");
    let response = client
        .post(format!("{sessions}/{session}/messages"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .json(&json!({ "content": "Are you back?" }))
        .send()
        .await
        .unwrap();
    let events = read_sse(response).await;
    let names: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(names.last(), Some(&"run.completed"), "{events:#?}");
    assert!(streamed_text(&events).contains("Are you back?"), "{events:#?}");

    kill(Pid::from_raw(i32::try_from(service.id()).unwrap()), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || service.wait()).await.unwrap().unwrap();
    assert!(status.success(), "a polite stop after a restart exits cleanly: {status}");
    // The restarted server is stopped with the service, as the first one would have been.
    wait_for("the restarted PostgreSQL to stop with the service", async || !is_running(restarted)).await;
    let server_dir = cluster_dir.parent().unwrap().to_path_buf();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(server_dir);
}
