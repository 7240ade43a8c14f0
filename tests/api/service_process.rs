//! The real binary with its embedded PostgreSQL: it becomes ready, answers questions about itself from
//! its documentation with no key, and leaves no PostgreSQL behind whether it is stopped politely or killed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use switchboard::db::embedded::{self, Layout};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{read_sse, streamed_text, test_data_dir};
use crate::otlp::{OtlpReceiver, ReceivedSpan};

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running service, killed when dropped while it still runs: a test that fails before it stops its
/// service must not leave it running (and busy) for the rest of the run.
pub(crate) struct Service(pub(crate) Child);

impl std::ops::Deref for Service {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Service {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Service {
    /// Stops it politely (SIGTERM) and waits for it; returns how it exited.
    pub(crate) async fn stop(&mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(i32::try_from(self.0.id()).unwrap()), Signal::SIGTERM).unwrap();
        let mut status = None;
        wait_for("the service to stop", async || {
            status = self.0.try_wait().unwrap();
            status.is_some()
        })
        .await;
        status.unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(crate) fn start_service(data_dir: &Path, port: u16) -> Service {
    start_service_with(data_dir, port, &[])
}

/// [`start_service`] with more settings in its environment.
pub(crate) fn start_service_with(data_dir: &Path, port: u16, settings: &[(&str, &str)]) -> Service {
    std::fs::create_dir_all(data_dir).unwrap();
    let log = std::fs::File::create(data_dir.join("service.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        // Removed before the settings, which may name a database of their own.
        .env_remove("DATABASE_URL")
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the switchboard binary starts");
    Service(child)
}

/// Polls until `condition` holds; the deadline only bounds a hang, it asserts no speed.
pub(crate) async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(5);
    while !condition().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The postmaster's pid and port, from the first and fourth lines of `postmaster.pid`.
pub(crate) fn postmaster(cluster_dir: &Path) -> (Pid, u16) {
    let contents = std::fs::read_to_string(cluster_dir.join("postmaster.pid")).expect("postmaster.pid");
    let lines: Vec<&str> = contents.lines().collect();
    (Pid::from_raw(lines[0].trim().parse().unwrap()), lines[3].trim().parse().unwrap())
}

pub(crate) fn is_running(pid: Pid) -> bool {
    // A zombie still answers signals; /proc tells whether it is really gone or only unreaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// A fresh data directory that shares the test binaries' PostgreSQL install (so no second pip install).
pub(crate) fn fresh_data_dir(name: &str) -> PathBuf {
    let shared = Layout::for_data_dir(&test_data_dir()).unwrap();
    embedded::ensure_installed(&shared).unwrap();
    let data_dir = test_data_dir().join(format!("service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let layout = Layout::for_data_dir(&data_dir).unwrap();
    let _ = std::fs::remove_dir_all(&layout.cluster_dir);
    let _ = std::fs::remove_file(&layout.install_dir);
    std::os::unix::fs::symlink(&shared.install_dir, &layout.install_dir).unwrap();
    // The embedding model too is shared with the test binary rather than installed again.
    std::fs::create_dir_all(test_data_dir().join("models")).unwrap();
    std::os::unix::fs::symlink(test_data_dir().join("models"), data_dir.join("models")).unwrap();
    data_dir
}

/// Starts the service and waits until it is ready; returns it with its base URL.
async fn start_and_wait(data_dir: &Path) -> (Service, String) {
    start_ready_with(data_dir, &[]).await
}

/// [`start_service_with`] on a free port, waited for until it is ready; returns it with its base URL.
pub(crate) async fn start_ready_with(data_dir: &Path, settings: &[(&str, &str)]) -> (Service, String) {
    let port = free_port();
    let mut service = start_service_with(data_dir, port, settings);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut service, data_dir, &base).await;
    (service, base)
}

/// Asks `/readyz` until it answers 200; panics with the service's log if the service exits first.
pub(crate) async fn wait_until_ready(service: &mut Child, data_dir: &Path, base: &str) {
    let client = reqwest::Client::new();
    let ready_url = format!("{base}/readyz");
    wait_for("/readyz", async || {
        if let Some(status) = service.try_wait().unwrap() {
            let log = std::fs::read_to_string(data_dir.join("service.log")).unwrap_or_default();
            panic!("the service exited before it was ready ({status}):\n{log}");
        }
        client.get(&ready_url).send().await.is_ok_and(|response| response.status() == 200)
    })
    .await;
}

async fn run_until_ready_then(data_dir: &Path, signal: Signal) {
    let cluster_dir = Layout::for_data_dir(data_dir).unwrap().cluster_dir;
    let (mut service, _) = start_and_wait(data_dir).await;
    let (postgres, _) = postmaster(&cluster_dir);
    assert!(is_running(postgres));

    kill(Pid::from_raw(i32::try_from(service.id()).unwrap()), signal).unwrap();
    let status = tokio::task::spawn_blocking(move || service.wait()).await.unwrap().unwrap();
    if signal == Signal::SIGTERM {
        assert!(status.success(), "a polite stop exits cleanly: {status}");
    }
    wait_for("PostgreSQL to stop", async || !is_running(postgres)).await;
}

// The first start creates the cluster, the second reuses it; the cluster is stopped politely once and
// by the kernel once.
#[tokio::test]
async fn the_service_becomes_ready_and_leaves_no_postgres_behind_when_stopped_or_killed() {
    let data_dir = fresh_data_dir("lifecycle");
    run_until_ready_then(&data_dir, Signal::SIGTERM).await;
    run_until_ready_then(&data_dir, Signal::SIGKILL).await;
    let server_dir = Layout::for_data_dir(&data_dir).unwrap().cluster_dir.parent().unwrap().to_path_buf();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(server_dir);
}

/// The trace a client says it is in (W3C trace context): the service's spans continue it.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_fresh_service_answers_about_itself_from_its_documentation_with_citations_and_traces_the_turn() {
    let data_dir = fresh_data_dir("answers");
    // Its metrics on an address of their own, without a token; its traces to a real OTLP/HTTP receiver.
    let (port, metrics_port) = (free_port(), free_port());
    let metrics_address = format!("127.0.0.1:{metrics_port}");
    let (collector, collector_url) = OtlpReceiver::start().await;
    let settings = [
        ("SWITCHBOARD_METRICS_LISTEN", metrics_address.as_str()),
        ("SWITCHBOARD_OTLP_ENDPOINT", &collector_url),
        ("SWITCHBOARD_LOG_FORMAT", "json"),
    ];
    let mut service = start_service_with(&data_dir, port, &settings);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut service, &data_dir, &base).await;
    let operator = std::fs::read_to_string(data_dir.join("operator-token")).unwrap();
    let client = reqwest::Client::new();
    let tenant = json!({ "name": "Newcomer", "slug": "newcomer" });
    let created = call(&base, Method::POST, "/api/v1/tenants", operator.trim(), Some(tenant)).await;
    let key = created["api_key"]["key"].as_str().unwrap();
    // The shared corpus is opt-in: the newcomer asks for Switchboard's documentation.
    call(&base, Method::PATCH, "/api/v1/tenant/config", key, Some(json!({ "shared_corpus": true }))).await;
    let session = call(&base, Method::POST, "/api/v1/sessions", key, Some(json!({}))).await;
    let session = session["id"].as_str().unwrap();
    let response = client
        .post(format!("{base}/api/v1/sessions/{session}/messages"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({ "content": "How do I rotate the master key?" }))
        .send()
        .await
        .unwrap();
    let events = read_sse(response).await;
    let metrics = client.get(format!("http://{metrics_address}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "the metrics address needs no token");
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains(r#"switchboard_runs_total{kind="chat",status="succeeded"}"#), "{metrics}");
    assert!(!metrics.contains(operator.trim()) && !metrics.contains(key), "no secret in the metrics");
    let guarded = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(guarded.status(), 401, "the service's own address asks for the operator's token");
    // A polite stop sends the spans still batched.
    kill(Pid::from_raw(i32::try_from(service.id()).unwrap()), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || service.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    assert_turn_traced(&collector.spans(), &[operator.trim(), key]);
    assert_request_logged(&std::fs::read_to_string(data_dir.join("service.log")).unwrap(), &[operator.trim(), key]);

    let retrieval = events.iter().find(|event| event.event == "retrieval").expect("a retrieval event");
    let citations = retrieval.data["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{events:#?}");
    let cited: Vec<&str> = citations.iter().map(|citation| citation["source_path"].as_str().unwrap()).collect();
    assert!(cited.iter().all(|path| std::path::Path::new("docs_corpus").join(path).exists()), "{cited:?}");
    let answer = streamed_text(&events);
    assert!(answer.contains("[1]") && answer.contains("rotate-master-key"), "{answer}");
    let server_dir = Layout::for_data_dir(&data_dir).unwrap().cluster_dir.parent().unwrap().to_path_buf();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(server_dir);
}

/// The turn is one trace, the client's: its request's span is the client span's child, the turn the
/// request's, and the model call (with OpenTelemetry's GenAI attributes), retrieval and the question's
/// embedding lie within it. No secret is in any span.
fn assert_turn_traced(spans: &[ReceivedSpan], secrets: &[&str]) {
    let turn_spans: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.trace_id == CLIENT_TRACE).collect();
    let named = |name: &str| {
        turn_spans
            .iter()
            .copied()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span {name}: {turn_spans:#?}"))
    };
    let request = named("POST /api/v1/sessions/{id}/messages");
    assert_eq!(request.parent_span_id, CLIENT_SPAN, "{request:?}");
    assert_eq!(request.attribute("route"), Some("/api/v1/sessions/{id}/messages"));
    let turn = named("turn");
    assert_eq!(turn.parent_span_id, request.span_id, "{turn:?}");
    let chat = turn_spans.iter().find(|span| span.name.starts_with("chat ")).expect("a model call's span");
    assert_eq!(chat.parent_span_id, turn.span_id, "{chat:?}");
    assert_eq!(chat.attribute("gen_ai.operation.name"), Some("chat"));
    assert_eq!(chat.attribute("gen_ai.system"), Some("local"), "{chat:?}");
    assert!(chat.attribute("gen_ai.request.model").is_some_and(|model| !model.is_empty()), "{chat:?}");
    let ids: Vec<&str> = turn_spans.iter().map(|span| span.span_id.as_str()).collect();
    for name in ["retrieval", "embedding"] {
        let span = named(name);
        assert!(ids.contains(&span.parent_span_id.as_str()), "{name} is not within the turn's trace: {span:?}");
    }
    for span in spans {
        for (key, value) in &span.attributes {
            assert!(!secrets.iter().any(|secret| value.contains(secret)), "a secret in span {}'s {key}", span.name);
        }
    }
}

/// A turn of the real binary that calls a tool is one trace: the model calls (to a provider speaking
/// OpenAI's wire format, which receives the trace in `traceparent`) and the tool call are the turn's
/// children.
#[tokio::test]
async fn a_turn_with_a_tool_call_is_one_trace_carried_on_to_the_provider() {
    let mock = mock_upstream::MockUpstream::start().await;
    let crm = crate::mcp_server::McpTestServer::start().await;
    let (collector, collector_url) = OtlpReceiver::start().await;
    let data_dir = fresh_data_dir("traced-tools");
    let port = free_port();
    let (openai_base, platform_key) = (mock.openai_base(), crate::helpers::platform_key("openai"));
    let settings = [
        ("SWITCHBOARD_OTLP_ENDPOINT", collector_url.as_str()),
        ("OPENAI_BASE_URL", openai_base.as_str()),
        ("OPENAI_API_KEY", platform_key.as_str()),
        // The test's MCP server listens on loopback, which tenant-supplied URLs may not reach otherwise.
        ("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.1"),
        // Quiet logs still trace.
        ("RUST_LOG", "warn"),
        // The operator asked for a tenant label on the model and run series.
        ("SWITCHBOARD_METRICS_TENANTS", "5"),
    ];
    let mut service = start_service_with(&data_dir, port, &settings);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut service, &data_dir, &base).await;
    let (key, tenant_id) = tenant_with_crm(&base, &data_dir, &crm.url).await;
    let client = reqwest::Client::new();
    mock.push(mock_upstream::Reply {
        tool_calls: vec![crate::tools::call("crm__find_customers", json!({ "query": "Dupont" }))],
        ..mock_upstream::Reply::default()
    });
    mock.push(mock_upstream::Reply { text: "Two customers match.".into(), ..mock_upstream::Reply::default() });
    let session = call(&base, Method::POST, "/api/v1/sessions", &key, Some(json!({}))).await;
    let session = session["id"].as_str().unwrap();
    let response = client
        .post(format!("{base}/api/v1/sessions/{session}/messages"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({ "content": "Who is Dupont?" }))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let events = read_sse(response).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    // The run and the audit entries of its tool call keep the trace, and the run its request's id.
    let run_id = events[0].data["run_id"].as_str().unwrap();
    let run = call(&base, Method::GET, &format!("/api/v1/runs/{run_id}"), &key, None).await;
    assert_eq!(run["trace_id"], CLIENT_TRACE, "{run}");
    assert_eq!(run["request_id"], request_id.as_str(), "{run}");
    let audit = call(&base, Method::GET, "/api/v1/audit-events", &key, None).await;
    let decided = audit["audit_events"].as_array().unwrap().iter().find(|event| event["action"] == "tool_call.decided");
    assert_eq!(decided.expect("the call's decision is audited")["trace_id"], CLIENT_TRACE, "{audit}");
    assert_tenant_labelled(&base, &data_dir, &tenant_id).await;
    kill(Pid::from_raw(i32::try_from(service.id()).unwrap()), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || service.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");

    let spans: Vec<ReceivedSpan> = collector.spans().into_iter().filter(|span| span.trace_id == CLIENT_TRACE).collect();
    let turn = spans.iter().find(|span| span.name == "turn").unwrap_or_else(|| panic!("no turn span: {spans:#?}"));
    let chats: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.name == "chat gpt-4o-mini").collect();
    assert_eq!(chats.len(), 2, "a model call before the tool and one after: {spans:#?}");
    assert!(
        chats
            .iter()
            .all(|chat| chat.parent_span_id == turn.span_id && chat.attribute("gen_ai.system") == Some("openai"))
    );
    assert!(chats.iter().all(|chat| chat.attribute("gen_ai.usage.input_tokens").is_some()), "{chats:#?}");
    let tool = spans
        .iter()
        .find(|span| span.name == "execute_tool crm.find_customers")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(tool.parent_span_id, turn.span_id, "{tool:?}");
    assert_eq!(tool.attribute("switchboard.tool.connector"), Some("crm"), "{tool:?}");
    assert_eq!(tool.attribute("switchboard.tool.decision"), Some("allow"), "{tool:?}");
    // The tool server was told the trace under the tool call's span, in `_meta` and in the headers.
    let in_meta = crm.meta_traceparents.lock().unwrap().clone();
    let expected = format!("00-{CLIENT_TRACE}-{}-01", tool.span_id);
    assert_eq!(in_meta, [Some(expected.clone())], "the search's _meta");
    assert!(crm.traceparent_headers.lock().unwrap().contains(&expected), "the tools/call request's headers");
    // The provider was told the trace, each time under the span of the model call that asked.
    let told: Vec<String> =
        mock.requests().iter().filter_map(|request| request.headers.get("traceparent").cloned()).collect();
    assert_eq!(told.len(), 2, "{told:?}");
    for (traceparent, chat) in told.iter().zip(&chats) {
        assert!(traceparent.starts_with(&format!("00-{CLIENT_TRACE}-")), "{traceparent}");
        assert!(
            chats.iter().any(|chat| traceparent.contains(&chat.span_id)),
            "{traceparent} names no model call ({chat:?})"
        );
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The JSON log has one line for the turn's request with its status and latency, under its route, tenant
/// and trace; no line holds a secret.
fn assert_request_logged(log: &str, secrets: &[&str]) {
    assert!(!secrets.iter().any(|secret| log.contains(secret)), "a secret in the log");
    let lines: Vec<Value> = log.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let finished = lines
        .iter()
        .find(|line| line["message"] == "finished processing request" && line["span"]["trace_id"] == CLIENT_TRACE)
        .unwrap_or_else(|| panic!("no request line in the client's trace:\n{log}"));
    assert_eq!(finished["status"], 200, "{finished}");
    assert!(finished["latency"].is_string(), "{finished}");
    assert_eq!(finished["span"]["route"], "/api/v1/sessions/{id}/messages", "{finished}");
    assert!(
        finished["span"]["tenant_id"].as_str().is_some_and(|tenant| uuid::Uuid::parse_str(tenant).is_ok()),
        "{finished}"
    );
}

/// With `SWITCHBOARD_METRICS_TENANTS` set, the run and its tokens are counted under the tenant's id.
async fn assert_tenant_labelled(base: &str, data_dir: &Path, tenant_id: &str) {
    let operator = std::fs::read_to_string(data_dir.join("operator-token")).unwrap();
    let response = reqwest::Client::new().get(format!("{base}/metrics")).bearer_auth(operator.trim()).send().await;
    let text = response.unwrap().text().await.unwrap();
    let label = format!(r#"tenant="{tenant_id}""#);
    for series in ["switchboard_runs_total{", "gen_ai_client_token_usage_sum{", "switchboard_model_cost_usd{"] {
        assert!(
            text.lines().any(|line| line.starts_with(series) && line.contains(&label)),
            "{series} has no {label}:\n{text}"
        );
    }
    assert!(text.contains("switchboard_turn_added_seconds_count{kind=\"chat\"}"), "{text}");
}

/// A tenant of the real binary answering with OpenAI's model, with a connector `crm` at `crm_url` and a
/// policy allowing its searches; its admin key and its id.
async fn tenant_with_crm(base: &str, data_dir: &Path, crm_url: &str) -> (String, String) {
    let operator = std::fs::read_to_string(data_dir.join("operator-token")).unwrap();
    let created = call(
        base,
        Method::POST,
        "/api/v1/tenants",
        operator.trim(),
        Some(json!({ "name": "Traced", "slug": "traced" })),
    )
    .await;
    let key = created["api_key"]["key"].as_str().unwrap().to_owned();
    let tenant_id = created["tenant"]["id"].as_str().unwrap().to_owned();
    let config = json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" });
    call(base, Method::PATCH, "/api/v1/tenant/config", &key, Some(config)).await;
    let connector = json!({ "name": "crm", "transport": "streamable_http", "url": crm_url });
    call(base, Method::POST, "/api/v1/mcp-connectors", &key, Some(connector)).await;
    let profile = json!({ "name": "default", "tool_allowlist": ["crm.find_*"] });
    let profile = call(base, Method::POST, "/api/v1/policy-profiles", &key, Some(profile)).await;
    call(
        base,
        Method::PATCH,
        "/api/v1/tenant/config",
        &key,
        Some(json!({ "active_policy_profile_id": profile["id"] })),
    )
    .await;
    (key, tenant_id)
}

/// One call to the service that must succeed (2xx); its JSON answer, `Null` for an empty one. No body
/// for a GET.
pub(crate) async fn call(base: &str, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
}

/// A new tenant, made with the operator's token from the data directory; its first key.
pub(crate) async fn create_tenant(base: &str, data_dir: &Path, slug: &str) -> String {
    let operator = std::fs::read_to_string(data_dir.join("operator-token")).unwrap();
    let created =
        call(base, Method::POST, "/api/v1/tenants", operator.trim(), Some(json!({ "name": slug, "slug": slug }))).await;
    created["api_key"]["key"].as_str().unwrap().to_owned()
}
