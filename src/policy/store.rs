//! SQL for policy profiles and the versions kept of them; every function runs inside a tenant-bound
//! transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::PolicyDocument;
use crate::ids::{PolicyProfileId, TenantId};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PolicyProfile {
    pub id: PolicyProfileId,
    pub name: String,
    pub version: i32,
    #[sqlx(json)]
    pub document: PolicyDocument,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, version, document, created_at, updated_at";

/// A taken name is a unique violation.
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    name: &str,
    document: &PolicyDocument,
) -> Result<PolicyProfile, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO policy_profiles (id, tenant_id, name, document) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    )))
    .bind(PolicyProfileId::new())
    .bind(tenant_id)
    .bind(name)
    .bind(sqlx::types::Json(document))
    .fetch_one(connection)
    .await
}

/// Replaces the profile's name and document and raises its version; `None` when there is no such profile.
/// A taken name is a unique violation.
pub async fn update(
    connection: &mut PgConnection,
    id: PolicyProfileId,
    name: &str,
    document: &PolicyDocument,
) -> Result<Option<PolicyProfile>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE policy_profiles SET name = $2, document = $3, version = version + 1, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(sqlx::types::Json(document))
    .fetch_optional(connection)
    .await
}

/// Keeps the document of one version of a profile.
pub async fn insert_version(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    profile: &PolicyProfile,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO policy_profile_versions (tenant_id, profile_id, version, document) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant_id)
    .bind(profile.id)
    .bind(profile.version)
    .bind(sqlx::types::Json(&profile.document))
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn list(connection: &mut PgConnection) -> Result<Vec<PolicyProfile>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM policy_profiles ORDER BY name")))
        .fetch_all(connection)
        .await
}

pub async fn find(connection: &mut PgConnection, id: PolicyProfileId) -> Result<Option<PolicyProfile>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM policy_profiles WHERE id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// The tenant's active profile, if it names one.
pub async fn active(connection: &mut PgConnection) -> Result<Option<PolicyProfile>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policy_profiles WHERE id = (SELECT active_policy_profile_id FROM tenant_configs)"
    )))
    .fetch_optional(connection)
    .await
}

/// Whether a profile was deleted; the tenant's active profile cannot be (a foreign key violation).
pub async fn delete(connection: &mut PgConnection, id: PolicyProfileId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM policy_profiles WHERE id = $1").bind(id).execute(connection).await?;
    Ok(deleted.rows_affected() > 0)
}
