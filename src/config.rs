//! The service's settings: one typed struct, read once at start from the environment (see API.md).
//! Secrets are `secrecy` types; generated ones are stored in the data directory, readable only by us.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::demo::DemoMode;
use crate::embeddings::{EmbeddingModel, EmbeddingProvider, RemoteEndpoint, voyage};
use crate::http::ClientLimits;
use crate::providers::ProviderKind;
use crate::providers::credentials::{PlatformCredentials, PlatformProviders};
use crate::rate_limits::{DEFAULT_MAX_CONCURRENT_RUNS, Limits, MAX_PER_MINUTE, OperatorLimits};
use crate::retrieval::rerank::{self, RerankModel, RerankSettings};
use crate::tools::settings::{StdioServers, ToolSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot use {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `SWITCHBOARD_METRICS_LISTEN`: a second address serving `/metrics` alone, without a token, for
    /// the operator's network.
    pub metrics_listen: Option<SocketAddr>,
    /// `SWITCHBOARD_METRICS_TENANTS`: how many tenants get their own `tenant` label on the model and run
    /// series (0, the default: none; the rest are `other`), so cardinality stays the operator's choice.
    pub metrics_tenants: usize,
    pub data_dir: PathBuf,
    /// The owner connection (migrations), or the pooler when `database_direct_url` is set; `None` runs the
    /// embedded server.
    pub database_url: Option<SecretString>,
    /// `SWITCHBOARD_DATABASE_DIRECT_URL`: the same database reached directly, not through the connection
    /// pooler `DATABASE_URL` then names (PgBouncer, say). Migrations, the executor lock and LISTEN, which
    /// need a session of their own, use it; only the pool goes through the pooler. Only with `DATABASE_URL`;
    /// checked to be a PostgreSQL URL at start.
    pub database_direct_url: Option<SecretString>,
    pub operator_token: SecretString,
    /// Encrypts tenants' provider keys at rest and derives the application role's database password.
    pub master_key: SecretString,
    /// Earlier master keys, still accepted for opening secrets until `rotate-master-key` re-seals them.
    pub previous_master_keys: Vec<SecretString>,
    /// The platform's own provider keys, used when a tenant has none.
    pub platform_providers: PlatformProviders,
    /// Hosts or CIDRs that tenant-supplied URLs may reach although they are loopback or private.
    pub outbound_allow: Vec<String>,
    /// The shared documentation ingested into the system tenant at start.
    pub corpus_dir: PathBuf,
    /// What one client may hold of the service: request sizes, timeouts, connections, event streams
    /// (`SWITCHBOARD_MAX_BODY_BYTES` and the others read by `client_limits`, below).
    pub limits: ClientLimits,
    /// The operator's rate limits: defaults for tenants that set none of their own, and the cap on a
    /// tenant's running runs (read by `rate_limits`, below; `serve` hands them to the rate limiter).
    pub rate_limits: OperatorLimits,
    /// The model that embeds chunks and questions (`SWITCHBOARD_EMBEDDING_MODEL`, default the local one).
    pub embedding_model: EmbeddingModel,
    /// Where the remote embedding providers are reached: OpenAI and Gemini with the platform's chat keys,
    /// Voyage with `VOYAGE_API_KEY`.
    pub embedding_endpoints: HashMap<EmbeddingProvider, RemoteEndpoint>,
    /// The reranker searches and turns may use (`SWITCHBOARD_RERANK_MODEL`: `cohere/…`, `voyage/…` or
    /// `jina/…`, with the provider's key and optional base URL, and `SWITCHBOARD_RERANK_TIMEOUT_MS`);
    /// unset: none.
    pub reranker: Option<RerankSettings>,
    /// Stdio MCP servers tenants may use (`SWITCHBOARD_MCP_STDIO_SERVERS`), tool-call deadlines
    /// (`SWITCHBOARD_TOOL_TIMEOUT_SECS`) and the address browsers and authorization servers reach this
    /// service at, for OAuth connectors' redirect URI and client metadata document (`SWITCHBOARD_PUBLIC_URL`).
    pub tools: ToolSettings,
    /// Whether `GET /` embeds a live chat widget for a demo tenant (`SWITCHBOARD_DEMO`).
    pub demo: DemoMode,
    /// Serve `widget.js` and the demo page from this folder, read on each request, instead of the copies
    /// built into the binary (`SWITCHBOARD_WEB_DIR`): for working on the widget without rebuilding.
    pub web_assets_dir: Option<PathBuf>,
    /// The model catalog: the built-in one, extended or replaced by `SWITCHBOARD_MODEL_CATALOG`.
    pub catalog: crate::catalog::Catalog,
    /// How long turns in flight may go on after SIGTERM before they are stopped and recorded as failed
    /// with `shutting_down` (`SWITCHBOARD_SHUTDOWN_GRACE_SECS`, default 10).
    pub shutdown_grace: std::time::Duration,
    /// How often this process sweeps what tenants' retention settings no longer keep
    /// (`SWITCHBOARD_RETENTION_INTERVAL_SECS`, default 3600).
    pub retention_interval: std::time::Duration,
    /// How webhook deliveries are sent and retried: the first wait after a failed attempt is
    /// `SWITCHBOARD_WEBHOOK_RETRY_BASE_MS` (default 30000), doubling to at most 4 hours, for 24 hours.
    pub webhooks: crate::webhooks::deliver::WebhookSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let listen = env("SWITCHBOARD_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_owned()).parse().map_err(
            |error: std::net::AddrParseError| ConfigError::Invalid {
                name: "SWITCHBOARD_LISTEN",
                reason: error.to_string(),
            },
        )?;
        let data_dir = PathBuf::from(env("SWITCHBOARD_DATA_DIR").unwrap_or_else(|| "./.switchboard".to_owned()));
        fs::create_dir_all(&data_dir).map_err(|source| ConfigError::Io { path: data_dir.clone(), source })?;
        let operator_token = match env("SWITCHBOARD_OPERATOR_TOKEN") {
            Some(token) => SecretString::from(token),
            None => load_or_generate(&data_dir.join("operator-token"), "operator token", "sbo_")?,
        };
        let master_key = match env("SWITCHBOARD_MASTER_KEY") {
            Some(key) => SecretString::from(key),
            None => {
                let path = data_dir.join("master-key");
                let key = load_or_generate(&path, "master key", "")?;
                tracing::warn!(
                    path = %path.display(),
                    "SWITCHBOARD_MASTER_KEY is unset: using a generated key stored in the data directory; \
                     production must set it"
                );
                key
            }
        };
        let embedding_dimensions = match env("SWITCHBOARD_EMBEDDING_DIMENSIONS") {
            Some(value) => Some(value.parse().map_err(|_| ConfigError::Invalid {
                name: "SWITCHBOARD_EMBEDDING_DIMENSIONS",
                reason: "expected a number".to_owned(),
            })?),
            None => None,
        };
        let embedding_model = EmbeddingModel::parse(
            &env("SWITCHBOARD_EMBEDDING_MODEL").unwrap_or_else(|| "local".to_owned()),
            embedding_dimensions,
        )
        .map_err(|error| ConfigError::Invalid { name: "SWITCHBOARD_EMBEDDING_MODEL", reason: error.to_string() })?;
        let platform_providers = platform_providers();
        let mut tools = ToolSettings::default();
        if let Some(servers) = env("SWITCHBOARD_MCP_STDIO_SERVERS") {
            tools.stdio_servers = StdioServers::parse(&servers)
                .map_err(|reason| ConfigError::Invalid { name: "SWITCHBOARD_MCP_STDIO_SERVERS", reason })?;
        }
        if let Some(seconds) = env("SWITCHBOARD_TOOL_TIMEOUT_SECS") {
            let seconds: u64 =
                seconds.parse().ok().filter(|seconds| *seconds > 0).ok_or_else(|| ConfigError::Invalid {
                    name: "SWITCHBOARD_TOOL_TIMEOUT_SECS",
                    reason: "expected a positive number of seconds".to_owned(),
                })?;
            tools.call_timeout = std::time::Duration::from_secs(seconds);
        }
        let metrics_listen = env("SWITCHBOARD_METRICS_LISTEN")
            .map(|address| {
                address.parse().map_err(|error: std::net::AddrParseError| ConfigError::Invalid {
                    name: "SWITCHBOARD_METRICS_LISTEN",
                    reason: error.to_string(),
                })
            })
            .transpose()?;
        let (demo, rate_limits, metrics_tenants) = (demo_mode(&listen)?, rate_limits()?, metrics_tenants()?);
        Ok(Self {
            demo,
            web_assets_dir: env("SWITCHBOARD_WEB_DIR").map(PathBuf::from),
            catalog: match env("SWITCHBOARD_MODEL_CATALOG") {
                Some(path) => crate::catalog::Catalog::with_operator_file(Path::new(&path)).map_err(|error| {
                    ConfigError::Invalid { name: "SWITCHBOARD_MODEL_CATALOG", reason: error.to_string() }
                })?,
                None => crate::catalog::Catalog::built_in(),
            },
            shutdown_grace: std::time::Duration::from_secs(match env("SWITCHBOARD_SHUTDOWN_GRACE_SECS") {
                Some(seconds) => seconds.parse().map_err(|_| ConfigError::Invalid {
                    name: "SWITCHBOARD_SHUTDOWN_GRACE_SECS",
                    reason: "expected a number of seconds".to_owned(),
                })?,
                None => 10,
            }),
            retention_interval: seconds("SWITCHBOARD_RETENTION_INTERVAL_SECS", std::time::Duration::from_secs(3600))?,
            webhooks: webhook_settings()?,
            tools: ToolSettings { public_url: Some(public_url(&listen)?), ..tools },
            embedding_endpoints: embedding_endpoints(&platform_providers),
            reranker: rerank_settings()?,
            embedding_model,
            listen,
            metrics_listen,
            metrics_tenants,
            data_dir,
            database_url: env("DATABASE_URL").map(SecretString::from),
            database_direct_url: database_direct_url()?,
            operator_token,
            master_key,
            previous_master_keys: list("SWITCHBOARD_PREVIOUS_MASTER_KEYS")
                .into_iter()
                .map(SecretString::from)
                .collect(),
            platform_providers,
            outbound_allow: list("SWITCHBOARD_OUTBOUND_ALLOW"),
            limits: client_limits()?,
            rate_limits,
            corpus_dir: PathBuf::from(env("SWITCHBOARD_CORPUS_DIR").unwrap_or_else(|| "docs_corpus".to_owned())),
        })
    }

    /// The application role's database password, derived from the master key so that every process
    /// sharing one database agrees on it without storing another secret.
    pub fn app_database_password(&self) -> SecretString {
        app_database_password(&self.master_key)
    }
}

