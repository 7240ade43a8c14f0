//! The database: where it runs (embedded or `DATABASE_URL`), its preparation (roles, extension,
//! migrations), the application pool, and the tenant-scoped transactions every query runs in.

pub mod embedded;

use secrecy::{ExposeSecret as _, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool, Postgres, Transaction};

use crate::ids::TenantId;

/// The role every service query runs as: no superuser, no BYPASSRLS, so row-level security always applies.
pub const APP_ROLE: &str = "switchboard_app";

/// pgvector older than this lacks what retrieval relies on (HNSW with iterative scans need 0.8, HNSW 0.5).
const MIN_PGVECTOR: (u32, u32) = (0, 7);

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the PostgreSQL server has no pgvector extension available (need >= 0.7); install pgvector on it or unset \
         DATABASE_URL to use the embedded server"
    )]
    PgvectorMissing,
    #[error("the PostgreSQL server has pgvector {0}, Switchboard needs >= 0.7; upgrade it or unset DATABASE_URL")]
    PgvectorTooOld(String),
}

/// Creates `database` on the server unless it exists, connecting through the maintenance database.
pub async fn create_database_if_missing(maintenance: &PgConnectOptions, database: &str) -> Result<(), DbError> {
    let mut connection = PgConnection::connect_with(maintenance).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut connection)
        .await?;
    if !exists {
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {}", quote_identifier(database))))
            .execute(&mut connection)
            .await?;
    }
    connection.close().await?;
    Ok(())
}

/// Makes the database ready, as its owner: pgvector present and recent, the application role with the
/// given password, and every migration applied. Safe to run on every start.
pub async fn prepare(owner: &PgConnectOptions, app_password: &SecretString) -> Result<(), DbError> {
    let mut connection = PgConnection::connect_with(owner).await?;
    ensure_pgvector(&mut connection).await?;
    ensure_app_role(&mut connection, app_password).await?;
    MIGRATOR.run(&mut connection).await?;
    warn_unless_search_uses_its_index(&mut connection).await?;
    connection.close().await?;
    Ok(())
}

/// Migration 0010 marks `ts_match_vq` leakproof so that full-text search under row-level security can use
/// its index; the mark is lost by a dump and restore, and a non-superuser owner could not set it: say so at
/// every start, since search is then several times slower.
async fn warn_unless_search_uses_its_index(connection: &mut PgConnection) -> Result<(), DbError> {
    let leakproof: bool = sqlx::query_scalar(
        "SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq(tsvector, tsquery)'::regprocedure",
    )
    .fetch_one(&mut *connection)
    .await?;
    if !leakproof {
        tracing::warn!(
            "full-text search cannot use its index under row-level security: as a superuser, run \
             ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF (see migrations/0010_corpus_stats.sql)"
        );
    }
    Ok(())
}

async fn ensure_pgvector(connection: &mut PgConnection) -> Result<(), DbError> {
    let available: Option<String> =
        sqlx::query_scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            .fetch_optional(&mut *connection)
            .await?;
    if available.is_none() {
        return Err(DbError::PgvectorMissing);
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS vector").execute(&mut *connection).await?;
    let installed: String = sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        .fetch_one(&mut *connection)
        .await?;
    if parse_major_minor(&installed) < Some(MIN_PGVECTOR) {
        return Err(DbError::PgvectorTooOld(installed));
    }
    Ok(())
}

fn parse_major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

async fn ensure_app_role(connection: &mut PgConnection, password: &SecretString) -> Result<(), DbError> {
    // Roles are cluster-wide: concurrent starts against one server must not race on creating it.
    let mut transaction = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('switchboard_app_role'))").execute(&mut *transaction).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(APP_ROLE)
        .fetch_one(&mut *transaction)
        .await?;
    let verb = if exists { "ALTER" } else { "CREATE" };
    // Role options take no bind parameters, and a statement's text is logged (sqlx at debug): the password
    // is bound into a setting local to this transaction, and the server puts it into the statement.
    sqlx::query("SELECT set_config('switchboard.app_role_password', $1, true)")
        .bind(password.expose_secret())
        .execute(&mut *transaction)
        .await?;
    let statement = format!(
        "DO $$ BEGIN EXECUTE format('{verb} ROLE {APP_ROLE} WITH LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB \
         NOCREATEROLE PASSWORD %L', current_setting('switchboard.app_role_password')); END $$"
    );
    sqlx::query(AssertSqlSafe(statement)).execute(&mut *transaction).await?;
    transaction.commit().await?;
    Ok(())
}

