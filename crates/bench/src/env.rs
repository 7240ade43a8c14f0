//! The processes under test: PostgreSQL (embedded, durable as in production), mock upstreams, the release
//! `switchboard` binary and the peer proxy, each its own process so its CPU and memory can be read and
//! it can be pinned to a core.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use switchboard::db::embedded::{Durability, EmbeddedPostgres, Layout};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

pub const OPERATOR_TOKEN: &str = "sbo_bench_operator_token";
pub const MASTER_KEY: &str = "bench-master-key-0123456789abcdef";
/// Questions and documents are embedded by the mock's OpenAI embeddings (deterministic, instant), so that
/// a corpus of 100k chunks can be built in minutes and searched with vectors the bench can recompute.
pub const EMBEDDING_MODEL: &str = "openai/text-embedding-3-small";
pub const EMBEDDING_DIMENSIONS: u32 = 384;

/// Which cores each process runs on (`--pin`): the service and its database on one, the load generator,
/// mocks and peer on the other, so neither side steals the other's CPU.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    pub enabled: bool,
}

impl Pinning {
    pub const SERVER_CORE: &'static str = "1";
    pub const CLIENT_CORE: &'static str = "0";

    /// Pins every thread of `pid` (and the children it forks later) to `core`.
    pub async fn pin(self, pid: u32, core: &str) {
        if !self.enabled {
            return;
        }
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", core, &pid.to_string()])
            .stdout(Stdio::null())
            .status()
            .await;
        if !status.is_ok_and(|status| status.success()) {
            eprintln!("warning: could not pin process {pid} to core {core} (is taskset installed?)");
        }
    }
}

/// Where the release binaries are: beside this one.
fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.exists() {
        bail!("{} is missing: build it with `cargo build --release --workspace`", path.display());
    }
    Ok(path)
}

/// A mock upstream process streaming `tokens` words, `delay` apart.
pub struct Mock {
    pub url: String,
    /// Killed when dropped.
    child: Child,
}

