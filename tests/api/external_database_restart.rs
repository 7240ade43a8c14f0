//! The real binary on an external PostgreSQL (`DATABASE_URL`) that is killed while turns stream and then
//! started again: while it is down `/readyz` and every request answer 503 `database_unavailable` with
//! `Retry-After` (never a hang, never a 500), in-flight runs complete or fail with that code (a failure is
//! recorded as such once it is back); once it is back the same process is ready again, nothing
//! acknowledged is lost, and turns and agent runs go on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mock_upstream::{Defaults, MockUpstream};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use switchboard::db::embedded::{Durability, EMBEDDED_DATABASE_NAME, EmbeddedPostgres, Layout};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{SseEvent, assert_error, streamed_text, to_sse_event};
use crate::service_process::{free_port, fresh_data_dir, postmaster, wait_for, wait_until_ready};

/// Bounds a hang (a stream that never ends, a restart that never succeeds); no speed is asserted.
const HANG: Duration = Duration::from_mins(2);

/// The service as a child process on an external database; killed if the test fails before it stops it.
struct Service {
    child: Child,
    base: String,
    data_dir: PathBuf,
}

impl Service {
    async fn start(data_dir: &Path, upstream: &MockUpstream, database_url: &str) -> Self {
        let port = free_port();
        let log = std::fs::File::create(data_dir.join("service.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("OPENAI_API_KEY", "sk-platform-external-db")
            .env("OPENAI_BASE_URL", upstream.openai_base())
            // No shared documentation: ingesting it would only slow the start.
            .env("SWITCHBOARD_CORPUS_DIR", data_dir.join("no-corpus"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the switchboard binary starts");
        let mut service = Self { child, base: format!("http://127.0.0.1:{port}"), data_dir: data_dir.to_owned() };
        wait_until_ready(&mut service.child, data_dir, &service.base).await;
        service
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// True while the process that was started is still the one running.
    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops the service politely and waits for it; returns how it exited.
    async fn stop(&mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), Signal::SIGTERM).unwrap();
        let mut status = None;
        wait_for("the service to stop", async || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        })
        .await;
        status.unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The service's side of a failure, after the panic's own message and backtrace.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.data_dir.join("service.log")).unwrap_or_default();
            let warnings: Vec<&str> =
                log.lines().filter(|line| line.contains("WARN") || line.contains("ERROR")).collect();
            eprintln!(
                "the service's warnings and errors:\n{}",
                warnings[warnings.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// A turn or agent run under way: what its client asked, and the task reading its events.
struct InFlight {
    question: String,
    /// The chat session (known at once), or the agent run (whose session is read from the run).
    session: Option<String>,
    run_id: Option<String>,
    events: JoinHandle<Vec<SseEvent>>,
}

/// Reads a run's SSE stream to its end in a task; `streaming` is told at the first piece of the answer.
fn read_events(response: reqwest::Response, streaming: oneshot::Sender<()>) -> JoinHandle<Vec<SseEvent>> {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    tokio::spawn(async move {
        let mut streaming = Some(streaming);
        let mut events = Vec::new();
        let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        while let Some(event) = stream.next().await {
            let event = to_sse_event(event.expect("well-formed SSE"));
            if event.event == "message.delta"
                && let Some(streaming) = streaming.take()
            {
                let _ = streaming.send(());
            }
            events.push(event);
        }
        events
    })
}

/// One tenant with a workspace, answering through the mock upstream.
struct Tenant {
    client: reqwest::Client,
    key: String,
    workspace: String,
}

impl Tenant {
    async fn create(service: &Service, client: reqwest::Client) -> Self {
        let operator = std::fs::read_to_string(service.data_dir.join("operator-token")).unwrap();
        let created: Value = client
            .post(service.url("/api/v1/tenants"))
            .bearer_auth(operator.trim())
            .json(&json!({ "name": "Outlasting", "slug": "outlasting" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["api_key"]["key"].as_str().expect("the tenant's first key").to_owned();
        let defaults = json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" });
        let configured =
            client.patch(service.url("/api/v1/tenant/config")).bearer_auth(&key).json(&defaults).send().await.unwrap();
        assert_eq!(configured.status(), 200);
        let workspace = client
            .post(service.url("/api/v1/workspaces"))
            .bearer_auth(&key)
            .json(&json!({ "name": "outlasting" }))
            .send()
            .await
            .unwrap();
        assert_eq!(workspace.status(), 201);
        let workspace: Value = workspace.json().await.unwrap();
        Self { client, key, workspace: workspace["id"].as_str().unwrap().to_owned() }
    }

    async fn get(&self, service: &Service, path: &str) -> Value {
        let response = self.client.get(service.url(path)).bearer_auth(&self.key).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Starts a streamed chat turn in a new session.
    async fn chat(&self, service: &Service, question: String, streaming: oneshot::Sender<()>) -> InFlight {
        let session =
            self.client.post(service.url("/api/v1/sessions")).bearer_auth(&self.key).json(&json!({})).send().await;
        let session: Value = session.unwrap().json().await.unwrap();
        let session = session["id"].as_str().expect("a session id").to_owned();
        let response = self
            .client
            .post(service.url(&format!("/api/v1/sessions/{session}/messages")))
            .bearer_auth(&self.key)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": question }))
            .send()
            .await
            .unwrap();
        let events = read_events(response, streaming);
        InFlight { question, session: Some(session), run_id: None, events }
    }

    /// Queues an agent run on the workspace and follows its events.
    async fn agent_run(&self, service: &Service, question: String, streaming: oneshot::Sender<()>) -> InFlight {
        let path = format!("/api/v1/workspaces/{}/runs", self.workspace);
        let queued = self
            .client
            .post(service.url(&path))
            .bearer_auth(&self.key)
            .json(&json!({ "instruction": question }))
            .send()
            .await
            .unwrap();
        assert_eq!(queued.status(), 202);
        let queued: Value = queued.json().await.unwrap();
        let run_id = queued["run"]["id"].as_str().expect("the run's id").to_owned();
        let response = self
            .client
            .get(service.url(&format!("/api/v1/runs/{run_id}/events")))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        let events = read_events(response, streaming);
        InFlight { question, session: None, run_id: Some(run_id), events }
    }
}

/// An answer given while the database is down: a prompt 503 `database_unavailable` with `Retry-After`.
async fn assert_unavailable(what: &str, response: reqwest::Response) {
    assert!(response.headers().contains_key("retry-after"), "{what}: {:?}", response.headers());
    let body = assert_error(response, 503, "database_unavailable").await;
    eprintln!("while the database is down, {what}: {body}");
}

/// Starts the killed server again on its cluster and port; the old backends may hold its shared memory
/// for a moment, so a refused start is tried again.
async fn start_again(server: &Arc<EmbeddedPostgres>) {
    let deadline = Instant::now() + HANG;
    loop {
        let attempt = Arc::clone(server);
        match tokio::task::spawn_blocking(move || attempt.restart_if_exited()).await.unwrap() {
            Ok(restarted) => {
                assert!(restarted, "the killed server had exited");
                return;
            }
            Err(error) => {
                assert!(Instant::now() < deadline, "PostgreSQL did not start again: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Three chat turns and two agent runs, each streaming its answer by the time this returns.
async fn start_in_flight(service: &Service, tenant: &Tenant) -> Vec<InFlight> {
    let mut in_flight = Vec::new();
    let mut streaming = Vec::new();
    for number in 0..5 {
        let (told, is_streaming) = oneshot::channel();
        let question = format!("Turn {number}: tell me a long story");
        in_flight.push(if number < 3 {
            tenant.chat(service, question, told).await
        } else {
            tenant.agent_run(service, question, told).await
        });
        streaming.push(is_streaming);
    }
    for is_streaming in streaming {
        tokio::time::timeout(HANG, is_streaming).await.expect("a turn streams").expect("a turn streams before it ends");
    }
    in_flight
}

/// While the database is down every request is answered (the client's deadline only bounds a hang): the
/// process is alive, and it is not ready, nor can it list, ask or queue anything, and says why.
async fn assert_outage_is_answered(service: &mut Service, tenant: &Tenant, busy_session: &str) {
    let client = &tenant.client;
    let health = client.get(service.url("/healthz")).send().await.expect("/healthz answers");
    assert_eq!(health.status(), 200, "the process itself is alive");
    let ready = client.get(service.url("/readyz")).send();
    let listed = client.get(service.url("/api/v1/sessions")).bearer_auth(&tenant.key).send();
    let asked = client
        .post(service.url(&format!("/api/v1/sessions/{busy_session}/messages")))
        .bearer_auth(&tenant.key)
        .header("accept", "text/event-stream")
        .json(&json!({ "content": "Are you there?" }))
        .send();
    let queued = client
        .post(service.url(&format!("/api/v1/workspaces/{}/runs", tenant.workspace)))
        .bearer_auth(&tenant.key)
        .json(&json!({ "instruction": "Queue me while the database is down" }))
        .send();
    let (ready, listed, asked, queued) = tokio::join!(ready, listed, asked, queued);
    assert_unavailable("/readyz", ready.expect("/readyz answers")).await;
    assert_unavailable("GET /api/v1/sessions", listed.expect("a listing answers")).await;
    assert_unavailable("a new message", asked.expect("a new message is answered")).await;
    assert_unavailable("a new agent run", queued.expect("a new agent run is answered")).await;
    assert!(service.is_running(), "the service outlives its database");
}

/// Checks what the client of one in-flight turn saw and what is stored of it.
async fn check_in_flight(service: &Service, tenant: &Tenant, turn: InFlight) -> &'static str {
    let events = tokio::time::timeout(HANG, turn.events).await.expect("the stream ends").unwrap();
    let run_id = turn.run_id.unwrap_or_else(|| events[0].data["run_id"].as_str().expect("a run id").to_owned());
    let terminals: Vec<&SseEvent> = events
        .iter()
        .filter(|event| matches!(event.event.as_str(), "run.completed" | "run.failed" | "run.cancelled"))
        .collect();
    assert_eq!(terminals.len(), 1, "exactly one terminal event: {events:#?}");
    let last = events.last().unwrap();
    let ending = match (last.event.as_str(), last.data["code"].as_str()) {
        ("run.completed", _) => "completed",
        ("run.failed", Some("database_unavailable")) => "failed: database_unavailable",
        _ => panic!("run {run_id} ended otherwise: {last:#?}"),
    };
    let run = tenant.get(service, &format!("/api/v1/runs/{run_id}")).await;
    let session = turn.session.or_else(|| run["session_id"].as_str().map(str::to_owned)).expect("a conversation");
    let messages = tenant.get(service, &format!("/api/v1/sessions/{session}/messages")).await;
    let messages = messages["messages"].as_array().unwrap();
    // The acknowledged question is stored, whatever became of its answer.
    let asked = messages.iter().any(|message| message["role"] == "user" && message["content"] == *turn.question);
    assert!(asked, "the question of run {run_id} is stored: {messages:#?}");
    if ending == "completed" {
        // A completion the client was told of was committed: its answer and status are stored.
        assert_eq!(run["status"], "succeeded", "{run}");
        let answered = messages.iter().any(|message| {
            message["role"] == "assistant"
                && message["status"] == "complete"
                && message["content"] == streamed_text(&events)
        });
        assert!(answered, "the answer of run {run_id} is stored as it was streamed: {messages:#?}\n{events:#?}");
    } else {
        // Its end is recorded once the database is back, as its client was told: not left running for a
        // sweeper to call interrupted, which is what a client following it from the database would see.
        let path = format!("/api/v1/runs/{run_id}");
        let mut stored = run;
        wait_for("the failed run's end to be recorded", async || {
            stored = tenant.get(service, &path).await;
            stored["status"] != "running"
        })
        .await;
        assert_eq!((&stored["status"], &stored["error_code"]), (&json!("failed"), &json!("database_unavailable")));
        eprintln!("run {run_id} failed with database_unavailable, and is stored so");
    }
    ending
}

#[tokio::test]
async fn the_service_survives_its_external_postgres_being_killed_mid_answer() {
    // The external server: a cluster of its own, beside the shared install. Durable, as a real one is: a
    // throwaway cluster (`synchronous_commit=off`) forgets commits it acknowledged when it is killed.
    let database_dir = fresh_data_dir("external-database");
    let layout = Layout::for_data_dir(&database_dir).unwrap();
    let cluster_dir = layout.cluster_dir.clone();
    let server = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&layout, Durability::Durable));
    let server = Arc::new(server.await.unwrap().expect("the external PostgreSQL starts"));
    switchboard::db::create_database_if_missing(&server.maintenance_options(), EMBEDDED_DATABASE_NAME).await.unwrap();

    // Answers of 300 words at 20 ms each: every turn is mid-stream when the database dies.
    let slow = Defaults { tokens: 300, chunk_delay: Duration::from_millis(20) };
    let upstream = MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), slow).await.unwrap();
    let service_dir = fresh_data_dir("external-database-service");
    let database_url = server.owner_url(EMBEDDED_DATABASE_NAME);
    let mut service = Service::start(&service_dir, &upstream, database_url.expose_secret()).await;
    // Generous: a hang fails the test here instead of stalling it, and no speed is asserted.
    let tenant = Tenant::create(&service, reqwest::Client::builder().timeout(HANG).build().unwrap()).await;

    let in_flight = start_in_flight(&service, &tenant).await;

    let (postgres, port) = postmaster(&cluster_dir);
    assert_eq!(server.pid(), u32::try_from(postgres.as_raw()).ok(), "the server this test started");
    kill(postgres, Signal::SIGKILL).unwrap();
    wait_for("the killed PostgreSQL to exit", async || server.has_exited()).await;

    let busy_session = in_flight[0].session.clone().unwrap();
    assert_outage_is_answered(&mut service, &tenant, &busy_session).await;
    // Kept down until the chat turns' clients are told their runs failed (their ends could not be
    // recorded): no client waits forever on a database, and each such run is closed once it is back.
    for turn in &in_flight[..3] {
        wait_for("a chat turn's stream to end while the database is down", async || turn.events.is_finished()).await;
    }

    // The database comes back on the same port; the same service process becomes ready again.
    let started_again = Instant::now();
    start_again(&server).await;
    let database_back = started_again.elapsed();
    wait_until_ready(&mut service.child, &service_dir, &service.base).await;
    let recovery = started_again.elapsed();
    assert!(service.is_running(), "the service was not restarted");
    let (restarted, restarted_port) = postmaster(&cluster_dir);
    assert_ne!(restarted, postgres, "a new postmaster");
    assert_eq!(restarted_port, port, "on the same port");

    // Every in-flight run ended once, completed or failed with `database_unavailable`; nothing
    // acknowledged was lost.
    let mut endings = Vec::new();
    for turn in in_flight {
        endings.push(check_in_flight(&service, &tenant, turn).await);
    }
    assert_eq!(endings[..3], ["failed: database_unavailable"; 3], "the chat turns ended while it was down");

    // New turns complete, and an agent run queued now is claimed and run: the worker resumed.
    let (told, _) = oneshot::channel();
    let chat = tenant.chat(&service, "Are you back?".to_owned(), told).await;
    let (told, _) = oneshot::channel();
    let agent = tenant.agent_run(&service, "Are your workers back?".to_owned(), told).await;
    for turn in [chat, agent] {
        assert_eq!(check_in_flight(&service, &tenant, turn).await, "completed");
    }
    tenant.get(&service, "/api/v1/sessions").await;

    eprintln!(
        "external database restart: PostgreSQL accepted connections {} ms after it was started again, and \
         /readyz answered 200 {} ms after it was started again; in-flight runs: {endings:?}",
        database_back.as_millis(),
        recovery.as_millis(),
    );

    let status = service.stop().await;
    assert!(status.success(), "a polite stop after the outage exits cleanly: {status}");
    let server = Arc::into_inner(server).expect("the only handle on the server");
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    for dir in [&service_dir, &database_dir] {
        let server_root = Layout::for_data_dir(dir).unwrap().cluster_dir.parent().unwrap().to_path_buf();
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(server_root);
    }
}
