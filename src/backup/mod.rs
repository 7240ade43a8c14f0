//! Backups of Switchboard's database and restores into a new data directory: `switchboard backup PATH`
//! and `switchboard restore PATH`.
//!
//! A backup is a new directory holding `manifest.json` and `switchboard.dump`, a `pg_dump --format=custom`
//! of Switchboard's database made by the bundled PostgreSQL's own `pg_dump`. A logical dump rather than a
//! base backup (`pg_basebackup`), because:
//! - `pg_dump` reads the whole database in one MVCC snapshot while the service keeps running and writing:
//!   every transaction committed before it starts is in the dump, none after, with no replication
//!   connection, WAL settings or `pg_hba.conf` entry to arrange, and without pausing anyone (it takes only
//!   ACCESS SHARE locks, which nothing but DDL waits for).
//! - It is one compressed file, restorable into the same or a newer PostgreSQL, and it is made the same way
//!   from the embedded server and from an external one (`DATABASE_URL`). A base backup copies the whole
//!   cluster, dead rows and all, bound to its major version.
//! - The price: a restore rebuilds every index (the HNSW ones included), so it is slower than copying
//!   files back, and there is no point-in-time recovery (an operator who needs that runs an external
//!   PostgreSQL with WAL archiving).
//!
//! The master key is never in a backup. The manifest records its fingerprint (an HMAC under the key of a
//! fixed label, which tells nothing of the key), and a restore refuses a key whose fingerprint differs
//! before it touches anything. A dump holds no roles: a restore starts a fresh embedded cluster in the
//! empty data directory, creates the database and a placeholder of the application role (so the dump's
//! grants apply), restores the dump in one transaction, marks `ts_match_vq` leakproof again (that mark
//! lives in the system catalog, which a dump leaves out), and prepares the database as every start does,
//! which gives the application role the password derived from the key.
//!
//! Nothing is left half-done: a backup is written into a hidden sibling directory and renamed into place,
//! never over an existing path; a failed restore removes what it created and leaves the directory as it
//! found it.

mod client;
pub mod manifest;
mod store;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret as _, SecretString};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

use crate::db::embedded::{self, EmbeddedError, EmbeddedPostgres, Layout};
use crate::db::{self, DbError};
use manifest::{DUMP_FILE, DumpFile, FORMAT, MANIFEST_FILE, Manifest, Source};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists: a backup goes into a new directory; choose a path that does not exist")]
    PathExists(PathBuf),
    #[error("{0} is not a directory: the backup's parent directory must exist")]
    NoParent(PathBuf),
    #[error(
        "no embedded database in {0}; set SWITCHBOARD_DATA_DIR to the service's data directory (or DATABASE_URL to \
         its external database)"
    )]
    NoDatabase(PathBuf),
    #[error("no master key: set SWITCHBOARD_MASTER_KEY, or put the key in {0}")]
    NoMasterKey(PathBuf),
    #[error(
        "the master key is not this database's: the application role does not log in with the password derived \
         from it; set SWITCHBOARD_MASTER_KEY to the key the service runs with"
    )]
    KeyNotDatabase,
    #[error(
        "the database role of DATABASE_URL can neither bypass row-level security nor is a superuser, and every \
         tenant table forces it, so a dump would fail (or, told to obey it, be empty): back up with a role that \
         has BYPASSRLS (ALTER ROLE ... BYPASSRLS), or with your provider's own backups"
    )]
    RoleCannotReadEveryRow,
    #[error(
        "the master key does not match this backup: its fingerprint is {found}, the backup was taken under the key \
         with fingerprint {expected}; set SWITCHBOARD_MASTER_KEY (or DATA_DIR/master-key) to that key. Nothing was \
         restored"
    )]
    KeyMismatch { expected: String, found: String },
    #[error(
        "cannot restore into {dir}: it is not empty ({entry}); restore into a new or empty data directory (it may \
         hold the master-key and operator-token files). Nothing was restored"
    )]
    NotEmpty { dir: PathBuf, entry: String },
    #[error("a PostgreSQL cluster for this data directory already exists in {0}; remove it or restore elsewhere")]
    ClusterExists(PathBuf),
    #[error(
        "restore creates a new embedded database and DATABASE_URL is set: restore into an external database with \
         pg_restore (docs_corpus/operations.md, \"Backups and data\")"
    )]
    ExternalDatabase,
    #[error(
        "this backup is of an external database: restore it into that server with pg_restore \
         (docs_corpus/operations.md, \"Backups and data\")"
    )]
    ExternalSource,
    #[error("{path} is not a readable Switchboard backup manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("backup format {0} is not one this Switchboard reads (it reads format {FORMAT}); use a newer Switchboard")]
    UnsupportedFormat(u32),
    #[error(
        "the backup's schema (migration {backup}) is newer than this Switchboard's (migration {known}); restore with \
         Switchboard {version} or newer"
    )]
    NewerSchema { backup: i64, known: i64, version: String },
    #[error("{path} is damaged: its SHA-256 is {found}, the manifest says {expected}. Nothing was restored")]
    Checksum { path: PathBuf, expected: String, found: String },
    #[error("{program} failed ({status}):\n{output}")]
    Tool { program: String, status: String, output: String },
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("file system error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_path_buf(), source }
}

