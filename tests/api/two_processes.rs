//! Two real `switchboard serve` processes on one PostgreSQL, with the mock upstream streaming slow
//! answers: a run started on one is followed live from the other, cancelled from the other, its approval
//! decided on the other; an agent run queued through one is followed from both; a rate limit holds across
//! both. Nothing here depends on speed: each step waits for a state, never for a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use mock_upstream::{Defaults, MockUpstream, Reply};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use switchboard::db::embedded::{Durability, EMBEDDED_DATABASE_NAME, EmbeddedPostgres, Layout};

use crate::helpers::{SseEvent, streamed_text, to_sse_event};
use crate::mcp_server::McpTestServer;
use crate::service_process::{fresh_data_dir, start_ready_with};

/// Bounds a hang (a stream that never ends); no speed is asserted.
const HANG: Duration = Duration::from_mins(2);
const OPERATOR_TOKEN: &str = "sbo_two_processes_operator";
/// One master key for both: each opens the secrets the other sealed, and both log in as the same role.
const MASTER_KEY: &str = "two-processes-master-key-0123456789abcdef";

/// One `switchboard serve` on the shared database.
struct Process {
    child: crate::service_process::Service,
    base: String,
    data_dir: PathBuf,
}

impl Process {
    async fn start(name: &str, database_url: &str, upstream: &MockUpstream) -> Self {
        let data_dir = fresh_data_dir(name);
        // No shared documentation: ingesting it would only slow the start.
        let no_corpus = data_dir.join("no-corpus");
        let upstream_url = upstream.openai_base();
        let settings = [
            ("DATABASE_URL", database_url),
            ("SWITCHBOARD_OPERATOR_TOKEN", OPERATOR_TOKEN),
            ("SWITCHBOARD_MASTER_KEY", MASTER_KEY),
            ("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.1"),
            ("OPENAI_API_KEY", "sk-platform-two-processes"),
            ("OPENAI_BASE_URL", upstream_url.as_str()),
            ("SWITCHBOARD_CORPUS_DIR", no_corpus.to_str().unwrap()),
        ];
        let (child, base) = start_ready_with(&data_dir, &settings).await;
        Self { child, base, data_dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A tenant's key and the client that uses it, on either process.
struct Caller {
    client: reqwest::Client,
    key: String,
}

impl Caller {
    async fn tenant(process: &Process, slug: &str) -> Self {
        let client = reqwest::Client::builder().timeout(HANG).build().unwrap();
        let created = client
            .post(process.url("/api/v1/tenants"))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({ "name": slug, "slug": slug }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        let caller = Self { client, key: created["api_key"]["key"].as_str().unwrap().to_owned() };
        let defaults = json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" });
        caller.send(process, reqwest::Method::PATCH, "/api/v1/tenant/config", Some(defaults), 200).await;
        caller
    }

    async fn send(
        &self,
        process: &Process,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let mut request = self.client.request(method.clone(), process.url(path)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let actual = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(actual, status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn run_status(&self, process: &Process, run_id: &str) -> String {
        let run = self.send(process, reqwest::Method::GET, &format!("/api/v1/runs/{run_id}"), None, 200).await;
        run["status"].as_str().unwrap().to_owned()
    }

    /// Starts a streamed chat turn in a new conversation; returns the conversation and the open stream.
    async fn stream_turn(&self, process: &Process, question: &str) -> (String, Events) {
        let session = self.send(process, reqwest::Method::POST, "/api/v1/sessions", Some(json!({})), 201).await;
        let session = session["id"].as_str().unwrap().to_owned();
        let response = self
            .client
            .post(process.url(&format!("/api/v1/sessions/{session}/messages")))
            .bearer_auth(&self.key)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": question }))
            .send()
            .await
            .unwrap();
        (session, Events::of(response))
    }

    /// The run's events from `after` on, as `process` streams them.
    async fn follow(&self, process: &Process, run_id: &str, after: i64) -> Events {
        let response = self
            .client
            .get(process.url(&format!("/api/v1/runs/{run_id}/events")))
            .bearer_auth(&self.key)
            .header("last-event-id", after.to_string())
            .send()
            .await
            .unwrap();
        Events::of(response)
    }
}

/// An open SSE stream, read one event at a time.
struct Events {
    stream: futures::stream::BoxStream<'static, SseEvent>,
    seen: Vec<SseEvent>,
}

impl Events {
    fn of(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        let stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream())
            .map(|event| to_sse_event(event.expect("well-formed SSE")))
            .boxed();
        Self { stream, seen: Vec::new() }
    }

    /// Reads until an event named `name` (returned), or panics if the stream ends first.
    async fn until(&mut self, name: &str) -> SseEvent {
        loop {
            let event = tokio::time::timeout(HANG, self.stream.next()).await.expect("the stream goes on");
            let event = event.unwrap_or_else(|| panic!("the stream ended before {name}: {:#?}", self.seen));
            self.seen.push(event.clone());
            if event.event == name {
                return event;
            }
        }
    }

    /// Reads to the end of the stream; returns every event it delivered.
    async fn rest(mut self) -> Vec<SseEvent> {
        while let Some(event) = tokio::time::timeout(HANG, self.stream.next()).await.expect("the stream ends") {
            self.seen.push(event);
        }
        self.seen
    }
}

fn remove_data_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        let server_root = Layout::for_data_dir(dir).unwrap().cluster_dir.parent().unwrap().to_path_buf();
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(server_root);
    }
}

async fn shared_database(dir: &Path) -> Arc<EmbeddedPostgres> {
    let layout = Layout::for_data_dir(dir).unwrap();
    let server = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&layout, Durability::Durable));
    let server = Arc::new(server.await.unwrap().expect("the shared PostgreSQL starts"));
    switchboard::db::create_database_if_missing(&server.maintenance_options(), EMBEDDED_DATABASE_NAME).await.unwrap();
    server
}

#[tokio::test]
async fn two_processes_on_one_database_follow_cancel_approve_queue_and_limit_each_others_runs() {
    let database_dir = fresh_data_dir("two-processes-database");
    let server = shared_database(&database_dir).await;
    let database_url = server.owner_url(EMBEDDED_DATABASE_NAME);
    // Answers of 200 words at 20 ms each: a turn is mid-stream long enough to be watched from elsewhere.
    let slow = Defaults { tokens: 200, chunk_delay: Duration::from_millis(20) };
    let upstream = MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), slow).await.unwrap();
    let crm = McpTestServer::start().await;
    // One after the other: the first prepares the database.
    let a = Process::start("two-processes-a", database_url.expose_secret(), &upstream).await;
    let b = Process::start("two-processes-b", database_url.expose_secret(), &upstream).await;
    let caller = Caller::tenant(&a, "two-processes").await;

