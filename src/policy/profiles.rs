//! A tenant's policy profiles: stored as the JSON `PolicyDocument`, checked by `Policy::parse` before every
//! save, versioned (each change raises `version` and keeps the old document), and audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::{Policy, PolicyDocument, PolicyError};
use crate::audit::{self, AuditEntry};
use crate::auth::TenantContext;
use crate::db;
use crate::ids::PolicyProfileId;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    #[error("no such policy profile")]
    NotFound,
    #[error("a policy profile named `{0}` already exists")]
    NameTaken(String),
    #[error("this policy profile is the tenant's active one; activate another first")]
    Active,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

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

/// A profile ready to save: a valid name and a document that compiles.
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub name: String,
    pub document: PolicyDocument,
}

impl NewProfile {
    pub fn parse(name: &str, document: serde_json::Value) -> Result<Self, ProfileError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(PolicyError("name must be 1 to 200 characters".to_owned()).into());
        }
        let policy = Policy::from_json(document)?;
        Ok(Self { name: name.to_owned(), document: policy.document().clone() })
    }
}

const COLUMNS: &str = "id, name, version, document, created_at, updated_at";

pub async fn create(
    pool: &PgPool,
    context: &TenantContext,
    profile: &NewProfile,
) -> Result<PolicyProfile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let saved: PolicyProfile = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO policy_profiles (id, tenant_id, name, document) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(PolicyProfileId::new())
    .bind(context.tenant_id())
    .bind(&profile.name)
    .bind(sqlx::types::Json(&profile.document))
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(|| ProfileError::NameTaken(profile.name.clone()))?;
    keep_version(&mut transaction, context, &saved).await?;
    audited(&mut transaction, context, "policy_profile.created", &saved).await?;
    transaction.commit().await?;
    Ok(saved)
}

/// Replaces the profile's name and document; its version goes up by one.
pub async fn replace(
    pool: &PgPool,
    context: &TenantContext,
    id: PolicyProfileId,
    profile: &NewProfile,
) -> Result<PolicyProfile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let saved: Option<PolicyProfile> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE policy_profiles SET name = $2, document = $3, version = version + 1, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&profile.name)
    .bind(sqlx::types::Json(&profile.document))
    .fetch_optional(&mut *transaction)
    .await
    .map_err(|error| name_taken(error, &profile.name))?;
    let saved = saved.ok_or(ProfileError::NotFound)?;
    keep_version(&mut transaction, context, &saved).await?;
    audited(&mut transaction, context, "policy_profile.updated", &saved).await?;
    transaction.commit().await?;
    Ok(saved)
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<PolicyProfile>, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let profiles = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM policy_profiles ORDER BY name")))
        .fetch_all(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(profiles)
}

pub async fn get(pool: &PgPool, context: &TenantContext, id: PolicyProfileId) -> Result<PolicyProfile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let profile = find(&mut transaction, id).await?.ok_or(ProfileError::NotFound)?;
    transaction.commit().await?;
    Ok(profile)
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

pub async fn delete(pool: &PgPool, context: &TenantContext, id: PolicyProfileId) -> Result<(), ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let deleted =
        sqlx::query("DELETE FROM policy_profiles WHERE id = $1").bind(id).execute(&mut *transaction).await.map_err(
            |error| match &error {
                sqlx::Error::Database(database) if database.is_foreign_key_violation() => ProfileError::Active,
                _ => ProfileError::Database(error),
            },
        )?;
    if deleted.rows_affected() == 0 {
        return Err(ProfileError::NotFound);
    }
    audit::record(
        &mut transaction,
        context,
        &AuditEntry::new("policy_profile.deleted", "policy_profile", id.to_string()),
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

fn name_taken(error: sqlx::Error, name: &str) -> ProfileError {
    match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => ProfileError::NameTaken(name.to_owned()),
        _ => ProfileError::Database(error),
    }
}

async fn keep_version(
    connection: &mut PgConnection,
    context: &TenantContext,
    profile: &PolicyProfile,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO policy_profile_versions (tenant_id, profile_id, version, document) VALUES ($1, $2, $3, $4)",
    )
    .bind(context.tenant_id())
    .bind(profile.id)
    .bind(profile.version)
    .bind(sqlx::types::Json(&profile.document))
    .execute(connection)
    .await?;
    Ok(())
}

async fn audited(
    connection: &mut PgConnection,
    context: &TenantContext,
    action: &'static str,
    profile: &PolicyProfile,
) -> Result<(), sqlx::Error> {
    let entry = AuditEntry::new(action, "policy_profile", profile.id.to_string()).with_details(
        serde_json::json!({ "name": profile.name, "version": profile.version, "document": profile.document }),
    );
    audit::record(connection, context, &entry).await
}