/// What backup and restore read of the environment: the data directory, `DATABASE_URL` and the master
/// keys, under the service's names. Not [`crate::config::Config`]: reading that creates the data directory
/// and generates a master key when none is there, and a restore must find the directory as the operator
/// left it and refuse a missing key rather than make one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<SecretString>,
    /// `SWITCHBOARD_MASTER_KEY`; when unset, the data directory's `master-key` file.
    pub master_key: Option<SecretString>,
    pub previous_master_keys: Vec<SecretString>,
}

impl Settings {
    pub fn from_env() -> Self {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        Self {
            data_dir: PathBuf::from(variable("SWITCHBOARD_DATA_DIR").unwrap_or_else(|| "./.switchboard".to_owned())),
            database_url: variable("DATABASE_URL").map(SecretString::from),
            master_key: variable("SWITCHBOARD_MASTER_KEY").map(SecretString::from),
            previous_master_keys: variable("SWITCHBOARD_PREVIOUS_MASTER_KEYS")
                .map(|keys| {
                    keys.split(',')
                        .map(str::trim)
                        .filter(|key| !key.is_empty())
                        .map(|key| key.to_owned().into())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn current_key(&self) -> Result<SecretString, BackupError> {
        if let Some(key) = &self.master_key {
            return Ok(key.clone());
        }
        let path = self.data_dir.join("master-key");
        match fs::read_to_string(&path) {
            Ok(key) if !key.trim().is_empty() => Ok(SecretString::from(key.trim().to_owned())),
            _ => Err(BackupError::NoMasterKey(path)),
        }
    }
}

/// What a backup or a restore did, for the line the command prints.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub elapsed: Duration,
}

/// `switchboard backup PATH`: dumps the database into the new directory `path`.
pub async fn backup(settings: &Settings, path: &Path) -> Result<Report, BackupError> {
    let started = Instant::now();
    if path.symlink_metadata().is_ok() {
        return Err(BackupError::PathExists(path.to_path_buf()));
    }
    let name = path.file_name().ok_or_else(|| BackupError::PathExists(path.to_path_buf()))?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(BackupError::NoParent(parent.to_path_buf()));
    }
    let key = settings.current_key()?;
    let origin = Origin::open(settings).await?;
    let mut staging_name = OsString::from(".");
    staging_name.push(name);
    staging_name.push(format!(".partial-{}", std::process::id()));
    let staging = parent.join(staging_name);
    let written = write_backup(&origin, &key, &staging).await;
    origin.close().await;
    let placed = written.and_then(|manifest| {
        rename_without_replacing(&staging, path)?;
        sync_directory(parent)?;
        Ok(manifest)
    });
    match placed {
        Ok(manifest) => Ok(Report { path: path.to_path_buf(), manifest, elapsed: started.elapsed() }),
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

/// The database a backup reads, and the server this command started if the service was not running.
struct Origin {
    source: Source,
    owner: PgConnectOptions,
    client: client::Connection,
    /// Where the bundled client programs are.
    layout: Layout,
    started: Option<EmbeddedPostgres>,
}

impl Origin {
    async fn open(settings: &Settings) -> Result<Self, BackupError> {
        if let Some(url) = &settings.database_url {
            let owner: PgConnectOptions = url.expose_secret().parse()?;
            let data_dir = settings.data_dir.clone();
            let layout = tokio::task::spawn_blocking(move || {
                let layout = Layout::for_data_dir(&data_dir)?;
                embedded::ensure_installed(&layout)?;
                Ok::<_, EmbeddedError>(layout)
            })
            .await
            .expect("the install task does not panic")?;
            let client = client::Connection::external(url);
            return Ok(Self { source: Source::External, owner, client, layout, started: None });
        }
        if !settings.data_dir.join("postgres-owner-password").is_file() {
            return Err(BackupError::NoDatabase(settings.data_dir.clone()));
        }
        let layout = Layout::for_data_dir(&settings.data_dir)?;
        if !layout.has_cluster() {
            return Err(BackupError::NoDatabase(settings.data_dir.clone()));
        }
        // The service's own server when it runs (the usual case); otherwise one started for the backup.
        let (port, started) = match layout.running_port() {
            Some(port) => (port, None),
            None => {
                let starting = layout.clone();
                let server = tokio::task::spawn_blocking(move || {
                    EmbeddedPostgres::start(&starting, embedded::Durability::Durable)
                })
                .await
                .expect("the start task does not panic")?;
                (server.port(), Some(server))
            }
        };
        let owner = layout.owner_options_at(port)?;
        let client = client::Connection::embedded(port, layout.owner_password()?);
        Ok(Self { source: Source::Embedded, owner, client, layout, started })
    }

    async fn close(self) {
        if let Some(server) = self.started {
            let _ = tokio::task::spawn_blocking(move || server.stop()).await;
        }
    }
}

/// The dump's compression: the fastest gzip level. Vectors barely compress at any level, and at 100k
/// chunks the default level took five times as long (43 s against 8 s) for a dump 10% smaller.
const COMPRESSION: &str = "--compress=gzip:1";

/// Writes the dump and the manifest into `staging` (created here, readable only by us), synced to disk.
async fn write_backup(origin: &Origin, key: &SecretString, staging: &Path) -> Result<Manifest, BackupError> {
    let _ = fs::remove_dir_all(staging);
    fs::create_dir(staging).map_err(io_error(staging))?;
    fs::set_permissions(staging, fs::Permissions::from_mode(0o700)).map_err(io_error(staging))?;

    let mut connection = PgConnection::connect_with(&origin.owner).await?;
    let postgres_version = store::server_version(&mut connection).await?;
    let schema_version = store::schema_version(&mut connection).await?;
    if !store::reads_past_row_security(&mut connection).await? {
        return Err(BackupError::RoleCannotReadEveryRow);
    }
    connection.close().await?;
    // The fingerprint must be of the key the database runs under, or the backup could never be restored:
    // the application role logs in only with the password derived from that key.
    let app_password = crate::config::app_database_password(key);
    let app = origin.owner.clone().username(db::APP_ROLE).password(app_password.expose_secret());
    match PgConnection::connect_with(&app).await {
        Ok(connection) => connection.close().await?,
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("28P01") => {
            return Err(BackupError::KeyNotDatabase);
        }
        Err(error) => return Err(error.into()),
    }

    let dump = staging.join(DUMP_FILE);
    let args: [&OsStr; 6] = [
        "--format=custom".as_ref(),
        COMPRESSION.as_ref(),
        "--no-password".as_ref(),
        "--lock-wait-timeout=60s".as_ref(),
        "--file".as_ref(),
        dump.as_os_str(),
    ];
    origin.client.run(&origin.layout.bin("pg_dump"), &args).await?;
    fs::set_permissions(&dump, fs::Permissions::from_mode(0o600)).map_err(io_error(&dump))?;
    sync_file(&dump)?;
    let digest_path = dump.clone();
    let (sha256, bytes) = tokio::task::spawn_blocking(move || manifest::digest_file(&digest_path))
        .await
        .expect("hashing does not panic")?;

    let manifest = Manifest {
        format: FORMAT,
        switchboard_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now(),
        source: origin.source,
        postgres_version,
        schema_version,
        master_key_fingerprint: manifest::fingerprint(key),
        dump: DumpFile {
            file: DUMP_FILE.to_owned(),
            made_by: format!("pg_dump --format=custom {COMPRESSION}"),
            bytes,
            sha256,
        },
    };
    let manifest_path = staging.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&manifest_path)
        .map_err(io_error(&manifest_path))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io_error(&manifest_path))?;
    file.sync_all().map_err(io_error(&manifest_path))?;
    sync_directory(staging)?;
    Ok(manifest)
}

/// `rename(2)` would replace an empty directory created meanwhile at `to`; `RENAME_NOREPLACE` refuses.
fn rename_without_replacing(from: &Path, to: &Path) -> Result<(), BackupError> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE).map_err(|errno| {
        if errno == nix::errno::Errno::EEXIST || errno == nix::errno::Errno::ENOTEMPTY {
            BackupError::PathExists(to.to_path_buf())
        } else {
            BackupError::Io { path: to.to_path_buf(), source: errno.into() }
        }
    })
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    fs::File::open(path).and_then(|file| file.sync_all()).map_err(io_error(path))
}

