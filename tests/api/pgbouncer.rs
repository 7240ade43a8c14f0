//! The real binary behind PgBouncer in transaction mode (`DATABASE_URL` through it,
//! `SWITCHBOARD_DATABASE_DIRECT_URL` naming PostgreSQL itself): it becomes ready, streams a turn end to end,
//! two tenants busy at once each see only their own conversations while their transactions share server
//! connections, and the executor lock is held on a direct connection.
//!
//! The PgBouncer is Debian 13's (1.24), built from Debian's sources by `tests/pgbouncer/build`: Debian 12's
//! (1.18) cannot carry prepared statements from one transaction to the next, and sqlx names every prepared
//! statement it makes (docs_corpus/operations.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use futures::future::join_all;
use mock_upstream::MockUpstream;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;
use switchboard::db::embedded::{Durability, EMBEDDED_DATABASE_NAME, EmbeddedPostgres, Layout};

use crate::helpers::{debian_package, read_sse, streamed_text, succeeds};
use crate::service_process::{Service, free_port, fresh_data_dir, start_ready_with, wait_for};

/// Where `tests/pgbouncer/build` installs PgBouncer: built once per target directory.
const PGBOUNCER_PREFIX: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/pgbouncer-1.24.1");

/// The prepared statements PgBouncer keeps per server connection for its clients: more than the service's
/// distinct queries, so that none is prepared twice on one server connection.
const PREPARED_STATEMENTS: usize = 1000;

/// PgBouncer's server connections for the one database and user: enough for the service's pool (20).
const SERVER_CONNECTIONS: usize = 25;

/// How the direct connections introduce themselves, so that PostgreSQL tells them from PgBouncer's.
const DIRECT_APPLICATION_NAME: &str = "switchboard-direct";

/// Conversations each tenant starts at once, every one a streamed turn.
const TURNS_PER_TENANT: usize = 8;

/// PgBouncer as a child process, killed when dropped.
struct PgBouncer {
    child: std::process::Child,
    port: u16,
}

