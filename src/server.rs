//! Starting and stopping the service: the database (embedded or `DATABASE_URL`), the HTTP server, and an
//! orderly shutdown on SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::auth::OperatorToken;
use crate::config::Config;
use crate::crypto::MasterKeys;
use crate::db::{self, embedded};
use crate::embeddings::EmbedderFactory;
use crate::engine::{Engine, ProviderSetup};
use crate::outbound::OutboundPolicy;
use crate::prompts::Prompts;
use crate::providers::http::{HttpClient, UpstreamSettings};
use crate::retrieval::Retriever;
use crate::tools::Toolbox;

/// The database the service runs on, and the embedded server when there is one.
#[derive(Debug)]
pub struct Database {
    /// The owner, connected directly (never through a pooler): migrations and role setup.
    pub owner: PgConnectOptions,
    pub app: PgPool,
    /// The application role, connected directly: for what needs a session of its own.
    direct: PgConnectOptions,
    /// Shared with its supervisor ([`embedded::supervise`]), which starts it again if it dies.
    pub embedded: Option<Arc<embedded::EmbeddedPostgres>>,
}

impl Database {
    /// Starts (or reaches) the database, prepares it and connects the application pool.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        // With a pooler in front (`SWITCHBOARD_DATABASE_DIRECT_URL` set), the owner's work goes around it.
        let (owner, embedded) = match (&config.database_direct_url, &config.database_url) {
            (Some(direct), _) => (direct.expose_secret().parse::<PgConnectOptions>()?, None),
            (None, Some(url)) => (url.expose_secret().parse::<PgConnectOptions>()?, None),
            (None, None) => {
                let data_dir = config.data_dir.clone();
                let server = tokio::task::spawn_blocking(move || {
                    let layout = embedded::Layout::for_data_dir(&data_dir)?;
                    embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Durable)
                })
                .await??;
                db::create_database_if_missing(&server.maintenance_options(), embedded::EMBEDDED_DATABASE_NAME).await?;
                (server.owner_options(), Some(Arc::new(server)))
            }
        };
        let app_password = config.app_database_password();
        db::prepare(&owner, &app_password).await?;
        let pooled = match (&config.database_direct_url, &config.database_url) {
            (Some(_), Some(pooler)) => db::through_pooler(pooler.expose_secret().parse::<PgConnectOptions>()?),
            _ => owner.clone(),
        };
        let app = db::connect_app_pool(&pooled, &app_password).await?;
        let direct = db::app_options(&owner, &app_password);
        Ok(Self { owner, app, direct, embedded })
    }

    /// The application role's connection options straight to PostgreSQL, for what holds a session of its
    /// own (the executor lock, LISTEN): `SWITCHBOARD_DATABASE_DIRECT_URL` when the pool goes through a
    /// pooler, else the very server the pool connects to.
    pub fn session_options(&self) -> PgConnectOptions {
        self.direct.clone()
    }

    /// Closes the pool, then stops the embedded server and waits for it.
    pub async fn close(self) {
        self.app.close().await;
        if let Some(server) = self.embedded {
            let _ = tokio::task::spawn_blocking(move || server.shut_down()).await;
        }
    }

    /// Keeps the embedded server running while the service does: a tracked task restarts it if it dies
    /// and ends at shutdown, before [`Self::close`] stops the server for good.
    pub fn supervise(&self, background: &crate::background::Background) {
        if let Some(server) = &self.embedded {
            background.spawn(embedded::supervise(Arc::clone(server), background.stopping().clone()));
        }
    }
}

/// A run whose executor still holds its lock but has not proved alive for this long (a process hung,
/// or cut off from the database while the database kept its connection) is closed as interrupted.
const RUN_STALE_AFTER: Duration = Duration::from_secs(60);