fn sync_directory(path: &Path) -> Result<(), BackupError> {
    sync_file(path)
}

/// `switchboard restore PATH`: restores the backup in `path` into the (new or empty) data directory.
pub async fn restore(settings: &Settings, path: &Path) -> Result<Report, BackupError> {
    let started = Instant::now();
    if settings.database_url.is_some() {
        return Err(BackupError::ExternalDatabase);
    }
    let manifest = Manifest::read(path)?;
    if manifest.source != Source::Embedded {
        return Err(BackupError::ExternalSource);
    }
    let known = db::MIGRATOR.iter().map(|migration| migration.version).max().unwrap_or(0);
    if manifest.schema_version > known {
        return Err(BackupError::NewerSchema {
            backup: manifest.schema_version,
            known,
            version: manifest.switchboard_version.clone(),
        });
    }
    let key = settings.current_key()?;
    let matches = std::iter::once(&key)
        .chain(&settings.previous_master_keys)
        .any(|key| manifest::fingerprint(key) == manifest.master_key_fingerprint);
    if !matches {
        return Err(BackupError::KeyMismatch {
            expected: manifest::short(&manifest.master_key_fingerprint).to_owned(),
            found: manifest::short(&manifest::fingerprint(&key)).to_owned(),
        });
    }
    let before = Untouched::check(&settings.data_dir)?;
    let (checked, backup_dir) = (manifest.clone(), path.to_path_buf());
    tokio::task::spawn_blocking(move || checked.verify_dump(&backup_dir)).await.expect("hashing does not panic")?;

    let layout = match Layout::for_data_dir(&settings.data_dir) {
        Ok(layout) => layout,
        Err(error) => {
            before.undo(None);
            return Err(error.into());
        }
    };
    if layout.has_cluster() {
        before.undo(None);
        return Err(BackupError::ClusterExists(layout.cluster_dir));
    }
    match restore_into(&layout, &key, &manifest.dump_path(path)).await {
        Ok(()) => Ok(Report { path: settings.data_dir.clone(), manifest, elapsed: started.elapsed() }),
        Err(error) => {
            before.undo(Some(&layout));
            Err(error)
        }
    }
}

