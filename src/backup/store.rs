//! The few statements backups and restores run as the database owner: what the manifest records, and what
//! a dump cannot carry (roles, a mark in the system catalog).

use sqlx::PgConnection;

/// The server's `server_version` (e.g. `18.3`).
pub async fn server_version(connection: &mut PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SHOW server_version").fetch_one(connection).await
}

/// Whether the role connected may read every row whatever row-level security says (a superuser, or
/// `BYPASSRLS`): `pg_dump` must, since every tenant table forces it.
pub async fn reads_past_row_security(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        .fetch_one(connection)
        .await
}

/// The last migration applied successfully, 0 for an empty database.
pub async fn schema_version(connection: &mut PgConnection) -> Result<i64, sqlx::Error> {
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(connection).await?;
    Ok(applied.unwrap_or(0))
}

/// Creates the application role, without login, so that the dump's grants to it apply; `db::prepare`
/// then gives it its attributes and its password, as at every start.
pub async fn create_app_role_placeholder(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DO $$ BEGIN \
             IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_app') THEN \
                 CREATE ROLE switchboard_app NOLOGIN NOSUPERUSER NOBYPASSRLS; \
             END IF; \
         END $$",
    )
    .execute(connection)
    .await
    .map(drop)
}

/// Marks `ts_match_vq` leakproof again (migration 0010): the mark is in the system catalog, which a dump
/// leaves out, and without it full-text search under row-level security scans instead of using its index.
/// The embedded server's owner is a superuser, as the statement needs.
pub async fn mark_search_leakproof(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF").execute(connection).await.map(drop)
}
