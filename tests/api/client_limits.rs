//! What one client may hold of the service (`ClientLimits`): slow or silent connections are closed while
//! answers in flight are not, oversized heads get our 431, bodies are limited by route before they are
//! read, open event streams are capped per caller and tenant, connections over the cap are refused, and
//! a flood of idle connections and streams from one tenant leaves another tenant served.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use mock_upstream::{MockUpstream, Reply};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard::auth::OperatorToken;
use switchboard::demo::DemoMode;
use switchboard::http::{AppState, ClientLimits, WebSettings};
use switchboard::outbound::OutboundPolicy;
use switchboard::tools::Toolbox;
use switchboard::tools::settings::ToolSettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{OPERATOR_TOKEN, SseEvent, TestApp, assert_error, platform_key, read_sse, to_sse_event};
use crate::service_process::{free_port, fresh_data_dir, wait_for, wait_until_ready};

/// Bounds a wait that should end on its own; it asserts no speed.
const HANG: Duration = Duration::from_secs(60);

/// The app's router and engine once more, served with `limits` (documents embedded with the mock's model:
/// the local one would spend seconds of CPU on each large document).
async fn serve_with(app: &TestApp, limits: &ClientLimits) -> SocketAddr {
    let outbound = OutboundPolicy::new(&["127.0.0.1".to_owned()]);
    let state = AppState {
        db: app.app_db.clone(),
        engine: app.engine.clone(),
        retriever: app.retriever_for("openai/text-embedding-3-small", Some(256)).await,
        operator_token: Arc::new(OperatorToken::new(&SecretString::from(OPERATOR_TOKEN))),
        keys: Arc::clone(&app.keys),
        tools: Toolbox::new(ToolSettings::default(), Arc::clone(&app.keys), outbound.clone()),
        outbound,
        web: WebSettings { demo: DemoMode::Off, assets_dir: None },
        exports: switchboard::tenants::export::Exports::default(),
        metrics: switchboard::metrics::Metrics::install(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = switchboard::http::router_with_limits(state, limits);
    tokio::spawn(switchboard::http::serve_with_limits(listener, router, limits, std::future::pending()));
    address
}

/// Reads until the server closes the connection (or resets it); the bytes it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(HANG, stream.read(&mut buffer)).await.expect("the server closes the connection") {
            Ok(0) | Err(_) => return received,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// A raw HTTP/1.1 answer: its status, lower-case headers and JSON body.
fn parse_answer(bytes: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("an HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(candidate, _)| candidate == name).map(|(_, value)| value.as_str())
}

fn slow_reply(words: usize, delay: Duration) -> Reply {
    let text: Vec<String> = (0..words).map(|index| format!("word{index}")).collect();
    Reply { text: text.join(" "), chunk_delay: delay, ..Reply::default() }
}

#[tokio::test]
async fn slow_silent_and_idle_connections_are_closed_but_a_long_stream_is_not() {
    let app = TestApp::spawn().await;
    let short = Duration::from_secs(1);
    let limits =
        ClientLimits { header_timeout: short, idle_timeout: short, body_timeout: short, ..ClientLimits::default() };
    let address = serve_with(&app, &limits).await;
    let tenant = app.create_tenant("acme").await;

    // Headers trickled a field at a time, forever: the connection is closed, with no answer.
    let mut trickle = TcpStream::connect(address).await.unwrap();
    trickle.write_all(b"GET /healthz HTTP/1.1\r\nhost: switchboard\r\n").await.unwrap();
    let (mut reader, mut writer) = trickle.split();
    let trickling = async {
        for field in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(format!("x-field-{field}: a\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
    };
    let mut received = Vec::new();
    let disconnected = tokio::time::timeout(HANG, async {
        tokio::select! {
            () = trickling => {}
            read = reader.read_to_end(&mut received) => { let _ = read; }
        }
    });
    disconnected.await.expect("the trickling client is disconnected");
    assert!(received.is_empty(), "{}", String::from_utf8_lossy(&received));

    // A connection that sends nothing, and one kept alive after its answer, are closed too.
    let mut silent = TcpStream::connect(address).await.unwrap();
    assert!(read_until_closed(&mut silent).await.is_empty());
    let mut kept_alive = TcpStream::connect(address).await.unwrap();
    kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nhost: switchboard\r\n\r\n").await.unwrap();
    let answered = read_until_closed(&mut kept_alive).await;
    assert!(String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answered));

    // A body that stops arriving is answered 408, and the connection closed.
    let mut stalled = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nhost: switchboard\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"title\"",
        tenant.admin_key
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let (status, headers, body) = parse_answer(&read_until_closed(&mut stalled).await);
    assert_eq!((status, body["error"]["code"].as_str()), (408, Some("request_timeout")), "{body}");
    assert_eq!(header(&headers, "x-request-id"), body["error"]["request_id"].as_str());

    // An answer streamed for longer than both timeouts, with pauses between its events, is not cut.
    app.configure(&tenant, json!({"default_provider": "openai", "default_model": "gpt-4o-mini"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    app.mock.push(slow_reply(12, Duration::from_millis(250)));
    let response = reqwest::Client::new()
        .post(format!("http://{address}/api/v1/sessions/{session}/messages"))
        .bearer_auth(&tenant.admin_key)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "take your time"}))
        .send()
        .await
        .unwrap();
    let events = read_sse(response).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
}

#[tokio::test]
async fn oversized_headers_get_our_431_and_options_answers_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;

    let big = "x".repeat(40 * 1024);
    let response = app.get("/api/v1/sessions", &tenant.admin_key).header("x-big", &big).send().await.unwrap();
    assert_eq!(response.headers()["connection"], "close");
    assert_error(response, 431, "headers_too_large").await;

    let many = |count: usize| {
        (0..count).fold(app.client.get(app.url("/healthz")), |request, index| {
            request.header(format!("x-field-{index}"), "value")
        })
    };
    assert_error(many(101).send().await.unwrap(), 431, "headers_too_large").await;
    assert_eq!(many(90).send().await.unwrap().status(), 200);

    // Under /v1, in OpenAI's shape.
    let response = app.get("/v1/models", &tenant.admin_key).header("x-big", &big).send().await.unwrap();
    assert_eq!(response.status(), 431);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("invalid_request_error"), Some("headers_too_large"))
    );

    // A CORS preflight and a plain OPTIONS are answered by the CORS layer itself, outside the routes.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/sessions"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert!(preflight.headers().contains_key("x-request-id"), "{:?}", preflight.headers());
    let plain = app.client.request(reqwest::Method::OPTIONS, app.url("/healthz")).send().await.unwrap();
    assert!(plain.headers().contains_key("x-request-id"), "{:?}", plain.headers());
}

#[tokio::test]
async fn documents_may_be_larger_than_messages_and_a_declared_oversize_is_refused_before_the_body() {
    let app = TestApp::spawn().await;
    let limits = ClientLimits { max_body_bytes: 64 * 1024, max_document_bytes: 1024 * 1024, ..ClientLimits::default() };
    let address = serve_with(&app, &limits).await;
    let base = format!("http://{address}");
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "openai", "default_model": "gpt-4o-mini"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    let client = reqwest::Client::new();
    let post =
        |path: &str, body: &Value| client.post(format!("{base}{path}")).bearer_auth(&tenant.admin_key).json(body);

    // 200 KB of text: over the general limit, under the documents'.
    let text = "Quasars are calibrated nightly. ".repeat(6_400);
    let document = post("/api/v1/documents", &json!({"source_path": "quasars.md", "content": text})).send().await;
    assert_eq!(document.unwrap().status(), 201);
    let workspace = app.create_workspace(&tenant.admin_key, "ide").await;
    let file = client
        .put(format!("{base}/api/v1/workspaces/{workspace}/files/notes/quasars.md"))
        .bearer_auth(&tenant.admin_key)
        .json(&json!({"content": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 204);
    let message = post(&format!("/api/v1/sessions/{session}/messages"), &json!({"content": text})).send().await;
    assert_error(message.unwrap(), 413, "payload_too_large").await;
    let completion = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]});
    let response = post("/v1/chat/completions", &completion).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("invalid_request_error"), Some("payload_too_large"))
    );

    // A body declared larger than the documents' limit is refused on its head alone: none of it is sent.
    let mut declared = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/documents HTTP/1.1\r\nhost: switchboard\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        tenant.admin_key,
        100 * 1024 * 1024
    );
    declared.write_all(head.as_bytes()).await.unwrap();
    let (status, headers, body) = parse_answer(&read_until_closed(&mut declared).await);
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{body}");
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert!(header(&headers, "x-request-id").is_some());

    // A chunked body (no length declared) is cut at the limit: a message's 64 KiB, then one byte more.
    // Nothing follows, so the answer is read whole before the server closes the connection.
    let mut chunked = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/sessions/{session}/messages HTTP/1.1\r\nhost: switchboard\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        tenant.admin_key, limits.max_body_bytes
    );
    chunked.write_all(head.as_bytes()).await.unwrap();
    chunked.write_all(&vec![b' '; limits.max_body_bytes]).await.unwrap();
    chunked.write_all(b"\r\n1\r\n \r\n").await.unwrap();
    let (status, _, body) = parse_answer(&read_until_closed(&mut chunked).await);
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{body}");
}