/// The restore rebuilds every index, the HNSW ones the longest: pgvector builds a graph fast while it fits
/// in `maintenance_work_mem` (64 MB by default) and slowly after. The restore is the only work the new
/// cluster does, so it may take more: at 100k chunks of 384 dimensions this cut a restore from 307 s to 80 s.
const RESTORE_SESSION_OPTIONS: &str = "-c maintenance_work_mem=512MB";

async fn restore_into(layout: &Layout, key: &SecretString, dump: &Path) -> Result<(), BackupError> {
    let starting = layout.clone();
    let server = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&starting, embedded::Durability::Durable))
        .await
        .expect("the start task does not panic")?;
    let restored = async {
        db::create_database_if_missing(&server.maintenance_options(), embedded::EMBEDDED_DATABASE_NAME).await?;
        let mut connection = PgConnection::connect_with(&server.owner_options()).await?;
        store::create_app_role_placeholder(&mut connection).await?;
        connection.close().await?;
        let client = client::Connection::embedded(server.port(), layout.owner_password()?)
            .with_session_options(RESTORE_SESSION_OPTIONS);
        let args: [&OsStr; 4] =
            ["--single-transaction".as_ref(), "--exit-on-error".as_ref(), "--no-password".as_ref(), dump.as_os_str()];
        client.run(&layout.bin("pg_restore"), &args).await?;
        let mut connection = PgConnection::connect_with(&server.owner_options()).await?;
        store::mark_search_leakproof(&mut connection).await?;
        connection.close().await?;
        // As at every start: the application role gets its attributes and the password derived from the
        // key, and a backup from an older Switchboard gets the migrations it lacks.
        db::prepare(&server.owner_options(), &crate::config::app_database_password(key)).await?;
        Ok::<_, BackupError>(())
    }
    .await;
    let _ = tokio::task::spawn_blocking(move || server.stop()).await;
    restored
}

