//! MCP servers written with the official MCP Python SDK, started by the tests on 127.0.0.1: v1
//! (tests/mcp-python, the 2025-11-25 revision) or v2 (tests/mcp-python2, which speaks 2026-07-28 too).
//! Each script prints `PORT <n>` once it listens and serves until it is killed.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncBufReadExt as _;
use tokio::sync::OnceCell;

/// Which SDK a server is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    V1,
    V2,
}

impl Sdk {
    /// The folder of its scripts and pinned requirements.
    pub fn dir(self) -> PathBuf {
        let folder = if self == Self::V1 { "tests/mcp-python" } else { "tests/mcp-python2" };
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(folder)
    }

    /// Its virtual environment's Python, made by `.ci/run` or here when missing; once per test binary.
    pub async fn python(self) -> PathBuf {
        static V1: OnceCell<PathBuf> = OnceCell::const_new();
        static V2: OnceCell<PathBuf> = OnceCell::const_new();
        let (cell, venv) = if self == Self::V1 { (&V1, "mcp-python-venv") } else { (&V2, "mcp2-python-venv") };
        cell.get_or_init(|| async { crate::helpers::python_venv(venv, &[self.dir().join("requirements.txt")]).await })
            .await
            .clone()
    }
}

/// One of tests/mcp-python's servers, serving until dropped.
pub struct PythonMcpServer {
    /// Its streamable HTTP endpoint.
    pub url: String,
    _child: tokio::process::Child,
}

impl PythonMcpServer {
    /// Starts `script` (a file of tests/mcp-python) and waits until it listens.
    pub async fn start(script: &str) -> Self {
        Self::start_with(Sdk::V1, script).await
    }

    /// Starts `script`, written with `sdk`, and waits until it listens.
    pub async fn start_with(sdk: Sdk, script: &str) -> Self {
        let mut child = tokio::process::Command::new(sdk.python().await)
            .arg(sdk.dir().join(script))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line =
                lines.next_line().await.unwrap().unwrap_or_else(|| panic!("{script} stopped before it listened"));
            if let Some(port) = line.strip_prefix("PORT ") {
                break port.trim().parse::<u16>().unwrap();
            }
        };
        Self { url: format!("http://127.0.0.1:{port}/mcp"), _child: child }
    }
}
