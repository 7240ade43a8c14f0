//! SQL for tenants' prompt templates (`prompt_templates`, immutable versions) and the version in force
//! (`active_prompt_templates`); every function runs inside a tenant-bound transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::TenantId;

/// A version as stored, with whether it is the one in force.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredTemplate {
    pub name: String,
    pub version: i32,
    pub body: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub active: bool,
}

/// A version without its body, for the list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateSummary {
    pub name: String,
    pub version: i32,
    pub note: Option<String>,
    pub characters: i32,
    pub created_at: DateTime<Utc>,
    pub active: bool,
}

/// The version in force for a name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveVersion {
    pub version: i32,
    pub activated_at: DateTime<Utc>,
}

/// Keeps a new version, numbered one past the tenant's last for `name`. Saves of one tenant queue on a
/// transaction-level lock, so two at once never take the same number.
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    name: &str,
    body: &str,
    note: Option<&str>,
) -> Result<StoredTemplate, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('prompt_templates:' || $1::uuid::text, 0))")
        .bind(tenant_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query_as(
        "INSERT INTO prompt_templates (tenant_id, name, version, body, note) \
         SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4 FROM prompt_templates WHERE name = $2 \
         RETURNING name, version, body, note, created_at, false AS active",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(body)
    .bind(note)
    .fetch_one(connection)
    .await
}

/// Every version of `name`, newest first.
pub async fn list(connection: &mut PgConnection, name: &str) -> Result<Vec<TemplateSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.name, t.version, t.note, char_length(t.body) AS characters, t.created_at, \
             (a.version IS NOT NULL) AS active \
         FROM prompt_templates t LEFT JOIN active_prompt_templates a \
             ON a.tenant_id = t.tenant_id AND a.name = t.name AND a.version = t.version \
         WHERE t.name = $1 ORDER BY t.version DESC",
    )
    .bind(name)
    .fetch_all(connection)
    .await
}

pub async fn find(
    connection: &mut PgConnection,
    name: &str,
    version: i32,
) -> Result<Option<StoredTemplate>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.name, t.version, t.body, t.note, t.created_at, (a.version IS NOT NULL) AS active \
         FROM prompt_templates t LEFT JOIN active_prompt_templates a \
             ON a.tenant_id = t.tenant_id AND a.name = t.name AND a.version = t.version \
         WHERE t.name = $1 AND t.version = $2",
    )
    .bind(name)
    .bind(version)
    .fetch_optional(connection)
    .await
}

/// The version in force for `name`, with its body; `None`: the built-in default.
pub async fn active(connection: &mut PgConnection, name: &str) -> Result<Option<StoredTemplate>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.name, t.version, t.body, t.note, t.created_at, true AS active \
         FROM active_prompt_templates a JOIN prompt_templates t \
             ON t.tenant_id = a.tenant_id AND t.name = a.name AND t.version = a.version \
         WHERE a.name = $1",
    )
    .bind(name)
    .fetch_optional(connection)
    .await
}

pub async fn active_version(connection: &mut PgConnection, name: &str) -> Result<Option<ActiveVersion>, sqlx::Error> {
    sqlx::query_as("SELECT version, activated_at FROM active_prompt_templates WHERE name = $1")
        .bind(name)
        .fetch_optional(connection)
        .await
}

/// Puts `version` of `name` in force (it must exist: the caller checked).
pub async fn activate(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    name: &str,
    version: i32,
) -> Result<ActiveVersion, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO active_prompt_templates (tenant_id, name, version) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET version = EXCLUDED.version, activated_at = now() \
         RETURNING version, activated_at",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(version)
    .fetch_one(connection)
    .await
}

/// Back to the built-in default for `name`; whether a version was in force.
pub async fn deactivate(connection: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let deleted =
        sqlx::query("DELETE FROM active_prompt_templates WHERE name = $1").bind(name).execute(connection).await?;
    Ok(deleted.rows_affected() > 0)
}
