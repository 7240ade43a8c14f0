//! The command line: `serve` (the default), `migrate`, `rotate-master-key`, `ingest`.

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
    /// Mirror a folder of markdown files into the shared corpus (or a tenant's documents).
    Ingest {
        /// The folder to ingest.
        path: std::path::PathBuf,
        /// The slug of the tenant to ingest into; the shared corpus when absent.
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let telemetry = crate::telemetry::init()?;
    let config = Config::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => crate::server::serve(config).await,
            Command::Migrate => crate::server::migrate(config).await,
            Command::RotateMasterKey => crate::server::rotate_master_key(config).await,
            Command::Ingest { path, tenant } => crate::server::ingest(config, path, tenant).await,
        }
    });
    telemetry.shutdown();
    result
}