    // (a) A turn started on A is followed live from B: B has tokens while A still runs the turn, and in
    // the end the same text as A's own client.
    let (_, mut on_a) = caller.stream_turn(&a, "Tell me a long story").await;
    let first = on_a.until("message.delta").await;
    let run_id = first.data["run_id"].as_str().unwrap().to_owned();
    let mut on_b = caller.follow(&b, &run_id, 0).await;
    on_b.until("message.delta").await;
    assert_eq!(caller.run_status(&a, &run_id).await, "running", "B streams the run while A still executes it");
    let (on_a, on_b) = tokio::join!(on_a.rest(), on_b.rest());
    assert_eq!(on_b.last().unwrap().event, "run.completed", "{on_b:#?}");
    assert_eq!(streamed_text(&on_b), streamed_text(&on_a));
    assert_eq!(on_b.len(), on_a.len(), "B saw every event A's client saw");

    // (b) A cancel sent to B stops the run executing on A: it ends cancelled with its partial answer.
    let (_, mut on_a) = caller.stream_turn(&a, "Tell me another long story").await;
    let first = on_a.until("message.delta").await;
    let run_id = first.data["run_id"].as_str().unwrap().to_owned();
    let cancelled =
        caller.send(&b, reqwest::Method::POST, &format!("/api/v1/runs/{run_id}/cancel"), Some(json!({})), 200).await;
    assert_eq!(cancelled["run"]["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["message"]["status"], "incomplete", "{cancelled}");
    let partial = cancelled["message"]["content"].as_str().unwrap();
    assert!(partial.starts_with("token0") && partial.split(' ').count() < 200, "{partial}");
    let on_a = on_a.rest().await;
    assert_eq!(on_a.last().unwrap().event, "run.cancelled", "A's client is told: {on_a:#?}");
    assert_eq!(streamed_text(&on_a), partial, "the kept answer is what A streamed");
    assert_eq!(caller.run_status(&a, &run_id).await, "cancelled");

    // (c) An approval decided on B resumes a run paused on A; A's client follows it to its end.
    let connector = json!({ "name": "crm", "transport": "streamable_http", "url": crm.url });
    caller.send(&a, reqwest::Method::POST, "/api/v1/mcp-connectors", Some(connector), 201).await;
    let profile = json!({ "name": "default", "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let profile = caller.send(&a, reqwest::Method::POST, "/api/v1/policy-profiles", Some(profile), 201).await;
    let active = json!({ "active_policy_profile_id": profile["id"] });
    caller.send(&a, reqwest::Method::PATCH, "/api/v1/tenant/config", Some(active), 200).await;
    upstream.push(Reply {
        tool_calls: vec![crate::tools::call("crm__delete_customer", json!({ "id": 7 }))],
        ..Reply::default()
    });
    upstream.push(Reply { text: "Customer 7 is deleted.".into(), ..Reply::default() });
    let (_, on_a) = caller.stream_turn(&a, "Delete customer 7").await;
    let paused = on_a.rest().await;
    let waiting = paused.iter().find(|event| event.event == "tool_call.awaiting_approval").expect("a held call");
    let (run_id, call_id) = (waiting.data["run_id"].as_str().unwrap(), waiting.data["tool_call_id"].as_str().unwrap());
    assert_eq!(paused.last().unwrap().event, "run.awaiting_approval", "{paused:#?}");
    let last_seen: i64 = paused.last().unwrap().id.parse().unwrap();
    caller
        .send(&b, reqwest::Method::POST, &format!("/api/v1/tool-calls/{call_id}/approve"), Some(json!({})), 200)
        .await;
    let resumed = caller.follow(&a, run_id, last_seen).await.rest().await;
    assert_eq!(resumed.last().unwrap().event, "run.completed", "{resumed:#?}");
    assert_eq!(streamed_text(&resumed), "Customer 7 is deleted.");
    assert_eq!(crm.calls(), 1, "the approved call ran once");

    // (d) An agent run queued through A is executed by a worker of either process and followed from
    // both: whichever executes it, the other follows it from the database.
    let workspace =
        caller.send(&a, reqwest::Method::POST, "/api/v1/workspaces", Some(json!({ "name": "w" })), 201).await;
    let path = format!("/api/v1/workspaces/{}/runs", workspace["id"].as_str().unwrap());
    let queued =
        caller.send(&a, reqwest::Method::POST, &path, Some(json!({ "instruction": "Tell a story" })), 202).await;
    let run_id = queued["run"]["id"].as_str().unwrap().to_owned();
    let (mut from_a, mut from_b) = (caller.follow(&a, &run_id, 0).await, caller.follow(&b, &run_id, 0).await);
    from_a.until("message.delta").await;
    from_b.until("message.delta").await;
    let (from_a, from_b) = tokio::join!(from_a.rest(), from_b.rest());
    assert_eq!(from_a.last().unwrap().event, "run.completed", "{from_a:#?}");
    let seqs = |events: &[SseEvent]| events.iter().map(|event| event.id.clone()).collect::<Vec<_>>();
    assert_eq!(seqs(&from_a), seqs(&from_b), "both processes deliver the same events");
    assert_eq!(streamed_text(&from_a), streamed_text(&from_b));
    assert_eq!(caller.run_status(&b, &run_id).await, "succeeded");

    // (e) A limit of 2 requests a minute holds across both: the third request, on B, is refused.
    let limited = Caller::tenant(&a, "two-processes-limited").await;
    let limit = json!({ "tenant": { "requests_per_minute": 2 } });
    limited.send(&a, reqwest::Method::PUT, "/api/v1/rate-limits", Some(limit), 200).await;
    for number in 0..2 {
        upstream.push(Reply { text: format!("Answer {number}."), ..Reply::default() });
        let body = json!({ "message": format!("Question {number}") });
        limited.send(&a, reqwest::Method::POST, "/api/v1/integration/chat", Some(body), 200).await;
    }
    let body = json!({ "message": "One too many" });
    let refused = limited.send(&b, reqwest::Method::POST, "/api/v1/integration/chat", Some(body), 429).await;
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");

    // Both stop politely.
    let dirs = [a.data_dir.clone(), b.data_dir.clone(), database_dir];
    for process in [a, b] {
        stop(process).await;
    }
    let server = Arc::into_inner(server).expect("the only handle on the server");
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    remove_data_dirs(&dirs);
}

/// SIGTERM, then waits for a clean exit.
async fn stop(mut process: Process) {
    assert!(process.child.stop().await.success(), "a polite stop exits cleanly");
}
