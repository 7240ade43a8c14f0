//! The peer: the LiteLLM proxy (its own Python virtual environment, pinned in `crates/bench/peer/`),
//! routing `mock-fast` and `mock-slow` to the same mock upstreams Switchboard talks to: as OpenAI chat
//! completions, as Anthropic messages (`mock-fast-anthropic`, `mock-slow-anthropic`, for `/v1/messages`)
//! and as chat completions again for `/v1/responses` (`mock-fast-responses`, `mock-slow-responses`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::env::{self, Mock, Pinning};

pub const KEY: &str = "sk-bench";

pub struct Peer {
    pub base: String,
    /// The process group of the proxy and its workers.
    group: u32,
    /// Killed when dropped.
    _child: Child,
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peer")
}

impl Peer {
    /// Installs (first time) and starts the proxy; `None` with the reason when it cannot run here.
    pub async fn start(fast: &Mock, slow: &Mock, pinning: Pinning) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| e.to_string())?
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        // Under taskset from the start when pinning: its worker processes inherit the core.
        let script = folder().join("start-litellm.sh");
        let mut command = if pinning.enabled {
            let mut command = Command::new("taskset");
            command.args(["-c", Pinning::SERVER_CORE]).arg(script);
            command
        } else {
            Command::new(script)
        };
        let mut child = command
            .env("PORT", port.to_string())
            .env("MOCK_FAST_BASE", fast.openai_base())
            .env("MOCK_SLOW_BASE", slow.openai_base())
            .env("MOCK_FAST_ANTHROPIC_BASE", fast.anthropic_base())
            .env("MOCK_SLOW_ANTHROPIC_BASE", slow.anthropic_base())
            .env("LITELLM_MASTER_KEY", KEY)
            // Two worker processes: Python serves one request at a time per process, and Switchboard may
            // use both cores too.
            .env("NUM_WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: its worker processes are not its threads, and must stop with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start LiteLLM: {error}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let group = child.id().unwrap_or_default();
        // The first run installs it (a few minutes); later starts take seconds.
        env::wait_ready(&format!("{base}/health/liveliness"), Duration::from_secs(900), &mut child)
            .await
            .map_err(|error| error.to_string())?;
        Ok(Self { base, group, _child: child })
    }
}

impl Drop for Peer {
    /// Stops the whole group: killing the proxy alone leaves its workers serving the port.
    fn drop(&mut self) {
        if self.group != 0 {
            let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{}", self.group)]).status();
        }
    }
}
