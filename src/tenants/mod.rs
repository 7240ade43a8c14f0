//! Tenants: the organisations that use Switchboard. Created by the operator, each with its settings row
//! and a first admin API key.

pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::api_keys::{self, ApiKeyError, CreatedApiKey, NewApiKey};
use crate::audit::{self, AuditEntry};
use crate::auth::TenantContext;
use crate::ids::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{0}")]
    Invalid(String),
    #[error("a tenant with slug `{0}` already exists")]
    SlugTaken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ApiKeyError> for TenantError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::Database(error) => Self::Database(error),
            other => Self::Invalid(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

/// A validated request for a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub slug: String,
}

impl NewTenant {
    pub fn parse(name: &str, slug: &str) -> Result<Self, TenantError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(TenantError::Invalid("name must be 1 to 200 characters".to_owned()));
        }
        let slug_is_valid = (2..=63).contains(&slug.len())
            && slug.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && !slug.starts_with('-');
        if !slug_is_valid {
            return Err(TenantError::Invalid(
                "slug must be 2 to 63 characters of a-z, 0-9 and '-', not starting with '-'".to_owned(),
            ));
        }
        if slug == "system" {
            return Err(TenantError::SlugTaken(slug.to_owned()));
        }
        Ok(Self { name: name.to_owned(), slug: slug.to_owned() })
    }
}

/// Creates a tenant with default settings and a first admin key, in one transaction, audited.
pub async fn create(
    pool: &PgPool,
    new_tenant: &NewTenant,
    request_id: Option<String>,
) -> Result<(Tenant, CreatedApiKey), TenantError> {
    let mut transaction = pool.begin().await?;
    let tenant = match store::insert(&mut transaction, new_tenant).await {
        Err(error) if crate::db::is_unique_violation(&error) => {
            return Err(TenantError::SlugTaken(new_tenant.slug.clone()));
        }
        other => other?,
    };
    crate::db::set_tenant(&mut transaction, tenant.id).await?;
    store::insert_default_config(&mut transaction, tenant.id).await?;
    let context = TenantContext::operator(tenant.id, request_id);
    audit::record(
        &mut transaction,
        &context,
        &AuditEntry::new("tenant.created", "tenant", tenant.id.to_string())
            .with_details(serde_json::json!({ "name": tenant.name, "slug": tenant.slug })),
    )
    .await?;
    let first_key = NewApiKey {
        name: "initial admin key".to_owned(),
        scopes: vec![api_keys::Scope::Admin, api_keys::Scope::Chat, api_keys::Scope::Runs],
        expires_at: None,
    };
    let key = api_keys::create(&mut transaction, &context, &first_key).await?;
    transaction.commit().await?;
    Ok((tenant, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_lowercase_words() {
        assert!(NewTenant::parse("Acme", "acme").is_ok());
        assert!(NewTenant::parse("Acme", "acme-eu-2").is_ok());
        for slug in ["", "a", "Acme", "-acme", "acme corp", "acmé", &"a".repeat(64)] {
            assert!(NewTenant::parse("Acme", slug).is_err(), "{slug}");
        }
        assert!(matches!(NewTenant::parse("Sys", "system"), Err(TenantError::SlugTaken(_))));
        assert!(NewTenant::parse("  ", "acme").is_err());
    }
}