/// What a data directory held before a restore, so that a failed one can leave it so. It may hold only
/// what is not data: the master key and operator token the operator copied in, the local embedding model,
/// and a PostgreSQL install (`postgres/install`).
struct Untouched {
    data_dir: PathBuf,
    existed: bool,
    entries: HashSet<OsString>,
    server_entries: HashSet<OsString>,
}

const MAY_BE_THERE: [&str; 4] = ["master-key", "operator-token", "models", "postgres"];

impl Untouched {
    fn check(data_dir: &Path) -> Result<Self, BackupError> {
        let names = |dir: &Path| -> Result<HashSet<OsString>, BackupError> {
            match fs::read_dir(dir) {
                Ok(entries) => entries
                    .map(|entry| entry.map(|entry| entry.file_name()))
                    .collect::<Result<_, _>>()
                    .map_err(io_error(dir)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
                Err(error) => Err(BackupError::Io { path: dir.to_path_buf(), source: error }),
            }
        };
        let existed = data_dir.exists();
        let entries = names(data_dir)?;
        let server_entries = names(&data_dir.join("postgres"))?;
        let not_empty = |entry: String| BackupError::NotEmpty { dir: data_dir.to_path_buf(), entry };
        if let Some(entry) =
            entries.iter().find(|entry| !MAY_BE_THERE.iter().any(|allowed| OsStr::new(allowed) == *entry))
        {
            return Err(not_empty(entry.to_string_lossy().into_owned()));
        }
        if let Some(entry) = server_entries.iter().find(|entry| *entry != "install") {
            return Err(not_empty(format!("postgres/{}", entry.to_string_lossy())));
        }
        Ok(Self { data_dir: data_dir.to_path_buf(), existed, entries, server_entries })
    }

    /// Removes what the restore added: the cluster (wherever it lives) and every new entry.
    fn undo(&self, layout: Option<&Layout>) {
        if let Some(layout) = layout {
            let _ = fs::remove_dir_all(&layout.cluster_dir);
            for extension in ["log", "pwfile"] {
                let _ = fs::remove_file(layout.cluster_dir.with_extension(extension));
            }
        }
        if !self.existed {
            let _ = fs::remove_dir_all(&self.data_dir);
            return;
        }
        let remove = |path: PathBuf| {
            let is_dir = path.symlink_metadata().is_ok_and(|meta| meta.is_dir());
            let _ = if is_dir { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        };
        let server_dir = self.data_dir.join("postgres");
        for entry in fs::read_dir(&self.data_dir).into_iter().flatten().flatten() {
            if !self.entries.contains(&entry.file_name()) {
                remove(entry.path());
            }
        }
        for entry in fs::read_dir(&server_dir).into_iter().flatten().flatten() {
            if !self.server_entries.contains(&entry.file_name()) {
                remove(entry.path());
            }
        }
    }
}

impl Report {
    /// The size of the dump in MB, to one decimal.
    pub fn megabytes(&self) -> String {
        #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
        let megabytes = self.manifest.dump.bytes as f64 / 1_000_000.0;
        format!("{megabytes:.1} MB")
    }
}