/// The application role's database password for a master key (see [`Config::app_database_password`]).
pub fn app_database_password(master_key: &SecretString) -> SecretString {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(master_key.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"switchboard_app database password");
    SecretString::from(hex::encode(mac.finalize().into_bytes()))
}

/// `SWITCHBOARD_PUBLIC_URL`: the service's address as browsers reach it (`https://switchboard.example.com`),
/// without a trailing slash; by default `http://` and the listen address (`localhost` for an unspecified one).
fn public_url(listen: &SocketAddr) -> Result<String, ConfigError> {
    let Some(url) = env("SWITCHBOARD_PUBLIC_URL") else {
        let host = if listen.ip().is_unspecified() { "localhost".to_owned() } else { listen.ip().to_string() };
        let host = if listen.ip().is_ipv6() && !listen.ip().is_unspecified() { format!("[{host}]") } else { host };
        return Ok(format!("http://{host}:{}", listen.port()));
    };
    let url = url.trim_end_matches('/').to_owned();
    let valid = reqwest::Url::parse(&url).is_ok_and(|parsed| {
        matches!(parsed.scheme(), "http" | "https") && parsed.query().is_none() && parsed.fragment().is_none()
    });
    if !valid {
        return Err(ConfigError::Invalid {
            name: "SWITCHBOARD_PUBLIC_URL",
            reason: "expected an http or https URL without query or fragment".to_owned(),
        });
    }
    Ok(url)
}