impl PgBouncer {
    /// Starts PgBouncer in transaction mode in front of `postgres_port`, letting in the application role
    /// with its password (from a userlist file). As root it runs as `nobody`: it refuses to run as root.
    fn start(binary: &Path, dir: &Path, postgres_port: u16, app_password: &SecretString) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let userlist = dir.join("userlist.txt");
        std::fs::write(&userlist, format!("\"switchboard_app\" \"{}\"\n", app_password.expose_secret())).unwrap();
        let config = dir.join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n\
                 {EMBEDDED_DATABASE_NAME} = host=127.0.0.1 port={postgres_port} dbname={EMBEDDED_DATABASE_NAME}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = scram-sha-256\n\
                 auth_file = {userlist}\n\
                 pool_mode = transaction\n\
                 max_prepared_statements = {PREPARED_STATEMENTS}\n\
                 default_pool_size = {SERVER_CONNECTIONS}\n\
                 min_pool_size = 0\n\
                 reserve_pool_size = 0\n\
                 max_client_conn = 500\n",
                userlist = userlist.display(),
            ),
        )
        .unwrap();
        let readable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(dir, readable).unwrap();
        // Run from here: as root it runs as `nobody`, who may not reach the target directory it was built in.
        let runnable = dir.join("pgbouncer");
        std::fs::copy(binary, &runnable).unwrap();
        std::fs::set_permissions(&runnable, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for file in [&userlist, &config] {
            std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        }
        let mut command = Command::new("setpriv");
        if nix::unistd::Uid::effective().is_root() {
            let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("the user nobody");
            command.arg(format!("--reuid={}", nobody.uid)).arg(format!("--regid={}", nobody.gid)).arg("--clear-groups");
        }
        let log = std::fs::File::create(dir.join("pgbouncer.log")).unwrap();
        let child = command
            .arg("--pdeathsig=KILL")
            .arg(&runnable)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pgbouncer starts");
        Self { child, port }
    }

    fn log(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PgBouncer's binary, built by `tests/pgbouncer/build` with the Debian packages that needs the first time.
async fn pgbouncer_binary() -> PathBuf {
    let binary = Path::new(PGBOUNCER_PREFIX).join("bin/pgbouncer");
    if binary.exists() {
        return binary;
    }
    let why = "PgBouncer's build (tests/pgbouncer/build)";
    debian_package(|| succeeds("curl", &["--version"]), "curl", why).await;
    debian_package(|| succeeds("xz", &["--version"]), "xz-utils", why).await;
    debian_package(|| succeeds("patch", &["--version"]), "patch", why).await;
    debian_package(|| succeeds("make", &["--version"]), "make", why).await;
    debian_package(|| succeeds("pkg-config", &["--version"]), "pkg-config", why).await;
    debian_package(|| succeeds("pkg-config", &["--exists", "libevent"]), "libevent-dev", why).await;
    debian_package(|| succeeds("pkg-config", &["--exists", "openssl"]), "libssl-dev", why).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pgbouncer/build");
    let built = tokio::process::Command::new(script).arg(PGBOUNCER_PREFIX).status().await.expect("the build runs");
    assert!(built.success() && binary.exists(), "tests/pgbouncer/build installs PgBouncer under {PGBOUNCER_PREFIX}");
    binary
}

/// One tenant of the test, with its key.
struct Tenant {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Tenant {
    async fn create(client: &reqwest::Client, base: &str, operator: &str, slug: &str) -> Self {
        let created: Value = client
            .post(format!("{base}/api/v1/tenants"))
            .bearer_auth(operator)
            .json(&json!({ "name": slug, "slug": slug }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["api_key"]["key"].as_str().expect("the tenant's first key").to_owned();
        let tenant = Self { client: client.clone(), base: base.to_owned(), key };
        let defaults = json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" });
        let configured = tenant.request(reqwest::Method::PATCH, "/api/v1/tenant/config").json(&defaults).send();
        assert_eq!(configured.await.unwrap().status(), 200);
        tenant
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key)
    }

    /// A new conversation with one streamed turn; returns its id and the streamed answer.
    async fn streamed_turn(&self, question: &str) -> (String, String) {
        let session = self.request(reqwest::Method::POST, "/api/v1/sessions").json(&json!({})).send().await.unwrap();
        assert_eq!(session.status(), 201, "a new conversation");
        let session: Value = session.json().await.unwrap();
        let session = session["id"].as_str().expect("a session id").to_owned();
        let response = self
            .request(reqwest::Method::POST, &format!("/api/v1/sessions/{session}/messages"))
            .header("accept", "text/event-stream")
            .json(&json!({ "content": question }))
            .send()
            .await
            .unwrap();
        let events = read_sse(response).await;
        assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
        (session, streamed_text(&events))
    }

    async fn session_ids(&self) -> Vec<String> {
        let listed = self.request(reqwest::Method::GET, "/api/v1/sessions?limit=100").send().await.unwrap();
        assert_eq!(listed.status(), 200);
        let listed: Value = listed.json().await.unwrap();
        let mut ids: Vec<String> = listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|session| session["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

#[tokio::test]
async fn turns_stream_and_tenants_stay_apart_behind_pgbouncer_with_sessions_held_directly() {
    let pgbouncer = pgbouncer_binary().await;

    let database_dir = fresh_data_dir("pgbouncer-database");
    let layout = Layout::for_data_dir(&database_dir).unwrap();
    let server = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&layout, Durability::Throwaway));
    let server = server.await.unwrap().expect("PostgreSQL starts");
    switchboard::db::create_database_if_missing(&server.maintenance_options(), EMBEDDED_DATABASE_NAME).await.unwrap();
    let direct_url = format!(
        "{}?application_name={DIRECT_APPLICATION_NAME}",
        server.owner_url(EMBEDDED_DATABASE_NAME).expose_secret()
    );
    let direct: PgConnectOptions = direct_url.parse().unwrap();

    // The application role's password follows from the master key: PgBouncer's userlist needs it.
    let master_key = SecretString::from("pgbouncer-test-master-key".to_owned());
    let app_password = switchboard::config::app_database_password(&master_key);
    let bouncer_dir = PathBuf::from(format!("/tmp/switchboard-pgbouncer-{}", std::process::id()));
    let bouncer = PgBouncer::start(&pgbouncer, &bouncer_dir, direct.get_port(), &app_password);
    wait_for("PgBouncer to listen", async || std::net::TcpStream::connect(("127.0.0.1", bouncer.port)).is_ok()).await;

    let upstream = MockUpstream::start().await;
    let service_dir = fresh_data_dir("pgbouncer-service");
    let database_url = format!("postgres://switchboard_app@127.0.0.1:{}/{EMBEDDED_DATABASE_NAME}", bouncer.port);
    let (mut service, base) = start_service(&service_dir, &database_url, &direct_url, &master_key, &upstream).await;

    let client = reqwest::Client::builder().timeout(std::time::Duration::from_mins(2)).build().unwrap();
    let operator = std::fs::read_to_string(service_dir.join("operator-token")).unwrap();
    let first = Tenant::create(&client, &base, operator.trim(), "bouncer-one").await;
    let second = Tenant::create(&client, &base, operator.trim(), "bouncer-two").await;

    // One streamed turn end to end.
    let (_, answer) = first.streamed_turn("Hello through PgBouncer").await;
    assert!(!answer.is_empty(), "the answer streamed");

    both_tenants_at_once(&first, &second).await;

    // The pool went through PgBouncer, and the executor lock, a session's, is held on a direct connection.
    let mut owner = sqlx::PgConnection::connect_with(&direct).await.unwrap();
    let app_backends: Vec<(String, bool)> = sqlx::query_as(
        "SELECT activity.application_name, \
                EXISTS (SELECT 1 FROM pg_locks WHERE pg_locks.pid = activity.pid AND locktype = 'advisory' \
                        AND granted AND objsubid = 1) \
         FROM pg_stat_activity AS activity WHERE usename = 'switchboard_app'",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let pooled = app_backends.iter().filter(|(name, _)| name != DIRECT_APPLICATION_NAME).count();
    assert!(
        pooled > 0,
        "the pool's connections come through PgBouncer: {app_backends:?}\n{}",
        PgBouncer::log(&bouncer_dir)
    );
    let locks: Vec<&String> = app_backends.iter().filter(|(_, locked)| *locked).map(|(name, _)| name).collect();
    assert_eq!(locks, [DIRECT_APPLICATION_NAME], "the executor lock is held directly: {app_backends:?}");
    owner.close().await.unwrap();

    let log = std::fs::read_to_string(service_dir.join("service.log")).unwrap();
    assert!(!log.contains("ERROR"), "no error in the service's log:\n{log}");

    assert!(service.stop().await.success(), "a polite stop exits cleanly");
    drop(bouncer);
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    let _ = std::fs::remove_dir_all(&bouncer_dir);
    for dir in [&service_dir, &database_dir] {
        let server_root = Layout::for_data_dir(dir).unwrap().cluster_dir.parent().unwrap().to_path_buf();
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(server_root);
    }
}

/// Both tenants streaming turns at once, their transactions on the same server connections; then each lists
/// only its own conversations and cannot read the other's.
async fn both_tenants_at_once(first: &Tenant, second: &Tenant) {
    let turns = (0..TURNS_PER_TENANT).flat_map(|number| {
        [(0, first, format!("First tenant, turn {number}")), (1, second, format!("Second tenant, turn {number}"))]
    });
    let finished = join_all(turns.map(async |(which, tenant, question)| {
        let (session, answer) = tenant.streamed_turn(&question).await;
        (which, session, answer)
    }))
    .await;
    let mut own: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for (which, session, answer) in finished {
        assert!(!answer.is_empty(), "every answer streamed");
        own[which].push(session);
    }
    let (first_listed, second_listed) = tokio::join!(first.session_ids(), second.session_ids());
    assert_eq!(first_listed.len(), TURNS_PER_TENANT + 1, "the first tenant's conversations: {first_listed:?}");
    assert_eq!(second_listed.len(), TURNS_PER_TENANT, "the second tenant's conversations: {second_listed:?}");
    assert!(own[0].iter().all(|session| first_listed.contains(session)));
    assert!(own[1].iter().all(|session| second_listed.contains(session)));
    assert!(first_listed.iter().all(|session| !second_listed.contains(session)), "no conversation is shared");
    // Neither can read the other's conversation by its id, many times at once.
    let crossed = own[1]
        .iter()
        .map(|session| first.request(reqwest::Method::GET, &format!("/api/v1/sessions/{session}/messages")).send());
    for response in join_all(crossed).await {
        assert_eq!(response.unwrap().status(), 404, "another tenant's conversation does not exist");
    }
    let own_reads = own[1]
        .iter()
        .map(|session| second.request(reqwest::Method::GET, &format!("/api/v1/sessions/{session}/messages")).send());
    for response in join_all(own_reads).await {
        let messages: Value = response.unwrap().json().await.unwrap();
        assert_eq!(messages["messages"].as_array().unwrap().len(), 2, "{messages}");
    }
}

/// The real binary with its pool through PgBouncer (`database_url`: its user and password are replaced by
/// the application role's) and the owner's work and the session-scoped connections straight to PostgreSQL.
async fn start_service(
    service_dir: &Path,
    database_url: &str,
    direct_url: &str,
    master_key: &SecretString,
    upstream: &MockUpstream,
) -> (Service, String) {
    // No shared documentation: ingesting it would only slow the start.
    let no_corpus = service_dir.join("no-corpus");
    let upstream_url = upstream.openai_base();
    let settings = [
        ("SWITCHBOARD_MASTER_KEY", master_key.expose_secret()),
        ("DATABASE_URL", database_url),
        ("SWITCHBOARD_DATABASE_DIRECT_URL", direct_url),
        ("OPENAI_API_KEY", "sk-platform-pgbouncer"),
        ("OPENAI_BASE_URL", upstream_url.as_str()),
        ("SWITCHBOARD_CORPUS_DIR", no_corpus.to_str().unwrap()),
    ];
    start_ready_with(service_dir, &settings).await
}
