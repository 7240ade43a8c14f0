//! SQL for policy profiles and the versions kept of them; every function runs inside a tenant-bound
//! transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{PolicyDocument, PolicySource};
use crate::ids::{ApiKeyId, PolicyProfileId, TenantId, UserId};

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

/// The profile in force for a caller, and where it came from: the key's own profile, else the one mapped
/// to the end user's group, else the tenant's active one; `None` when none of them names a profile.
pub async fn effective(
    connection: &mut PgConnection,
    api_key_id: Option<ApiKeyId>,
    end_user: Option<UserId>,
) -> Result<Option<(PolicyProfile, PolicySource)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Found {
        #[sqlx(flatten)]
        profile: PolicyProfile,
        source: PolicySource,
    }
    let found: Option<Found> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH assigned (rank, source, profile_id) AS ( \
             SELECT 1, 'key', policy_profile_id FROM api_keys WHERE id = $1 \
             UNION ALL \
             SELECT 2, 'group', g.policy_profile_id FROM users AS u \
                 JOIN policy_groups AS g ON g.name = u.policy_group WHERE u.id = $2 \
             UNION ALL \
             SELECT 3, 'tenant', active_policy_profile_id FROM tenant_configs) \
         SELECT {COLUMNS}, assigned.source FROM assigned JOIN policy_profiles ON policy_profiles.id = assigned.profile_id \
         ORDER BY assigned.rank LIMIT 1"
    )))
    .bind(api_key_id)
    .bind(end_user)
    .fetch_optional(connection)
    .await?;
    Ok(found.map(|found| (found.profile, found.source)))
}

/// What names a profile: the live (unrevoked) keys and the groups that use it.
pub async fn users_of(
    connection: &mut PgConnection,
    id: PolicyProfileId,
) -> Result<(Vec<ApiKeyId>, Vec<String>), sqlx::Error> {
    let keys = sqlx::query_scalar(
        "SELECT id FROM api_keys WHERE policy_profile_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&mut *connection)
    .await?;
    let groups = sqlx::query_scalar("SELECT name FROM policy_groups WHERE policy_profile_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(connection)
        .await?;
    Ok((keys, groups))
}

/// Revoked keys can never act again: the profile they named is let go, so that it may be deleted. How
/// many keys let go of it.
pub async fn release_from_revoked_keys(connection: &mut PgConnection, id: PolicyProfileId) -> Result<u64, sqlx::Error> {
    let released = sqlx::query(
        "UPDATE api_keys SET policy_profile_id = NULL WHERE policy_profile_id = $1 AND revoked_at IS NOT NULL",
    )
    .bind(id)
    .execute(connection)
    .await?;
    Ok(released.rows_affected())
}

/// A group's profile, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PolicyGroup {
    pub name: String,
    pub policy_profile_id: PolicyProfileId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Maps a group to a profile (made, or changed); the row as it is now and the profile it had before.
/// A profile of no such id (for this tenant) is a foreign key violation.
pub async fn put_group(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    name: &str,
    profile: PolicyProfileId,
) -> Result<(PolicyGroup, Option<PolicyProfileId>), sqlx::Error> {
    let before: Option<PolicyProfileId> =
        sqlx::query_scalar("SELECT policy_profile_id FROM policy_groups WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *connection)
            .await?;
    let group = sqlx::query_as(
        "INSERT INTO policy_groups (tenant_id, name, policy_profile_id) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET policy_profile_id = EXCLUDED.policy_profile_id, updated_at = now() \
         RETURNING name, policy_profile_id, created_at, updated_at",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(profile)
    .fetch_one(connection)
    .await?;
    Ok((group, before))
}

pub async fn list_groups(connection: &mut PgConnection) -> Result<Vec<PolicyGroup>, sqlx::Error> {
    sqlx::query_as("SELECT name, policy_profile_id, created_at, updated_at FROM policy_groups ORDER BY name")
        .fetch_all(connection)
        .await
}

/// The profile the deleted group had; `None` when there was no such group.
pub async fn delete_group(connection: &mut PgConnection, name: &str) -> Result<Option<PolicyProfileId>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM policy_groups WHERE name = $1 RETURNING policy_profile_id")
        .bind(name)
        .fetch_optional(connection)
        .await
}

/// Whether a profile was deleted; the tenant's active profile cannot be (a foreign key violation).
pub async fn delete(connection: &mut PgConnection, id: PolicyProfileId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM policy_profiles WHERE id = $1").bind(id).execute(connection).await?;
    Ok(deleted.rows_affected() > 0)
}
