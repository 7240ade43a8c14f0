//! A tenant's policy profiles: stored as the JSON `PolicyDocument`, checked by `Policy::parse` before every
//! save, versioned (each change raises `version` and keeps the old document), and audited.

use sqlx::{PgConnection, PgPool};

use super::store;
use super::{Policy, PolicyDocument, PolicyError};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ApiKeyId, PolicyProfileId};

pub use super::store::{PolicyGroup, PolicyProfile};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    #[error("no such policy profile")]
    NotFound,
    #[error("no such policy group")]
    GroupNotFound,
    #[error("a policy profile named `{0}` already exists")]
    NameTaken(String),
    #[error("this policy profile is the tenant's active one; activate another first")]
    Active,
    /// Keys or groups name the profile: they must name another (or inherit) before it can go.
    #[error("API keys or policy groups use this policy profile; give them another one (or none, to inherit) first")]
    InUse { keys: Vec<ApiKeyId>, groups: Vec<String> },
    /// A key or a group was given a profile id the tenant has no profile of.
    #[error("no policy profile of this tenant has the id {0}")]
    UnknownProfile(PolicyProfileId),
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

/// Deletes a profile, unless the tenant's active profile or a live key or a group uses it (revoked keys let
/// go of it first: they never act again).
pub async fn delete(pool: &PgPool, context: &TenantContext, id: PolicyProfileId) -> Result<(), ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    store::find(&mut transaction, id).await?.ok_or(ProfileError::NotFound)?;
    let released = store::release_from_revoked_keys(&mut transaction, id).await?;
    let (keys, groups) = store::users_of(&mut transaction, id).await?;
    if !keys.is_empty() || !groups.is_empty() {
        return Err(ProfileError::InUse { keys, groups });
    }
    let deleted = store::delete(&mut transaction, id).await.map_err(|error| match &error {
        sqlx::Error::Database(database) if database.is_foreign_key_violation() => {
            if database.constraint() == Some("tenant_configs_active_policy_profile_fk") {
                ProfileError::Active
            } else {
                // A key or group named it meanwhile.
                ProfileError::InUse { keys: Vec::new(), groups: Vec::new() }
            }
        }
        _ => ProfileError::Database(error),
    })?;
    if !deleted {
        return Err(ProfileError::NotFound);
    }
    audit::record(
        &mut transaction,
        context,
        &AuditEntry::new("policy_profile.deleted", "policy_profile", id.to_string())
            .with_details(serde_json::json!({ "released_from_revoked_api_keys": released })),
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// A group's name: 1 to 64 characters of lower-case letters, digits, `_`, `.` and `-`, starting with a
/// letter or a digit (the database checks the same).
pub fn parse_group(name: &str) -> Result<&str, ProfileError> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    let rest_ok = bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_.-".contains(&byte));
    if !first_ok || !rest_ok || name.len() > 64 {
        return Err(PolicyError(
            "a group is 1 to 64 characters: lower-case letters, digits, `_`, `.` and `-`, starting with a letter or a digit"
                .to_owned(),
        )
        .into());
    }
    Ok(name)
}

/// A foreign key violation on a profile id means the tenant has no such profile.
pub fn unknown_profile_if_missing<T>(result: Result<T, sqlx::Error>, id: PolicyProfileId) -> Result<T, ProfileError> {
    result.map_err(|error| match &error {
        sqlx::Error::Database(database) if database.is_foreign_key_violation() => ProfileError::UnknownProfile(id),
        _ => ProfileError::Database(error),
    })
}

/// Gives a group's end users a profile (the group is made on first use), audited with the profile before.
pub async fn put_group(
    pool: &PgPool,
    context: &TenantContext,
    name: &str,
    profile: PolicyProfileId,
) -> Result<PolicyGroup, ProfileError> {
    let name = parse_group(name)?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let put = store::put_group(&mut transaction, context.tenant_id(), name, profile).await;
    let (group, before) = unknown_profile_if_missing(put, profile)?;
    let entry = AuditEntry::new("policy_group.updated", "policy_group", name.to_owned()).with_details(
        serde_json::json!({ "policy_profile_id": group.policy_profile_id, "previous_policy_profile_id": before }),
    );
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(group)
}

pub async fn list_groups(pool: &PgPool, context: &TenantContext) -> Result<Vec<PolicyGroup>, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let groups = store::list_groups(&mut transaction).await?;
    transaction.commit().await?;
    Ok(groups)
}

/// Removes a group's profile: its end users inherit the tenant's active profile again.
pub async fn delete_group(pool: &PgPool, context: &TenantContext, name: &str) -> Result<(), ProfileError> {
    let name = parse_group(name)?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let before = store::delete_group(&mut transaction, name).await?.ok_or(ProfileError::GroupNotFound)?;
    let entry = AuditEntry::new("policy_group.deleted", "policy_group", name.to_owned())
        .with_details(serde_json::json!({ "previous_policy_profile_id": before }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(())
}

/// The profile in force in one line, for the system prompt's `policy_summary`: its name and version, whether
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
    fn group_names_are_short_lower_case_labels() {
        for good in ["support", "tier-2", "eu.agents", "0", "a_b", &"g".repeat(64)] {
            assert_eq!(parse_group(good).ok(), Some(good), "{good}");
        }
        for bad in ["", "Support", "-x", "_x", ".x", "a b", "a/b", "é", &"g".repeat(65)] {
            assert!(matches!(parse_group(bad), Err(ProfileError::Invalid(_))), "{bad}");
        }
    }

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
