//! The real binary outlives its embedded PostgreSQL: while the database is down every answer is a prompt
//! 503 `database_unavailable` (never a 500, never a hang), the server is started again on its own, and the
//! service serves tenants and turns once more without being restarted itself.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use switchboard::db::embedded::{self, Layout};

use crate::helpers::{assert_error, read_sse, streamed_text, test_data_dir};

/// How often, and how many times, readiness is asked for before the test gives up: bounds a hang only.
const POLL_EVERY: Duration = Duration::from_millis(100);
const POLL_ATTEMPTS: u32 = 600;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh data directory sharing the test binaries' PostgreSQL install and embedding model.
fn fresh_data_dir() -> PathBuf {
    let shared = Layout::for_data_dir(&test_data_dir()).unwrap();
    embedded::ensure_installed(&shared).unwrap();
    let data_dir = test_data_dir().join(format!("service-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let layout = Layout::for_data_dir(&data_dir).unwrap();
    let _ = std::fs::remove_dir_all(&layout.cluster_dir);
    let _ = std::fs::remove_file(&layout.install_dir);
    std::os::unix::fs::symlink(&shared.install_dir, &layout.install_dir).unwrap();
    std::fs::create_dir_all(test_data_dir().join("models")).unwrap();
    std::os::unix::fs::symlink(test_data_dir().join("models"), data_dir.join("models")).unwrap();
    data_dir
}

fn start_service(data_dir: &Path, port: u16) -> Child {
    let log = std::fs::File::create(data_dir.join("service.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the switchboard binary starts")
}

/// The service's log, for failure messages.
fn service_log(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("service.log")).unwrap_or_default()
}

/// Asks `/readyz` until it answers 200; panics with the service's log if it never does.
async fn wait_until_ready(client: &reqwest::Client, base: &str, data_dir: &Path, service: &mut Child) {
    for _ in 0..POLL_ATTEMPTS {
        if let Some(status) = service.try_wait().unwrap() {
            panic!("the service exited ({status}):\n{}", service_log(data_dir));
        }
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status() == 200) {
            return;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    panic!("/readyz never answered 200:\n{}", service_log(data_dir));
}

/// The postmaster's pid and port, from the first and fourth lines of `postmaster.pid`.
fn postmaster(cluster_dir: &Path) -> (Pid, u16) {
    let contents = std::fs::read_to_string(cluster_dir.join("postmaster.pid")).expect("postmaster.pid");
    let lines: Vec<&str> = contents.lines().collect();
    (Pid::from_raw(lines[0].trim().parse().unwrap()), lines[3].trim().parse().unwrap())
}

fn is_running(pid: Pid) -> bool {
    // A zombie still answers signals; /proc tells whether it is really gone or only unreaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

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
    let data_dir = fresh_data_dir();
    let cluster_dir = Layout::for_data_dir(&data_dir).unwrap().cluster_dir;
    let service_port = free_port();
    let base = format!("http://127.0.0.1:{service_port}");
    let mut service = start_service(&data_dir, service_port);
    // Generous: a hang fails the test here instead of stalling it, and no speed is asserted.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    wait_until_ready(&client, &base, &data_dir, &mut service).await;

    let operator = std::fs::read_to_string(data_dir.join("operator-token")).unwrap();
    let created: Value = client
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(operator.trim())
        .json(&json!({ "name": "Survivor", "slug": "survivor" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"]["key"].as_str().expect("the tenant's first key").to_owned();
    let sessions = format!("{base}/api/v1/sessions");
    assert_eq!(client.get(&sessions).bearer_auth(&key).send().await.unwrap().status(), 200);

    let (postgres, port) = postmaster(&cluster_dir);
    kill(postgres, Signal::SIGKILL).unwrap();
    let held = hold_port(port).await;
    let may_be_back = held.is_none();

    let ready = client.get(format!("{base}/readyz")).send().await.expect("/readyz answers while the database is down");
    assert_unavailable_or_ok(ready, may_be_back).await;
    let listed = client.get(&sessions).bearer_auth(&key).send().await.expect("a tenant request answers");
    assert_unavailable_or_ok(listed, may_be_back).await;

    drop(held);
    wait_until_ready(&client, &base, &data_dir, &mut service).await;
    let (restarted, restarted_port) = postmaster(&cluster_dir);
    assert_ne!(restarted, postgres, "a new postmaster");
    assert_eq!(restarted_port, port, "on the same port");

    assert_eq!(client.get(&sessions).bearer_auth(&key).send().await.unwrap().status(), 200);
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
    assert!(status.success(), "a polite stop after a restart exits cleanly: {status}\n{}", service_log(&data_dir));
    // The restarted server is stopped with the service, as the first one would have been.
    let mut attempts = 0;
    while is_running(restarted) {
        attempts += 1;
        assert!(attempts < POLL_ATTEMPTS, "the restarted PostgreSQL outlived the service");
        tokio::time::sleep(POLL_EVERY).await;
    }
    let server_dir = cluster_dir.parent().unwrap().to_path_buf();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(server_dir);
}