/// How long a query waits for a connection. Short, so that while the database is down (or restarting) a
/// request is answered 503 in seconds instead of hanging.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A connection idle this long is pinged before it is lent, so the connections of a dead server are
/// dropped and new ones made once it is back. One used more recently is lent as it is: under load that
/// spares every transaction a round trip, and sqlx already pings each connection as it comes back to
/// the pool, closing one that broke.
const PING_WHEN_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The pool the service queries through, logged in as [`APP_ROLE`].
pub async fn connect_app_pool(owner: &PgConnectOptions, app_password: &SecretString) -> Result<PgPool, DbError> {
    let options = app_options(owner, app_password);
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The application role's options on `server`: how the pool, the executor lock and LISTEN log in.
pub fn app_options(server: &PgConnectOptions, app_password: &SecretString) -> PgConnectOptions {
    server.clone().username(APP_ROLE).password(app_password.expose_secret())
}

/// `server` reached through a connection pooler (PgBouncer): the `extra_float_digits` start-up parameter
/// is not sent, since PgBouncer refuses a log-in that carries it unless told to ignore it (PostgreSQL 12 and
/// later send floats exactly without it).
///
/// sqlx's statement cache stays on. In transaction mode, consecutive transactions of one client connection
/// may run on different server connections, so the pooler must carry its clients' prepared statements
/// between them (PgBouncer 1.21 and later with `max_prepared_statements`). Turning the cache off does not
/// help an older pooler: sqlx 0.9 still names every prepared statement (`sqlx_s_N`, counted per client
/// connection, so two clients collide on one server connection) and, with no cache, never closes them.
pub fn through_pooler(server: PgConnectOptions) -> PgConnectOptions {
    server.extra_float_digits(None::<i8>)
}

/// The transaction-local setting row-level security reads the tenant from (`current_tenant_id()`).
const TENANT_SETTING: &str = "app.current_tenant_id";

/// Begins a transaction bound to one tenant: row-level security shows and accepts only that tenant's rows.
pub async fn begin_tenant(pool: &PgPool, tenant: TenantId) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_with_setting(pool, TENANT_SETTING, &tenant.to_string()).await
}

/// [`begin_tenant`] for a transaction whose commit does not wait for the disk: what it writes is visible
/// to every process at once and atomic as ever, and reaches the disk with the WAL writer's next flush (a
/// fraction of a second) or any later durable commit's. Only for what a PostgreSQL crash in that moment
/// may forget: a rate limit's bookkeeping, say, which is that much looser or tighter for a minute, or a
/// turn's start that its client is not told of (`engine::Receipt`).
pub async fn begin_tenant_without_waiting_for_disk(
    pool: &PgPool,
    tenant: TenantId,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_with_settings(pool, &[(TENANT_SETTING, &tenant.to_string()), ("synchronous_commit", "off")]).await
}

/// Begins a transaction with one transaction-local setting, in one round trip: `BEGIN` and its
/// `set_config` travel as one simple-protocol message. The value is written into the SQL, so a value that
/// is not only letters, digits, `-`, `_` and `.` (an id, a key's prefix) is refused, never sent.
pub async fn begin_with_setting(
    pool: &PgPool,
    name: &'static str,
    value: &str,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_with_settings(pool, &[(name, value)]).await
}