/// `SWITCHBOARD_DEMO`: `auto` (the default: when listening on a loopback address, the page hands a token
/// to a browser on the server's own machine only, so neither a local reverse proxy nor a rebound DNS name
/// gives one to anybody else), `on` (to anyone who opens the page: the operator's explicit choice, for a
/// shared demo), or `off`.
fn demo_mode(listen: &SocketAddr) -> Result<DemoMode, ConfigError> {
    let tenant_slug = env("SWITCHBOARD_DEMO_TENANT").unwrap_or_else(|| "demo".to_owned());
    match env("SWITCHBOARD_DEMO").as_deref().unwrap_or("auto") {
        "on" => Ok(DemoMode::On { tenant_slug, local_only: false }),
        "auto" if listen.ip().is_loopback() => Ok(DemoMode::On { tenant_slug, local_only: true }),
        "off" | "auto" => Ok(DemoMode::Off),
        other => Err(ConfigError::Invalid {
            name: "SWITCHBOARD_DEMO",
            reason: format!("expected on, off or auto, not {other:?}"),
        }),
    }
}

/// `SWITCHBOARD_METRICS_TENANTS`: 0 to 10000, default 0.
fn metrics_tenants() -> Result<usize, ConfigError> {
    let Some(limit) = env("SWITCHBOARD_METRICS_TENANTS") else { return Ok(0) };
    limit.trim().parse::<usize>().ok().filter(|limit| *limit <= 10_000).ok_or_else(|| ConfigError::Invalid {
        name: "SWITCHBOARD_METRICS_TENANTS",
        reason: "expected a number of tenants from 0 to 10000".to_owned(),
    })
}

