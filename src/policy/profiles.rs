//! A tenant's policy profiles: stored as the JSON `PolicyDocument`, checked by `Policy::parse` before every
//! save, versioned (each change raises `version` and keeps the old document), and audited.

use sqlx::{PgConnection, PgPool};

use super::store;
use super::{Policy, PolicyDocument, PolicyError};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::PolicyProfileId;

pub use super::store::PolicyProfile;

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

pub async fn create(
    pool: &PgPool,
    context: &TenantContext,
    profile: &NewProfile,
) -> Result<PolicyProfile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let inserted = store::insert(&mut transaction, context.tenant_id(), &profile.name, &profile.document).await;
    let saved = db::none_if_unique_violation(inserted)?.ok_or_else(|| ProfileError::NameTaken(profile.name.clone()))?;
    store::insert_version(&mut transaction, context.tenant_id(), &saved).await?;
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
    let updated = store::update(&mut transaction, id, &profile.name, &profile.document).await;
    let saved = db::none_if_unique_violation(updated)?
        .ok_or_else(|| ProfileError::NameTaken(profile.name.clone()))?
        .ok_or(ProfileError::NotFound)?;
    store::insert_version(&mut transaction, context.tenant_id(), &saved).await?;
    audited(&mut transaction, context, "policy_profile.updated", &saved).await?;
    transaction.commit().await?;
    Ok(saved)
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<PolicyProfile>, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let profiles = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(profiles)
}

pub async fn get(pool: &PgPool, context: &TenantContext, id: PolicyProfileId) -> Result<PolicyProfile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let profile = store::find(&mut transaction, id).await?.ok_or(ProfileError::NotFound)?;
    transaction.commit().await?;
    Ok(profile)
}

pub async fn delete(pool: &PgPool, context: &TenantContext, id: PolicyProfileId) -> Result<(), ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let deleted = store::delete(&mut transaction, id).await.map_err(|error| match &error {
        sqlx::Error::Database(database) if database.is_foreign_key_violation() => ProfileError::Active,
        _ => ProfileError::Database(error),
    })?;
    if !deleted {
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

/// The active profile in one line, for the system prompt's `policy_summary`: its name and version, whether
/// it is read-only, how many tool patterns it allows and how many wait for approval.
pub fn summary(active: Option<&PolicyProfile>) -> String {
    let Some(profile) = active else {
        return "No policy profile is active: no tools may be used.".to_owned();
    };
    let document = &profile.document;
    let count = |number: usize, one: &str| match number {
        0 => "none".to_owned(),
        1 => format!("1 {one}"),
        _ => format!("{number} {one}s"),
    };
    format!(
        "Policy profile \"{}\" (version {}){}: {} allowed, {} waiting for approval.",
        profile.name,
        profile.version,
        if document.read_only_mode { ", read-only" } else { "" },
        count(document.tool_allowlist.len(), "tool pattern"),
        count(document.approval_required.len(), "pattern"),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_profile_its_mode_and_its_counts() {
        assert_eq!(summary(None), "No policy profile is active: no tools may be used.");
        let document = PolicyDocument {
            tool_allowlist: vec!["crm.*".to_owned(), "docs.search".to_owned()],
            read_only_mode: true,
            approval_required: vec!["crm.update_*".to_owned()],
            ..PolicyDocument::default()
        };
        let profile = PolicyProfile {
            id: PolicyProfileId::new(),
            name: "support".to_owned(),
            version: 3,
            document,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(
            summary(Some(&profile)),
            "Policy profile \"support\" (version 3), read-only: 2 tool patterns allowed, 1 pattern waiting for approval."
        );
    }
}