/// [`begin_with_setting`] with several settings, still in one round trip.
async fn begin_with_settings(
    pool: &PgPool,
    settings: &[(&'static str, &str)],
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let plain =
        |text: &str| text.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if let Some((name, _)) = settings.iter().find(|(name, value)| !plain(name) || !plain(value)) {
        return Err(sqlx::Error::InvalidArgument(format!("{name} cannot be set to a value with other characters")));
    }
    let settings: Vec<String> =
        settings.iter().map(|(name, value)| format!("set_config('{name}', '{value}', true)")).collect();
    let statement = format!("BEGIN; SELECT {}", settings.join(", "));
    let waiting = crate::metrics::PoolWaiter::start();
    let transaction = pool.begin_with(sqlx::AssertSqlSafe(statement)).await;
    waiting.done();
    transaction
}

/// The rows of several reads that take no parameters, sent in one round trip (one simple-protocol
/// message; PostgreSQL runs the statements in order, inside the connection's transaction): the rows of
/// each statement apart, in the order given. Rows come back in PostgreSQL's text format, which `FromRow`
/// decodes as it does the binary one. For reads a turn makes one after another before it can call its
/// model, where every round trip is waited for.
pub async fn read_together<const N: usize>(
    connection: &mut PgConnection,
    statements: [&'static str; N],
) -> Result<[Vec<sqlx::postgres::PgRow>; N], sqlx::Error> {
    use futures::TryStreamExt as _;
    let mut sets = vec![Vec::new()];
    let mut results = sqlx::raw_sql(AssertSqlSafe(statements.join(";\n"))).fetch_many(connection);
    while let Some(result) = results.try_next().await? {
        match result {
            sqlx::Either::Left(_) => sets.push(Vec::new()),
            sqlx::Either::Right(row) => sets.last_mut().expect("a set is always open").push(row),
        }
    }
    // The set opened after the last statement's end.
    sets.pop();
    let answered = sets.len();
    sets.try_into().map_err(|_| sqlx::Error::Protocol(format!("{N} statements answered {answered} results")))
}

/// How long work already accepted (a run's next step) waits for a connection beyond the pool's own
/// time-out while the pool is only busy.
const BUSY_POOL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// [`begin_tenant`] for work already accepted, such as a run under way: when the pool times out while the
/// database server still accepts connections (the pool is busy, under a burst of turns), waiting goes on,
/// up to [`BUSY_POOL_PATIENCE`]; a request can be refused with 503 and asked again, a run half-streamed
/// cannot. A database that cannot be reached still fails at the pool's time-out.
pub async fn begin_tenant_patiently(
    pool: &PgPool,
    tenant: TenantId,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    patiently(pool, || begin_tenant(pool, tenant)).await
}

/// Runs `acquiring` (something that takes a connection from `pool` first) again while it fails only
/// because the pool is busy, up to [`BUSY_POOL_PATIENCE`]. Safe to repeat: a time-out means no connection
/// was taken, so nothing ran.
pub async fn patiently<T, F>(pool: &PgPool, mut acquiring: impl FnMut() -> F) -> Result<T, sqlx::Error>
where
    F: Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = std::time::Instant::now() + BUSY_POOL_PATIENCE;
    loop {
        match acquiring().await {
            Err(sqlx::Error::PoolTimedOut) if std::time::Instant::now() < deadline && is_reachable(pool).await => {
                tracing::debug!("every database connection is busy; still waiting for one");
            }
            outcome => return outcome,
        }
    }
}

/// Whether the pool's server accepts a connection at all, asked past the pool: under load a waiter may
/// time out with the pool neither full nor empty (connections closing, one idle for an instant), so only the
/// server says whether it is busy or gone.
async fn is_reachable(pool: &PgPool) -> bool {
    const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
    let options = pool.connect_options();
    let port = options.get_port();
    let probe = async {
        match options.get_socket() {
            Some(directory) => {
                tokio::net::UnixStream::connect(directory.join(format!(".s.PGSQL.{port}"))).await.map(drop)
            }
            None => tokio::net::TcpStream::connect((options.get_host(), port)).await.map(drop),
        }
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(())))
}

/// A transaction from the pool, counted in the metrics while it waits for a connection and timed until
/// it has one: a pool too small for the load shows there before requests fail.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let waiting = crate::metrics::PoolWaiter::start();
    let transaction = pool.begin().await;
    waiting.done();
    transaction
}

/// Binds an open transaction to a tenant (used where the tenant becomes known inside the transaction).
pub async fn set_tenant(transaction: &mut PgConnection, tenant: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(TENANT_SETTING)
        .bind(tenant.to_string())
        .execute(transaction)
        .await?;
    Ok(())
}

/// True for a unique-constraint violation, which the API reports as a conflict.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

/// A write that broke a unique constraint, as `Ok(None)`; any other error stays an error. Every domain
/// turns `None` into its own "already exists" error (`NameTaken`, `SlugTaken`) the same way, and the
/// constraint itself decides, so two concurrent requests cannot both pass a check made before the write.
pub fn none_if_unique_violation<T>(result: Result<T, sqlx::Error>) -> Result<Option<T>, sqlx::Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// True when `error` means the database cannot be reached right now (down, restarting, unreachable, out
/// of connections), rather than a bad query: the API answers 503 and the client may retry.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// Connection exceptions (class 08), and the server shutting down or not yet accepting connections:
/// `admin_shutdown` (57P01), `crash_shutdown` (57P02), `cannot_connect_now` (57P03).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// True when the database answers (readiness).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgvector_versions_compare_by_major_and_minor() {
        assert!(parse_major_minor("0.8.2") >= Some(MIN_PGVECTOR));
        assert!(parse_major_minor("0.7.0") >= Some(MIN_PGVECTOR));
        assert!(parse_major_minor("0.6.2") < Some(MIN_PGVECTOR));
        assert!(parse_major_minor("garbage") < Some(MIN_PGVECTOR));
    }

    #[test]
    fn unreachable_databases_are_told_from_bad_queries() {
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            sqlx::Error::Protocol("unexpected end of stream".into()),
        ] {
            assert!(is_unavailable(&error), "{error:?}");
        }
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        for code in ["08006", "08001", "57P01", "57P02", "57P03"] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "40P01", "57014", "42P01"] {
            assert!(!is_unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn quoting_doubles_embedded_double_quotes() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
