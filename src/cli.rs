//! The command line: `serve` (the default), `migrate`, `rotate-master-key`, `ingest`, `backup`, `restore`.

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Self-hosted multi-tenant AI assistant and RAG orchestration")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server (the default).
    Serve,
    /// Prepare the database (roles, extension, migrations) and exit.
    Migrate,
    /// Re-seal every stored secret with SWITCHBOARD_MASTER_KEY; previous keys go in
    /// SWITCHBOARD_PREVIOUS_MASTER_KEYS (comma-separated) until this has run.
    RotateMasterKey,
    /// Add or update the documents in a folder (Markdown, plain text, HTML, CSV, PDF, DOCX; by extension)
    /// in the shared corpus (or a tenant's documents).
    Ingest {
        /// The folder to ingest.
        path: std::path::PathBuf,
        /// The slug of the tenant to ingest into; the shared corpus when absent.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Write a consistent backup of the database (a pg_dump, while the service runs) into PATH, a new
    /// directory. The master key is not in it: keep the key apart; a restore needs it.
    Backup {
        /// The directory to create; it must not exist.
        path: std::path::PathBuf,
    },
    /// Restore a backup into SWITCHBOARD_DATA_DIR, which must be new or empty (it may hold the master-key
    /// file); the master key must be the one the backup was taken under.
    Restore {
        /// The backup directory written by `switchboard backup`.
        path: std::path::PathBuf,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let telemetry = crate::telemetry::init()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        // Backup and restore read only their own few settings: the whole configuration would create the
        // data directory, and a master key in it, which a restore must find as the operator left it.
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => crate::server::serve(Config::from_env()?).await,
            Command::Migrate => crate::server::migrate(Config::from_env()?).await,
            Command::RotateMasterKey => crate::server::rotate_master_key(Config::from_env()?).await,
            Command::Ingest { path, tenant } => crate::server::ingest(Config::from_env()?, path, tenant).await,
            Command::Backup { path } => backup(&path).await,
            Command::Restore { path } => restore(&path).await,
        }
    });
    telemetry.shutdown();
    result
}

async fn backup(path: &std::path::Path) -> anyhow::Result<()> {
    let report = crate::backup::backup(&crate::backup::Settings::from_env(), path).await?;
    println!(
        "backup written to {}: {} in {:.1} s (PostgreSQL {}, schema {}, master key fingerprint {}); keep the master \
         key apart from it",
        report.path.display(),
        report.megabytes(),
        report.elapsed.as_secs_f64(),
        report.manifest.postgres_version,
        report.manifest.schema_version,
        crate::backup::manifest::short(&report.manifest.master_key_fingerprint),
    );
    Ok(())
}

async fn restore(path: &std::path::Path) -> anyhow::Result<()> {
    let report = crate::backup::restore(&crate::backup::Settings::from_env(), path).await?;
    println!(
        "restored the backup of {} ({}) into {} in {:.1} s; start the service there with the same master key",
        report.manifest.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report.megabytes(),
        report.path.display(),
        report.elapsed.as_secs_f64(),
    );
    Ok(())
}