impl Mock {
    pub async fn start(tokens: usize, delay: Duration, pinning: Pinning) -> anyhow::Result<Self> {
        let mut child = Command::new(binary("mock-upstream")?)
            .args(["--listen", "127.0.0.1:0", "--tokens", &tokens.to_string()])
            .args(["--delay-ms", &delay.as_millis().to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("mock stdout")?;
        let url = BufReader::new(stdout).lines().next_line().await?.context("the mock printed its address")?;
        if let Some(pid) = child.id() {
            pinning.pin(pid, Pinning::CLIENT_CORE).await;
        }
        Ok(Self { url, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// Anthropic's base URL: clients POST `{base}/v1/messages`.
    pub fn anthropic_base(&self) -> String {
        self.url.clone()
    }
}

/// The database: one embedded PostgreSQL for the whole run, fresh each time.
pub struct Database {
    pub server: EmbeddedPostgres,
    pub owner_url: SecretString,
}

impl Database {
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.to_owned();
        let server = tokio::task::spawn_blocking(move || {
            let layout = Layout::throwaway(&dir, &format!("{}-bench", std::process::id()))?;
            EmbeddedPostgres::start(&layout, Durability::Durable)
        })
        .await??;
        switchboard::db::create_database_if_missing(&server.maintenance_options(), "bench").await?;
        let owner_url = server.owner_url("bench");
        Ok(Self { server, owner_url })
    }

    pub fn owner_options(&self) -> sqlx::postgres::PgConnectOptions {
        self.server.maintenance_options().database("bench")
    }

    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || self.server.stop()).await;
    }
}

/// The `switchboard serve` process.
pub struct Service {
    pub base: String,
    child: Child,
}

impl Service {
    /// Starts the release binary on `database`, with `embeddings` (a mock) as its OpenAI endpoint for
    /// embeddings and `traces` (an OTLP/HTTP endpoint) to export its spans to, if any, and waits until it is
    /// ready (migrations applied, corpus ingested).
    pub async fn start(
        database: &Database,
        embeddings: &Mock,
        data_dir: &Path,
        pinning: Pinning,
        traces: Option<&str>,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(binary("switchboard")?)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_DATA_DIR", data_dir.join("service"))
            .env("DATABASE_URL", database.owner_url.expose_secret())
            .env("SWITCHBOARD_OPERATOR_TOKEN", OPERATOR_TOKEN)
            .env("SWITCHBOARD_MASTER_KEY", MASTER_KEY)
            .env("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.1")
            .env("SWITCHBOARD_DEMO", "off")
            .env("SWITCHBOARD_MAX_BODY_BYTES", (8 * 1024 * 1024).to_string())
            // The streams suite opens thousands at once with one key: the per-caller and per-tenant
            // limits (100 and 1,000 by default) would refuse most of them.
            .env("SWITCHBOARD_MAX_STREAMS_PER_CALLER", "20000")
            .env("SWITCHBOARD_MAX_STREAMS_PER_TENANT", "20000")
            .env("SWITCHBOARD_MAX_CONNECTIONS", "20000")
            // And the runs one tenant may have at once (50 by default).
            .env("SWITCHBOARD_MAX_CONCURRENT_RUNS_PER_TENANT", "20000")
            .env("SWITCHBOARD_EMBEDDING_MODEL", EMBEDDING_MODEL)
            .env("SWITCHBOARD_EMBEDDING_DIMENSIONS", EMBEDDING_DIMENSIONS.to_string())
            .env("OPENAI_API_KEY", "bench-platform-key")
            .env("OPENAI_BASE_URL", embeddings.openai_base())
            // `BENCH_SERVICE_LOG` shows more of the service's own log (for example `sqlx::query=debug`, each
            // statement with its time) on the bench's standard error.
            .env("RUST_LOG", std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".to_owned()))
            // Traces to a collector with `--traces` (their cost is measured so).
            .envs(traces.map(|endpoint| ("SWITCHBOARD_OTLP_ENDPOINT", endpoint)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&format!("{base}/readyz"), Duration::from_secs(120), &mut child).await?;
        if let Some(pid) = child.id() {
            pinning.pin(pid, Pinning::SERVER_CORE).await;
        }
        Ok(Self { base, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

/// Polls `url` until it answers 200, the process dies, or `limit` passes.
pub async fn wait_ready(url: &str, limit: Duration, child: &mut Child) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if client.get(url).send().await.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the process serving {url} exited: {status}");
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{url} was not ready within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A tenant made through the operator API, with its admin (chat, runs) key.
pub struct Tenant {
    pub key: String,
}

impl Tenant {
    /// Creates tenant `slug` whose OpenAI provider (its own key, "bring your own") is `chat` — a mock.
    pub async fn create(client: &reqwest::Client, service: &Service, slug: &str, chat: &Mock) -> anyhow::Result<Self> {
        let created: Value = client
            .post(format!("{}/api/v1/tenants", service.base))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({ "name": slug, "slug": slug }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let key = created["api_key"]["key"].as_str().context("tenant key")?.to_owned();
        let tenant = Self { key };
        tenant.use_chat_mock(client, service, chat).await?;
        client
            .patch(format!("{}/api/v1/tenant/config", service.base))
            .bearer_auth(&tenant.key)
            .json(&json!({ "default_provider": "openai", "default_model": "bench-model" }))
            .send()
            .await?
            .error_for_status()?;
        Ok(tenant)
    }

    /// Points the tenant's OpenAI provider at `chat`.
    pub async fn use_chat_mock(&self, client: &reqwest::Client, service: &Service, chat: &Mock) -> anyhow::Result<()> {
        client
            .put(format!("{}/api/v1/providers/openai", service.base))
            .bearer_auth(&self.key)
            .json(&json!({ "api_key": "bench-tenant-key", "base_url": chat.openai_base(), "default_model": "bench-model" }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Gives the tenant an Anthropic key of its own whose base URL is `chat` (in Anthropic's format):
    /// `anthropic/…` models then reach that mock's `/v1/messages`.
    pub async fn use_anthropic_mock(
        &self,
        client: &reqwest::Client,
        service: &Service,
        chat: &Mock,
    ) -> anyhow::Result<()> {
        client
            .put(format!("{}/api/v1/providers/anthropic", service.base))
            .bearer_auth(&self.key)
            .json(&json!({ "api_key": "bench-tenant-anthropic-key", "base_url": chat.anthropic_base() }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `count` new conversations, made eight at a time.
    pub async fn new_sessions(
        &self,
        client: &reqwest::Client,
        service: &Service,
        count: usize,
    ) -> anyhow::Result<Vec<String>> {
        use futures::StreamExt as _;
        futures::stream::iter(0..count)
            .map(|_| self.new_session(client, service))
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    pub async fn new_session(&self, client: &reqwest::Client, service: &Service) -> anyhow::Result<String> {
        let session: Value = client
            .post(format!("{}/api/v1/sessions", service.base))
            .bearer_auth(&self.key)
            .json(&json!({}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(session["id"].as_str().context("session id")?.to_owned())
    }
}

/// The load generator's HTTP client: many connections, no pool limit; a request not answered within two
/// minutes counts as an error (no user waits that long).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(120))
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client")
}