/// Opens a turn's event stream and reads its first event.
async fn open_turn_stream(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    session: &str,
) -> (impl futures::Stream<Item = SseEvent>, String) {
    let response = client
        .post(format!("{base}/api/v1/sessions/{session}/messages"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "tell me a long story"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream())
        .map(|event| to_sse_event(event.expect("well-formed SSE")));
    let first = events.next().await.unwrap();
    let run_id = first.data["run_id"].as_str().unwrap().to_owned();
    (events, run_id)
}

#[tokio::test]
async fn open_streams_are_capped_per_caller_and_tenant_and_a_departed_client_frees_its_slot() {
    let app = TestApp::spawn().await;
    let limits = ClientLimits { max_streams_per_caller: 2, max_streams_per_tenant: 3, ..ClientLimits::default() };
    let address = serve_with(&app, &limits).await;
    let base = format!("http://{address}");
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "openai", "default_model": "gpt-4o-mini"})).await;
    let (_, second_key) = app.create_key(&tenant, &["chat"]).await;
    let session = app.create_session(&tenant.admin_key).await;
    app.mock.push(slow_reply(400, Duration::from_millis(100)));
    let client = reqwest::Client::new();
    let follow = |key: &str, run_id: &str| {
        client
            .get(format!("{base}/api/v1/runs/{run_id}/events"))
            .bearer_auth(key)
            .header("accept", "text/event-stream")
            .send()
    };

    let (turn, run_id) = open_turn_stream(&client, &base, &tenant.admin_key, &session).await;
    let following = follow(&tenant.admin_key, &run_id).await.unwrap();
    assert_eq!(following.status(), 200);
    let refused = follow(&tenant.admin_key, &run_id).await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "too_many_streams").await;
    // The same cap at the OpenAI door, in its shape; nothing was started.
    let completion = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let refused = client.post(format!("{base}/v1/chat/completions")).bearer_auth(&tenant.admin_key).json(&completion);
    let refused = refused.send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("rate_limit_error"), Some("too_many_streams"))
    );

    // Another key of the tenant has its own two, but the tenant only three in all.
    let other = follow(&second_key, &run_id).await.unwrap();
    assert_eq!(other.status(), 200);
    assert_error(follow(&second_key, &run_id).await.unwrap(), 429, "too_many_streams").await;

    // A client that goes away gives its slot back; its turn goes on.
    drop(following);
    wait_for("the departed client's slot", async || follow(&tenant.admin_key, &run_id).await.unwrap().status() == 200)
        .await;
    drop(turn);
    let cancelled = app.post(&format!("/api/v1/runs/{run_id}/cancel"), &tenant.admin_key, &json!({})).send().await;
    assert_eq!(cancelled.unwrap().status(), 200);
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_with_a_503_until_one_closes() {
    let app = TestApp::spawn().await;
    let limits = ClientLimits { max_connections: 3, header_timeout: HANG, ..ClientLimits::default() };
    let address = serve_with(&app, &limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    // Accepted in order: the fourth finds the three above holding every place.
    let mut over = TcpStream::connect(address).await.unwrap();
    let (status, headers, body) = parse_answer(&read_until_closed(&mut over).await);
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("too_many_connections")), "{body}");
    assert!(header(&headers, "retry-after").is_some());

    held.pop();
    let client = reqwest::Client::new();
    let healthz = format!("http://{address}/healthz");
    wait_for("a place to be freed", async || {
        client.get(&healthz).send().await.is_ok_and(|response| response.status() == 200)
    })
    .await;
}

