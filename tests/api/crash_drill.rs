//! Crash drills: the real binary, with turns of every kind streaming from a slow upstream, is killed
//! (SIGKILL) or stopped (SIGTERM) mid-answer, then started again on the same data. The record it leaves
//! must keep every promise of the API: nothing acknowledged is lost, every run ends exactly once, no
//! event number is reused, partial answers are kept, approvals survive, queued work is done, and a
//! retried request is not run twice.
//!
//! `SWITCHBOARD_DRILL_ROUNDS` sets the number of kill-and-restart rounds (default 5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;
use mock_upstream::{Defaults, MockUpstream, Reply, ToolCall};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::helpers::{SseEvent, read_sse, to_sse_event};
use crate::mcp_server::McpTestServer;
use crate::service_process::{free_port, fresh_data_dir, wait_until_ready};

/// The kinds of turn a drill starts, and how many of each per round (20 in all). More agent runs than
/// the service has workers (4), so that some are still queued when the process dies.
const TURNS: [(Kind, usize); 5] =
    [(Kind::Widget, 4), (Kind::Integration, 4), (Kind::OpenAi, 4), (Kind::Agent, 6), (Kind::Approval, 2)];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Widget,
    Integration,
    OpenAi,
    Agent,
    Approval,
}

/// The service as a child process, with the mock upstream as the platform's OpenAI.
struct Service {
    child: crate::service_process::Service,
    base: String,
    data_dir: PathBuf,
    port: u16,
}

impl Service {
    async fn start(data_dir: &Path, port: u16, upstream: &MockUpstream, grace_secs: u64) -> Self {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("service.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.1")
            .env("SWITCHBOARD_SHUTDOWN_GRACE_SECS", grace_secs.to_string())
            .env("OPENAI_API_KEY", "sk-platform-drill")
            .env("OPENAI_BASE_URL", upstream.openai_base())
            // No shared documentation: the drill needs none, and ingesting it would slow every start.
            .env("SWITCHBOARD_CORPUS_DIR", data_dir.join("no-corpus"))
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the switchboard binary starts");
        let child = crate::service_process::Service(child);
        let mut service = Self { child, base: format!("http://127.0.0.1:{port}"), data_dir: data_dir.to_owned(), port };
        wait_until_ready(&mut service.child, data_dir, &service.base).await;
        service
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), signal).unwrap();
    }

    async fn exit(mut self) -> std::process::ExitStatus {
        tokio::task::spawn_blocking(move || self.child.wait().unwrap()).await.unwrap()
    }

    async fn restarted(self, upstream: &MockUpstream, grace_secs: u64) -> Self {
        let (data_dir, port) = (self.data_dir.clone(), self.port);
        self.exit().await;
        Self::start(&data_dir, port, upstream, grace_secs).await
    }
}

fn authed(request: reqwest::RequestBuilder, key: &str, body: &Value) -> reqwest::RequestBuilder {
    request.bearer_auth(key).json(body)
}

/// One tenant of the drill, with what each kind of turn needs.
struct Drill {
    client: reqwest::Client,
    base: String,
    admin_key: String,
    workspace: String,
    /// A second tenant whose model (a second mock) asks for a tool call that needs approval.
    approvals_key: String,
}