/// `SWITCHBOARD_DATABASE_DIRECT_URL`, refused unless it parses as a PostgreSQL URL and `DATABASE_URL` is set
/// (without it the service runs its embedded server, which no pooler stands in front of).
fn database_direct_url() -> Result<Option<SecretString>, ConfigError> {
    const NAME: &str = "SWITCHBOARD_DATABASE_DIRECT_URL";
    let Some(url) = env(NAME) else { return Ok(None) };
    if env("DATABASE_URL").is_none() {
        return Err(ConfigError::Invalid {
            name: NAME,
            reason: "it goes with DATABASE_URL (the pooler's address); without DATABASE_URL the embedded server \
                     is used"
                .to_owned(),
        });
    }
    // The URL is a secret (it may hold a password): the reason never quotes it.
    url.parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|_| ConfigError::Invalid { name: NAME, reason: "expected a postgres:// URL".to_owned() })?;
    Ok(Some(SecretString::from(url)))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn list(name: &str) -> Vec<String> {
    env(name)
        .map(|list| list.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`, each with an optional `*_BASE_URL`.
fn platform_providers() -> PlatformProviders {
    let mut providers = PlatformProviders::new();
    for (kind, prefix) in
        [(ProviderKind::OpenAi, "OPENAI"), (ProviderKind::Anthropic, "ANTHROPIC"), (ProviderKind::Gemini, "GEMINI")]
    {
        let Some(api_key) = env(&format!("{prefix}_API_KEY")) else { continue };
        let base_url = env(&format!("{prefix}_BASE_URL"))
            .or_else(|| kind.default_base_url().map(str::to_owned))
            .expect("the hosted providers have a default base URL");
        providers.insert(kind, PlatformCredentials { api_key: SecretString::from(api_key), base_url });
    }
    providers
}

fn embedding_endpoints(platform: &PlatformProviders) -> HashMap<EmbeddingProvider, RemoteEndpoint> {
    let mut endpoints = HashMap::new();
    for (kind, provider) in
        [(ProviderKind::OpenAi, EmbeddingProvider::OpenAi), (ProviderKind::Gemini, EmbeddingProvider::Gemini)]
    {
        if let Some(credentials) = platform.get(&kind) {
            let endpoint =
                RemoteEndpoint { api_key: credentials.api_key.clone(), base_url: credentials.base_url.clone() };
            endpoints.insert(provider, endpoint);
        }
    }
    if let Some(api_key) = env("VOYAGE_API_KEY") {
        let base_url = env("VOYAGE_BASE_URL").unwrap_or_else(|| voyage::DEFAULT_BASE_URL.to_owned());
        endpoints.insert(EmbeddingProvider::Voyage, RemoteEndpoint { api_key: SecretString::from(api_key), base_url });
    }
    endpoints
}

/// `SWITCHBOARD_RERANK_MODEL` (unset: no reranker) with its provider's key (`COHERE_API_KEY`,
/// `VOYAGE_API_KEY` or `JINA_API_KEY`, required), base URL (`*_BASE_URL`, optional) and
/// `SWITCHBOARD_RERANK_TIMEOUT_MS` (default 2000). The key is never quoted.
pub fn rerank_settings() -> Result<Option<RerankSettings>, ConfigError> {
    const NAME: &str = "SWITCHBOARD_RERANK_MODEL";
    let Some(spec) = env(NAME) else { return Ok(None) };
    let model = RerankModel::parse(&spec).map_err(|reason| ConfigError::Invalid { name: NAME, reason })?;
    let provider = model.provider;
    let api_key = env(provider.key_variable()).ok_or_else(|| ConfigError::Invalid {
        name: NAME,
        reason: format!("{} needs {}, which is not set", model.id(), provider.key_variable()),
    })?;
    let base_url = env(provider.base_url_variable()).unwrap_or_else(|| provider.default_base_url().to_owned());
    let valid_url = reqwest::Url::parse(&base_url).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
    if !valid_url {
        return Err(ConfigError::Invalid {
            name: provider.base_url_variable(),
            reason: "expected an http:// or https:// URL".to_owned(),
        });
    }
    let default_ms = usize::try_from(rerank::DEFAULT_TIMEOUT.as_millis()).unwrap_or(usize::MAX);
    let timeout_ms = positive("SWITCHBOARD_RERANK_TIMEOUT_MS", "milliseconds", default_ms)?;
    Ok(Some(RerankSettings {
        model,
        endpoint: RemoteEndpoint { api_key: SecretString::from(api_key), base_url },
        timeout: std::time::Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX)),
    }))
}

/// Reads a secret from `path`, or generates 32 random bytes, stores them hex-encoded (mode 600) and logs
/// where (never the value).
fn load_or_generate(path: &Path, what: &str, prefix: &str) -> Result<SecretString, ConfigError> {
    let io_error = |source| ConfigError::Io { path: path.to_path_buf(), source };
    if path.exists() {
        let value = fs::read_to_string(path).map_err(io_error)?;
        return Ok(SecretString::from(value.trim().to_owned()));
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let value = format!("{prefix}{}", hex::encode(bytes));
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io_error)?;
    file.write_all(value.as_bytes()).map_err(io_error)?;
    tracing::info!(path = %path.display(), "generated the {what} and stored it in the data directory");
    Ok(SecretString::from(value))
}

// Limits per client ---------------------------------------------------------------------------------
// Each a positive number; the defaults are `ClientLimits::default`'s, documented in
// docs_corpus/operations.md ("Limits per client").

/// The limits per client, each from its variable or its default.
fn client_limits() -> Result<ClientLimits, ConfigError> {
    let defaults = ClientLimits::default();
    Ok(ClientLimits {
        max_body_bytes: positive("SWITCHBOARD_MAX_BODY_BYTES", "bytes", defaults.max_body_bytes)?,
        max_document_bytes: positive("SWITCHBOARD_MAX_DOCUMENT_BYTES", "bytes", defaults.max_document_bytes)?,
        max_header_bytes: positive("SWITCHBOARD_MAX_HEADER_BYTES", "bytes", defaults.max_header_bytes)?,
        max_headers: positive("SWITCHBOARD_MAX_HEADERS", "header fields", defaults.max_headers)?,
        header_timeout: seconds("SWITCHBOARD_HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
        idle_timeout: seconds("SWITCHBOARD_IDLE_TIMEOUT_SECS", defaults.idle_timeout)?,
        body_timeout: seconds("SWITCHBOARD_BODY_TIMEOUT_SECS", defaults.body_timeout)?,
        max_connections: positive("SWITCHBOARD_MAX_CONNECTIONS", "connections", defaults.max_connections)?,
        max_streams_per_tenant: positive(
            "SWITCHBOARD_MAX_STREAMS_PER_TENANT",
            "streams",
            defaults.max_streams_per_tenant,
        )?,
        max_streams_per_caller: positive(
            "SWITCHBOARD_MAX_STREAMS_PER_CALLER",
            "streams",
            defaults.max_streams_per_caller,
        )?,
    })
}

/// A positive whole number of `unit` from `name`, or `default` when it is unset.
fn positive(name: &'static str, unit: &str, default: usize) -> Result<usize, ConfigError> {
    let Some(value) = env(name) else { return Ok(default) };
    value
        .trim()
        .parse()
        .ok()
        .filter(|number| *number > 0)
        .ok_or_else(|| ConfigError::Invalid { name, reason: format!("expected a positive number of {unit}") })
}

/// How webhook deliveries are retried: `SWITCHBOARD_WEBHOOK_RETRY_BASE_MS` (a positive number of milliseconds,
/// default 30000) is the first wait after a failed attempt; the rest are the defaults.
fn webhook_settings() -> Result<crate::webhooks::deliver::WebhookSettings, ConfigError> {
    let base = positive("SWITCHBOARD_WEBHOOK_RETRY_BASE_MS", "milliseconds", 30_000)?;
    Ok(crate::webhooks::deliver::WebhookSettings {
        retry_base: std::time::Duration::from_millis(u64::try_from(base).unwrap_or(u64::MAX)),
        ..crate::webhooks::deliver::WebhookSettings::default()
    })
}

/// A positive whole number of seconds from `name`, or `default` when it is unset.
fn seconds(name: &'static str, default: std::time::Duration) -> Result<std::time::Duration, ConfigError> {
    let seconds = positive(name, "seconds", usize::try_from(default.as_secs()).unwrap_or(usize::MAX))?;
    Ok(std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(u64::MAX)))
}

// Rate limits ---------------------------------------------------------------------------------------
// The operator's defaults for tenants that set no limit of their own (docs_corpus/usage-and-limits.md):
// requests and tokens per minute per API key, per tenant and per end user, each unlimited when unset;
// and the cap on a tenant's running runs, 50 when unset.

/// The operator's rate limits, each from its variable.
fn rate_limits() -> Result<OperatorLimits, ConfigError> {
    let per_minute = |name: &'static str, unit: &str| -> Result<Option<u64>, ConfigError> {
        let Some(value) = env(name) else { return Ok(None) };
        let limit = value.trim().parse().ok().filter(|limit| (1..=MAX_PER_MINUTE).contains(limit));
        limit.map(Some).ok_or_else(|| ConfigError::Invalid {
            name,
            reason: format!("expected a whole number of {unit} per minute, from 1 to {MAX_PER_MINUTE}"),
        })
    };
    let limits = |requests: &'static str, tokens: &'static str| -> Result<Limits, ConfigError> {
        Ok(Limits {
            requests_per_minute: per_minute(requests, "requests")?,
            tokens_per_minute: per_minute(tokens, "tokens")?,
        })
    };
    let default_runs = usize::try_from(DEFAULT_MAX_CONCURRENT_RUNS).unwrap_or(usize::MAX);
    let max_runs = positive("SWITCHBOARD_MAX_CONCURRENT_RUNS_PER_TENANT", "runs", default_runs)?;
    Ok(OperatorLimits {
        api_key: limits(
            "SWITCHBOARD_RATE_LIMIT_API_KEY_REQUESTS_PER_MINUTE",
            "SWITCHBOARD_RATE_LIMIT_API_KEY_TOKENS_PER_MINUTE",
        )?,
        tenant: limits(
            "SWITCHBOARD_RATE_LIMIT_TENANT_REQUESTS_PER_MINUTE",
            "SWITCHBOARD_RATE_LIMIT_TENANT_TOKENS_PER_MINUTE",
        )?,
        end_user: limits(
            "SWITCHBOARD_RATE_LIMIT_END_USER_REQUESTS_PER_MINUTE",
            "SWITCHBOARD_RATE_LIMIT_END_USER_TOKENS_PER_MINUTE",
        )?,
        max_concurrent_runs_per_tenant: u64::try_from(max_runs).unwrap_or(u64::MAX),
    })
}