/// The service process's resident memory, in kB.
fn resident_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Enough descriptors for this test's connections, and for the service it starts (which inherits them).
fn raise_open_files_limit(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < wanted {
        assert!(hard >= wanted, "this test needs {wanted} open files; the hard limit is {hard}");
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
    }
}

/// The service process, killed when dropped (a failed assertion included), so none is left behind.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary, its model providers and embeddings served by `mock`, with limits from the environment.
fn start_service(data_dir: &Path, port: u16, mock: &MockUpstream, limits: &[(&str, &str)]) -> Child {
    let corpus = data_dir.join("no-corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let log = std::fs::File::create(data_dir.join("service.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_CORPUS_DIR", &corpus)
        .env("SWITCHBOARD_EMBEDDING_MODEL", "openai/text-embedding-3-small")
        .env("SWITCHBOARD_EMBEDDING_DIMENSIONS", "256")
        .env("SWITCHBOARD_DEMO", "off")
        .env("OPENAI_API_KEY", platform_key("openai"))
        .env("OPENAI_BASE_URL", mock.openai_base())
        .envs(limits.iter().copied())
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the switchboard binary starts")
}

/// Creates a tenant through the API, set to answer with the mock's OpenAI model; returns its admin key.
async fn openai_tenant(client: &reqwest::Client, base: &str, operator: &str, slug: &str) -> String {
    let created: Value = client
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(operator)
        .json(&json!({"name": slug, "slug": slug}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"]["key"].as_str().unwrap().to_owned();
    let settings = json!({"default_provider": "openai", "default_model": "gpt-4o-mini"});
    let configured = client.patch(format!("{base}/api/v1/tenant/config")).bearer_auth(&key).json(&settings);
    assert_eq!(configured.send().await.unwrap().status(), 200);
    key
}

async fn new_session(client: &reqwest::Client, base: &str, key: &str) -> String {
    let created = client.post(format!("{base}/api/v1/sessions")).bearer_auth(key).json(&json!({})).send().await;
    let session: Value = created.unwrap().json().await.unwrap();
    session["id"].as_str().unwrap().to_owned()
}

const IDLE_CONNECTIONS: usize = 2_000;
const STREAMS: usize = 500;

#[tokio::test]
async fn idle_connections_and_streams_of_one_tenant_leave_another_tenant_served() {
    raise_open_files_limit(8_192);
    let mock = MockUpstream::start().await;
    // The busy tenant's turn: a long answer, streamed slowly, that every one of its streams follows.
    mock.push(slow_reply(600, Duration::from_millis(500)));
    let data_dir = fresh_data_dir("limits");
    let port = free_port();
    // Long header and idle timeouts, so that the idle connections are all still open when counted.
    let limits = [
        ("SWITCHBOARD_HEADER_TIMEOUT_SECS", "600"),
        ("SWITCHBOARD_IDLE_TIMEOUT_SECS", "600"),
        ("SWITCHBOARD_MAX_STREAMS_PER_CALLER", "1000"),
    ];
    let mut service = Service(start_service(&data_dir, port, &mock, &limits));
    let pid = service.0.id();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut service.0, &data_dir, &base).await;
    let operator = std::fs::read_to_string(data_dir.join("operator-token")).unwrap();
    let client = reqwest::Client::new();
    let busy = openai_tenant(&client, &base, operator.trim(), "busy").await;
    let calm = openai_tenant(&client, &base, operator.trim(), "calm").await;
    let busy_session = new_session(&client, &base, &busy).await;
    let calm_session = new_session(&client, &base, &calm).await;
    let (rss_before, files_before) = (resident_kb(pid), open_files(pid));

    // Idle connections, opened 250 at a time, each batch once the service holds the one before: the listen
    // queue (1,024) never overflows, whatever else keeps the machine's cores busy meanwhile.
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    while idle.len() < IDLE_CONNECTIONS {
        let batch = futures::future::join_all((0..250).map(|_| TcpStream::connect(address))).await;
        idle.extend(batch.into_iter().map(Result::unwrap));
        let held = files_before + idle.len();
        wait_for("the service to accept the idle connections", async || open_files(pid) >= held).await;
    }

    // The busy tenant's streams: its turn, and everyone else following it, each on its own connection.
    let (turn, run_id) = open_turn_stream(&client, &base, &busy, &busy_session).await;
    let mut streams = Vec::with_capacity(STREAMS);
    let follow = || {
        client
            .get(format!("{base}/api/v1/runs/{run_id}/events"))
            .bearer_auth(&busy)
            .header("accept", "text/event-stream")
            .send()
    };
    for _ in 0..(STREAMS - 1) / 100 {
        for response in futures::future::join_all((0..100).map(|_| follow())).await {
            let response = response.unwrap();
            assert_eq!(response.status(), 200);
            streams.push(response);
        }
    }
    for response in futures::future::join_all((0..(STREAMS - 1) % 100).map(|_| follow())).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        streams.push(response);
    }
    assert_eq!(streams.len() + 1, STREAMS);

    // The calm tenant is answered meanwhile.
    let answer = client
        .post(format!("{base}/api/v1/sessions/{calm_session}/messages"))
        .bearer_auth(&calm)
        .json(&json!({"content": "are you there?"}))
        .timeout(HANG)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["run"]["status"], "succeeded", "{answer}");
    assert!(answer["message"]["content"].as_str().is_some_and(|text| text.starts_with("token0")), "{answer}");

    let (rss_after, files_after) = (resident_kb(pid), open_files(pid));
    println!(
        "service RSS {rss_before} kB -> {rss_after} kB with {IDLE_CONNECTIONS} idle connections and {STREAMS} \
         streams of one tenant open; open files {files_before} -> {files_after}"
    );
    drop((turn, streams, idle));

    tokio::task::spawn_blocking(move || drop(service)).await.unwrap();
    let server_dir =
        switchboard::db::embedded::Layout::for_data_dir(&data_dir).unwrap().cluster_dir.parent().unwrap().to_path_buf();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(server_dir);
}