/// `switchboard serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::rate_limits::install_operator_limits(config.rate_limits);
    let prompts = Prompts::load()?;
    tokio::task::spawn_blocking(crate::tokens::warm_up);
    let database = Database::open(&config).await?;
    let http = HttpClient::new(UpstreamSettings::default());
    let retriever = open_retriever(&config, &database, &http).await;
    sync_shared_corpus(&database.app, &retriever, &config.corpus_dir).await;
    let keys = Arc::new(MasterKeys::new(&config.master_key, &config.previous_master_keys));
    let outbound = OutboundPolicy::new(&config.outbound_allow);
    let providers = ProviderSetup {
        http,
        tenant_http: HttpClient::guarded(UpstreamSettings::default(), &outbound),
        platform: config.platform_providers.clone(),
        keys: Arc::clone(&keys),
        catalog: config.catalog.clone(),
    };
    let toolbox = Toolbox::new(config.tools.clone(), Arc::clone(&keys), outbound.clone()).with_database(&database.app);
    crate::runs::executor::connect_directly(database.session_options());
    let engine = Engine::new(database.app.clone(), prompts, providers, retriever.clone(), toolbox.clone()).await?;
    engine.listen_to_other_processes(database.session_options()).await?;
    database.supervise(engine.background());
    // The runs a killed predecessor left are closed before anyone can ask for them.
    match engine.sweep_stale_runs(RUN_STALE_AFTER).await {
        Ok(0) => {}
        Ok(closed) => tracing::warn!(closed, "closed the runs a stopped process left unfinished"),
        Err(error) => tracing::warn!(%error, "could not sweep stale runs at start"),
    }
    engine.start_sweeper(Duration::from_secs(30), RUN_STALE_AFTER);
    crate::retrieval::backfill::spawn(
        engine.background(),
        database.app.clone(),
        retriever.clone(),
        Duration::from_secs(60),
    );
    engine.start_workers(4);
    crate::retention::spawn(engine.background(), database.app.clone(), config.retention_interval);
    crate::webhooks::deliver::spawn(
        engine.background(),
        database.app.clone(),
        Arc::clone(&keys),
        &outbound,
        config.webhooks.clone(),
    );
    let state = crate::http::AppState {
        db: database.app.clone(),
        engine: engine.clone(),
        retriever,
        operator_token: Arc::new(OperatorToken::new(&config.operator_token)),
        keys,
        outbound,
        tools: toolbox,
        web: crate::http::WebSettings { demo: config.demo.clone(), assets_dir: config.web_assets_dir.clone() },
        exports: crate::tenants::export::Exports::default(),
        metrics: {
            crate::metrics::label_tenants(config.metrics_tenants);
            crate::metrics::Metrics::install()
        },
    };
    let metrics_router = crate::http::metrics_router(state.clone());
    let router = crate::http::router_with_limits(state, &config.limits);
    let metrics_listener = match config.metrics_listen {
        Some(address) => Some(tokio::net::TcpListener::bind(address).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    if config.database_url.is_none() {
        tracing::info!(
            operator_token_file = %config.data_dir.join("operator-token").display(),
            "the operator token is in the data directory unless SWITCHBOARD_OPERATOR_TOKEN is set"
        );
    }
    tracing::info!(%address, "Switchboard is listening: http://{address}/");
    // At SIGTERM the server stops accepting while the engine gives turns their grace period; the
    // streams of the turns it then stops end with their closing event, and the server with them.
    let stopping = tokio_util::sync::CancellationToken::new();
    let serving = async {
        let served =
            crate::http::serve_with_limits(listener, router, &config.limits, stopping.clone().cancelled_owned()).await;
        stopping.cancel();
        served
    };
    let serving_metrics = async {
        let Some(listener) = metrics_listener else { return Ok(()) };
        tracing::info!(address = %listener.local_addr()?, "metrics are served without a token on this address");
        crate::http::serve_with_limits(listener, metrics_router, &config.limits, stopping.clone().cancelled_owned())
            .await
    };
    let stopping_turns = async {
        tokio::select! {
            () = shutdown_signal() => stopping.cancel(),
            () = stopping.cancelled() => {}
        }
        tracing::info!(grace_secs = config.shutdown_grace.as_secs(), "shutting down");
        engine.shutdown(config.shutdown_grace).await;
    };
    let (served, served_metrics, ()) = tokio::join!(serving, serving_metrics, stopping_turns);
    database.close().await;
    served?;
    served_metrics?;
    Ok(())
}

/// The retriever with the configured embedding model, checked (and the local model installed and loaded)
/// before the service listens, so the first question does not wait for it.
async fn open_retriever(config: &Config, database: &Database, http: &HttpClient) -> Retriever {
    let factory = EmbedderFactory::new(
        config.embedding_endpoints.clone(),
        http.clone(),
        &config.data_dir,
        config.catalog.clone(),
    );
    let retriever =
        crate::retrieval::backfill::prepare(&database.owner, &database.app, &factory, config.embedding_model.clone())
            .await;
    let reranker = config.reranker.clone().map(|settings| {
        tracing::info!(model = %settings.model.id(), "searches may be reranked");
        crate::retrieval::rerank::Reranker::new(settings, http.clone(), &config.catalog)
    });
    retriever.with_reranker(reranker)
}

/// Brings the system tenant's documentation in line with the corpus folder; a failure is logged, not fatal.
async fn sync_shared_corpus(pool: &sqlx::PgPool, retriever: &Retriever, folder: &std::path::Path) {
    if !folder.is_dir() {
        tracing::warn!(folder = %folder.display(), "no documentation corpus folder; the shared corpus stays as it is");
        return;
    }
    let embedder = retriever.document_embedder();
    let synced = crate::retrieval::corpus::sync(
        pool,
        crate::ids::TenantId::SYSTEM,
        folder,
        embedder.as_ref(),
        true,
        |_, _, _| {},
    );
    match synced.await {
        Ok(report) => tracing::info!(
            folder = %folder.display(),
            created = report.created,
            updated = report.updated,
            unchanged = report.unchanged,
            removed = report.removed,
            "shared documentation corpus is in sync"
        ),
        Err(error) => tracing::error!(%error, "could not ingest the documentation corpus"),
    }
}

/// `switchboard ingest PATH`: adds or updates a folder of markdown in a tenant's documents (the shared
/// corpus by default), printing each file as it goes. Documents not in the folder are kept.
pub async fn ingest(config: Config, folder: std::path::PathBuf, tenant_slug: Option<String>) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let tenant = match tenant_slug {
        None => crate::ids::TenantId::SYSTEM,
        Some(slug) => crate::tenants::store::find_by_slug(&database.app, &slug)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no tenant with slug `{slug}`"))?,
    };
    let retriever = open_retriever(&config, &database, &HttpClient::new(UpstreamSettings::default())).await;
    let embedder = retriever.document_embedder();
    let bar = indicatif::ProgressBar::no_length().with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files, {elapsed} · {msg}")
            .expect("the template is valid"),
    );
    let report = crate::retrieval::corpus::sync(
        &database.app,
        tenant,
        &folder,
        embedder.as_ref(),
        false,
        |done, total, path| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(path.to_owned());
        },
    )
    .await;
    bar.finish_and_clear();
    database.close().await;
    let report = report?;
    println!(
        "{} created, {} updated, {} unchanged, {} removed",
        report.created, report.updated, report.unchanged, report.removed
    );
    Ok(())
}

/// `switchboard migrate`: prepares the database and exits.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    tracing::info!("the database is migrated");
    database.close().await;
    Ok(())
}

/// `switchboard rotate-master-key`: re-seals every stored secret under the current master key.
pub async fn rotate_master_key(config: Config) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let keys = MasterKeys::new(&config.master_key, &config.previous_master_keys);
    let rotated = crate::tenants::secrets::reseal_all(&database.app, &keys).await;
    database.close().await;
    tracing::info!(
        rotated = rotated?,
        key_id = keys.current_id(),
        "stored secrets are sealed with the current master key"
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
