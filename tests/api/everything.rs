//! The public MCP reference server, `@modelcontextprotocol/server-everything` from npm (pinned in
//! `tests/mcp-everything/package-lock.json`), installed on first use and started over stdio (by the
//! service, from the operator's allow-list) or streamable HTTP (here, bound to 127.0.0.1).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::OnceCell;

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp-everything")
}

/// The server's entry script (it may not be installed yet: see [`installed`]).
pub fn entry_point() -> PathBuf {
    package_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// Installs the pinned package with `npm ci` unless it is there; once per test binary.
pub async fn installed() -> PathBuf {
    static INSTALL: OnceCell<()> = OnceCell::const_new();
    INSTALL.get_or_init(|| async { crate::helpers::npm_ci_unless(&package_dir(), &entry_point()).await }).await;
    entry_point()
}

/// The everything server over streamable HTTP on 127.0.0.1; stopped when dropped.
pub struct EverythingHttp {
    pub url: String,
    _child: tokio::process::Child,
}

impl EverythingHttp {
    pub async fn start() -> Self {
        let entry = installed().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("node")
            .arg("--require")
            .arg(package_dir().join("loopback.cjs"))
            .arg(entry)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        // Bounds a hang of the server's start; asserts no speed.
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { url: format!("http://127.0.0.1:{port}/mcp"), _child: child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the everything server did not listen on 127.0.0.1:{port}");
    }
}