impl Drill {
    async fn set_up(service: &Service, approvals_upstream: &MockUpstream, tools: &McpTestServer) -> Self {
        let client = reqwest::Client::new();
        let operator = std::fs::read_to_string(service.data_dir.join("operator-token")).unwrap();
        let tenant = |slug: &'static str| {
            let request = client.post(format!("{}/api/v1/tenants", service.base)).bearer_auth(operator.trim());
            async move {
                let created: Value =
                    request.json(&json!({ "name": slug, "slug": slug })).send().await.unwrap().json().await.unwrap();
                created["api_key"]["key"].as_str().expect("a tenant's first key").to_owned()
            }
        };
        let (admin_key, approvals_key) = (tenant("drill").await, tenant("drill-approvals").await);
        let drill = Self { client, base: service.base.clone(), admin_key, workspace: String::new(), approvals_key };
        let defaults = json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" });
        for key in [drill.admin_key.clone(), drill.approvals_key.clone()] {
            drill.expect(authed(drill.client.patch(drill.url("/api/v1/tenant/config")), &key, &defaults), 200).await;
        }
        let own_key = json!({ "api_key": "sk-tenant-drill", "base_url": approvals_upstream.openai_base() });
        let key = drill.approvals_key.clone();
        drill.expect(authed(drill.client.put(drill.url("/api/v1/providers/openai")), &key, &own_key), 200).await;
        let connector = json!({ "name": "crm", "transport": "streamable_http", "url": tools.url });
        drill.expect(drill.post("/api/v1/mcp-connectors", &key, &connector), 201).await;
        let profile = json!({ "name": "default", "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
        let profile = drill.expect(drill.post("/api/v1/policy-profiles", &key, &profile), 201).await;
        let active = json!({ "active_policy_profile_id": profile["id"] });
        drill.expect(authed(drill.client.patch(drill.url("/api/v1/tenant/config")), &key, &active), 200).await;
        let admin = drill.admin_key.clone();
        let workspace = drill.expect(drill.post("/api/v1/workspaces", &admin, &json!({ "name": "drill" })), 201).await;
        Self { workspace: workspace["id"].as_str().unwrap().to_owned(), ..drill }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
        authed(self.client.post(self.url(path)), key, body)
    }

    async fn get(&self, path: &str, key: &str) -> Value {
        let response = self.client.get(self.url(path)).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn expect(&self, request: reqwest::RequestBuilder, status: u16) -> Value {
        let response = request.send().await.unwrap();
        let actual = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(actual, status, "{body}");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// The key that reads a turn's records: the approvals tenant's, or the main tenant's admin key.
    fn key_for(&self, kind: Kind) -> &str {
        if kind == Kind::Approval { &self.approvals_key } else { &self.admin_key }
    }

    /// Sends one turn of `kind`; returns what its client saw once the connection ended.
    async fn turn(&self, kind: Kind, number: usize, round: usize, streaming: oneshot::Sender<()>) -> Seen {
        let question = format!("Drill round {round}, turn {number}: tell me a long story");
        let mut seen = Seen::of(kind);
        let request = match kind {
            Kind::Widget => {
                let token = self
                    .expect(
                        self.post(
                            "/api/v1/widget-tokens",
                            &self.admin_key,
                            &json!({ "external_user_id": format!("visitor-{number}") }),
                        ),
                        201,
                    )
                    .await;
                let token = token["token"].as_str().unwrap().to_owned();
                let session = self.expect(self.post("/api/v1/sessions", &token, &json!({})), 201).await;
                let session = session["id"].as_str().unwrap();
                seen.question = Some(question.clone());
                self.post(&format!("/api/v1/sessions/{session}/messages"), &token, &json!({ "content": question }))
                    .header("accept", "text/event-stream")
            }
            Kind::Integration => {
                let key = format!("drill-{round}-{number}");
                let body =
                    json!({ "message": question, "external_user_id": format!("customer-{number}"), "stream": true });
                seen.question = Some(question.clone());
                seen.integration = Some((key.clone(), body.clone()));
                self.post("/api/v1/integration/chat", &self.admin_key, &body).header("idempotency-key", key)
            }
            Kind::OpenAi => {
                let body = json!({ "model": "gpt-4o-mini", "stream": true,
                                   "messages": [{ "role": "user", "content": question }] });
                seen.question = Some(question.clone());
                self.post("/v1/chat/completions", &self.admin_key, &body)
            }
            Kind::Agent => {
                let path = format!("/api/v1/workspaces/{}/runs", self.workspace);
                let response = self.post(&path, &self.admin_key, &json!({ "instruction": question })).send().await;
                let Ok(response) = response else { return seen };
                seen.acknowledged = response.status() == 202;
                let body: Value = response.json().await.unwrap_or_default();
                seen.run_id = body["run"]["id"].as_str().map(str::to_owned);
                seen.question = Some(question);
                let _ = streaming.send(());
                return seen;
            }
            Kind::Approval => {
                let session = self.expect(self.post("/api/v1/sessions", &self.approvals_key, &json!({})), 201).await;
                let session = session["id"].as_str().unwrap();
                seen.question = Some(question.clone());
                self.post(
                    &format!("/api/v1/sessions/{session}/messages"),
                    &self.approvals_key,
                    &json!({ "content": question }),
                )
                .header("accept", "text/event-stream")
            }
        };
        let Ok(response) = request.send().await else { return seen };
        seen.acknowledged = response.status().is_success();
        if !seen.acknowledged {
            return seen;
        }
        let mut streaming = Some(streaming);
        let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        while let Some(Ok(event)) = stream.next().await {
            if event.data == "[DONE]" {
                break;
            }
            let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
            if kind == Kind::OpenAi {
                // The chunk id is the run's: chatcmpl-<uuid, simple form>.
                let id = data["id"].as_str().unwrap_or_default().trim_start_matches("chatcmpl-");
                seen.run_id = uuid::Uuid::parse_str(id).ok().map(|id| id.to_string());
                if data["choices"][0]["delta"]["content"].as_str().is_some_and(|text| !text.is_empty()) {
                    seen.openai_text.push_str(data["choices"][0]["delta"]["content"].as_str().unwrap());
                    if let Some(streaming) = streaming.take() {
                        let _ = streaming.send(());
                    }
                }
                continue;
            }
            let event = to_sse_event(event);
            if seen.run_id.is_none() {
                seen.run_id = event.data["run_id"].as_str().map(str::to_owned);
            }
            let started = event.event == "message.delta" || event.event == "run.awaiting_approval";
            seen.events.push(event);
            if started && let Some(streaming) = streaming.take() {
                let _ = streaming.send(());
            }
        }
        seen
    }
}

/// What one client saw of its turn before the process died.
#[derive(Debug)]
struct Seen {
    kind: Kind,
    acknowledged: bool,
    run_id: Option<String>,
    question: Option<String>,
    events: Vec<SseEvent>,
    openai_text: String,
    /// The integration request's Idempotency-Key and body, to send again.
    integration: Option<(String, Value)>,
}

impl Seen {
    fn of(kind: Kind) -> Self {
        Self {
            kind,
            acknowledged: false,
            run_id: None,
            question: None,
            events: Vec::new(),
            openai_text: String::new(),
            integration: None,
        }
    }
}

/// What the drill found, per kind of turn.
#[derive(Debug, Default)]
struct Tally {
    acknowledged: BTreeMap<String, usize>,
    losses: Vec<String>,
}

impl Tally {
    fn check(&mut self, kind: Kind, run_id: &str, holds: bool, what: impl FnOnce() -> String) {
        if !holds {
            self.losses.push(format!("{kind:?} run {run_id}: {}", what()));
        }
    }
}

const TERMINAL: [&str; 3] = ["run.completed", "run.failed", "run.cancelled"];

/// Checks the record one acknowledged turn left, right after the restart; returns the run's id and
/// its status then.
async fn check_turn(drill: &Drill, seen: &Seen, tally: &mut Tally) -> Option<(String, String)> {
    let kind = seen.kind;
    let key = drill.key_for(kind);
    let Some(run_id) = seen.run_id.clone() else {
        tally.check(kind, "?", false, || "acknowledged, but no run id reached the client".to_owned());
        return None;
    };
    let run = drill.get(&format!("/api/v1/runs/{run_id}"), key).await;
    let status = run["status"].as_str().unwrap_or_default().to_owned();
    match kind {
        Kind::Approval => tally.check(kind, &run_id, status == "awaiting_approval", || format!("status {status}")),
        // A queued agent run waits for a worker; any other run of the dead process is closed at restart.
        Kind::Agent if status == "queued" || status == "running" => {}
        _ => tally.check(kind, &run_id, ["succeeded", "failed"].contains(&status.as_str()), || {
            format!("still {status} after the restart")
        }),
    }
    // The user's message is stored in the run's conversation.
    if let (Some(session), Some(question)) = (run["session_id"].as_str(), &seen.question) {
        let messages = drill.get(&format!("/api/v1/sessions/{session}/messages"), key).await;
        let messages = messages["messages"].as_array().cloned().unwrap_or_default();
        let asked = messages.iter().any(|message| message["role"] == "user" && message["content"] == *question);
        tally.check(kind, &run_id, asked, || "the user's message is missing".to_owned());
        // A run that failed after streaming keeps its partial answer as an incomplete message.
        if status == "failed" {
            let stored = stored_events(drill, key, &run_id, 0).await;
            let streamed: String = stored
                .iter()
                .filter(|event| event.event == "message.delta")
                .map(|event| event.data["text"].as_str().unwrap_or_default())
                .collect();
            if !streamed.is_empty() {
                let kept = messages.iter().any(|message| {
                    message["role"] == "assistant"
                        && message["status"] == "incomplete"
                        && message["content"] == streamed
                });
                tally.check(kind, &run_id, kept, || "the streamed part of the answer was not kept".to_owned());
            }
        }
    } else {
        tally.check(kind, &run_id, false, || "the run has no conversation".to_owned());
    }
    if kind == Kind::Agent && status != "failed" && status != "succeeded" {
        return Some((run_id, status));
    }
    // Every event the client saw is stored under the number it was sent with, and resuming after the
    // last one gives the rest, ending with exactly one terminal event.
    let stored = stored_events(drill, key, &run_id, 0).await;
    let by_seq: BTreeMap<String, &SseEvent> = stored.iter().map(|event| (event.id.clone(), event)).collect();
    // (Deltas published but not yet written when the process died are not stored at all: their numbers
    // stay unused, and the closing event comes after them.)
    for event in &seen.events {
        let same = by_seq.get(&event.id).is_none_or(|stored| stored.event == event.event && stored.data == event.data);
        tally.check(kind, &run_id, same, || format!("seq {} means another event now", event.id));
    }
    let seqs: Vec<i64> = stored.iter().map(|event| event.id.parse().unwrap_or_default()).collect();
    tally
        .check(kind, &run_id, seqs.windows(2).all(|pair| pair[0] < pair[1]), || format!("seqs out of order: {seqs:?}"));
    let terminals = stored.iter().filter(|event| TERMINAL.contains(&event.event.as_str())).count();
    let expected_terminals = usize::from(kind != Kind::Approval);
    tally.check(kind, &run_id, terminals == expected_terminals, || format!("{terminals} terminal events"));
    if let Some(last_seen) = seen.events.last() {
        let rest = stored_events(drill, key, &run_id, last_seen.id.parse().unwrap()).await;
        let ends = kind == Kind::Approval || rest.last().is_some_and(|event| TERMINAL.contains(&event.event.as_str()));
        tally.check(kind, &run_id, ends, || format!("resuming after seq {} gives no terminal event", last_seen.id));
    }
    Some((run_id, status))
}

/// The run's stored events after `after` (for a run that has ended or paused, the whole replay).
async fn stored_events(drill: &Drill, key: &str, run_id: &str, after: i64) -> Vec<SseEvent> {
    let response = drill
        .client
        .get(drill.url(&format!("/api/v1/runs/{run_id}/events")))
        .bearer_auth(key)
        .header("last-event-id", after.to_string())
        .send()
        .await
        .unwrap();
    read_sse(response).await
}

/// Follows a run until it ends; returns its terminal event's name.
async fn terminal_of(drill: &Drill, key: &str, run_id: &str) -> String {
    let events = stored_events(drill, key, run_id, 0).await;
    events.last().map(|event| event.event.clone()).unwrap_or_default()
}

/// One round: 20 turns under way, the process killed, started again, and the record checked.
async fn round(
    service: Service,
    drill: &Drill,
    upstream: &MockUpstream,
    approvals_upstream: &MockUpstream,
    number: usize,
    tally: &mut Tally,
) -> Service {
    for _ in 0..TURNS.iter().find(|(kind, _)| *kind == Kind::Approval).unwrap().1 {
        let call =
            ToolCall { id: String::new(), name: "crm__delete_customer".to_owned(), arguments: json!({ "id": 7 }) };
        approvals_upstream.push(Reply { tool_calls: vec![call], ..Reply::default() });
    }
    let mut turns = Vec::new();
    let mut started = Vec::new();
    for (kind, count) in TURNS {
        for index in 0..count {
            let (streaming, is_streaming) = oneshot::channel();
            turns.push(drill.turn(kind, index, number, streaming));
            started.push(is_streaming);
        }
    }
    let turns = futures::future::join_all(turns);
    let all_started = async {
        for is_streaming in started {
            let _ = is_streaming.await;
        }
    };
    // The turns run until the process dies under them; it dies once every turn has started to answer.
    let killing = async {
        all_started.await;
        service.signal(Signal::SIGKILL);
    };
    let (seen, ()) = tokio::join!(turns, killing);
    let service = service.restarted(upstream, 10).await;

    let mut to_finish = Vec::new();
    for seen in seen.iter().filter(|seen| seen.acknowledged) {
        let kind = seen.kind;
        *tally.acknowledged.entry(format!("{kind:?}")).or_default() += 1;
        if let Some((run_id, status)) = check_turn(drill, seen, tally).await {
            to_finish.push((kind, run_id, status, seen));
        }
    }
    // After the checks made at once: approvals are decided, queued agent runs done, retries answered.
    for (kind, run_id, status_at_restart, seen) in to_finish {
        match kind {
            Kind::Approval => {
                let waiting = seen.events.iter().find(|event| event.event == "tool_call.awaiting_approval");
                let call_id = waiting.and_then(|event| event.data["tool_call_id"].as_str());
                let Some(call_id) = call_id else {
                    tally.check(kind, &run_id, false, || "no waiting tool call was seen".to_owned());
                    continue;
                };
                let approved = drill
                    .post(&format!("/api/v1/tool-calls/{call_id}/approve"), &drill.approvals_key, &json!({}))
                    .send()
                    .await
                    .unwrap();
                tally
                    .check(kind, &run_id, approved.status().is_success(), || format!("approve: {}", approved.status()));
                let end = terminal_of(drill, &drill.approvals_key, &run_id).await;
                tally.check(kind, &run_id, end == "run.completed", || format!("after approval: {end}"));
            }
            Kind::Agent if status_at_restart == "queued" || status_at_restart == "running" => {
                let end = terminal_of(drill, &drill.admin_key, &run_id).await;
                let run = drill.get(&format!("/api/v1/runs/{run_id}"), &drill.admin_key).await;
                tally.check(kind, &run_id, end == "run.completed", || format!("a queued agent run ended {end}: {run}"));
            }
            Kind::Agent | Kind::Integration | Kind::Widget | Kind::OpenAi => {}
        }
        if let Some((key, body)) = &seen.integration {
            // The same request again, with its key: the first request's run answers (its result, or the
            // error it ended with), and no second question is asked.
            let mut body = body.clone();
            body["stream"] = json!(false);
            let again =
                drill.post("/api/v1/integration/chat", &drill.admin_key, &body).header("idempotency-key", key.clone());
            let again = again.send().await.unwrap().text().await.unwrap();
            tally.check(kind, &run_id, again.contains(&run_id), || format!("the retried request answered {again}"));
            let run = drill.get(&format!("/api/v1/runs/{run_id}"), &drill.admin_key).await;
            let session = run["session_id"].as_str().unwrap_or_default();
            let messages = drill.get(&format!("/api/v1/sessions/{session}/messages"), &drill.admin_key).await;
            let asked = messages["messages"].as_array().map_or(0, |messages| {
                messages
                    .iter()
                    .filter(|message| message["role"] == "user" && message["content"] == body["message"])
                    .count()
            });
            tally.check(kind, &run_id, asked == 1, || format!("the question was asked {asked} times"));
        }
    }
    service
}

fn rounds() -> usize {
    std::env::var("SWITCHBOARD_DRILL_ROUNDS").ok().and_then(|rounds| rounds.parse().ok()).unwrap_or(5)
}

#[tokio::test]
async fn killed_mid_answer_the_service_keeps_every_promise_after_its_restart() {
    let data_dir = fresh_data_dir("crash-drill");
    let port = free_port();
    // Answers of 200 words at 20 ms each: every turn is mid-stream when the process dies.
    let slow = Defaults { tokens: 200, chunk_delay: Duration::from_millis(20) };
    let upstream = MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), slow.clone()).await.unwrap();
    let approvals_upstream = MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), slow).await.unwrap();
    let tools = McpTestServer::start().await;
    let mut service = Service::start(&data_dir, port, &upstream, 10).await;
    let drill = Drill::set_up(&service, &approvals_upstream, &tools).await;

    let mut tally = Tally::default();
    let rounds = rounds();
    for number in 0..rounds {
        // The agent runs of earlier rounds are done before the next round's are queued.
        service = round(service, &drill, &upstream, &approvals_upstream, number, &mut tally).await;
    }
    service.signal(Signal::SIGTERM);
    service.exit().await;
    let turns: usize = tally.acknowledged.values().sum();
    eprintln!(
        "crash drill: {rounds} rounds, {turns} acknowledged turns ({:?}), losses: {}",
        tally.acknowledged,
        tally.losses.len()
    );
    assert!(tally.losses.is_empty(), "the drill found losses:\n{}", tally.losses.join("\n"));
    assert_eq!(turns, rounds * TURNS.iter().map(|(_, count)| count).sum::<usize>(), "every turn was acknowledged");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn stopped_politely_mid_answer_the_service_records_the_turn_as_stopped_with_its_partial_answer() {
    let data_dir = fresh_data_dir("sigterm");
    let port = free_port();
    let slow = Defaults { tokens: 2_000, chunk_delay: Duration::from_millis(20) };
    let upstream = MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), slow).await.unwrap();
    let tools = McpTestServer::start().await;
    // A grace period of one second: the 40-second answer cannot finish within it.
    let service = Service::start(&data_dir, port, &upstream, 1).await;
    let drill = Drill::set_up(&service, &upstream, &tools).await;
    let session = drill.expect(drill.post("/api/v1/sessions", &drill.admin_key, &json!({})), 201).await;
    let session = session["id"].as_str().unwrap().to_owned();
    let response = drill
        .post(&format!("/api/v1/sessions/{session}/messages"), &drill.admin_key, &json!({ "content": "A long one" }))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut seen = Vec::new();
    let mut signalled = false;
    while let Some(Ok(event)) = stream.next().await {
        let event = to_sse_event(event);
        if event.event == "message.delta" && !signalled {
            service.signal(Signal::SIGTERM);
            signalled = true;
        }
        seen.push(event);
    }
    let status = service.exit().await;
    assert!(status.success(), "a polite stop exits cleanly: {status}");

    // The client was told: the run failed with `shutting_down`, and its partial answer was kept.
    let last = seen.last().expect("events");
    assert_eq!((last.event.as_str(), &last.data["code"]), ("run.failed", &json!("shutting_down")), "{seen:#?}");
    let told: String = seen
        .iter()
        .filter(|event| event.event == "message.delta")
        .map(|event| event.data["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(!told.is_empty());

    let service = Service::start(&data_dir, port, &upstream, 1).await;
    let run_id = seen[0].data["run_id"].as_str().unwrap();
    let run = drill.get(&format!("/api/v1/runs/{run_id}"), &drill.admin_key).await;
    assert_eq!((run["status"].as_str(), run["error_code"].as_str()), (Some("failed"), Some("shutting_down")), "{run}");
    let messages = drill.get(&format!("/api/v1/sessions/{session}/messages"), &drill.admin_key).await;
    let messages = messages["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!((&messages[1]["status"], &messages[1]["content"]), (&json!("incomplete"), &json!(told)));
    let replay = stored_events(&drill, &drill.admin_key, run_id, 0).await;
    assert_eq!(replay.len(), seen.len(), "the record is what the client saw");
    service.signal(Signal::SIGTERM);
    service.exit().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
