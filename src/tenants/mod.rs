//! Tenants: the organisations that use Switchboard. Created by the operator, each with its settings row
//! and a first admin API key.

pub mod secrets;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::api_keys::{self, ApiKeyError, CreatedApiKey, NewApiKey};
use crate::audit::{self, AuditEntry};
use crate::auth::context::{Scope, TenantContext};
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
    let tenant = crate::db::none_if_unique_violation(store::insert(&mut transaction, new_tenant).await)?
        .ok_or_else(|| TenantError::SlugTaken(new_tenant.slug.clone()))?;
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
        scopes: vec![Scope::Admin, Scope::Chat, Scope::Runs],
        expires_at: None,
        monthly_budget_usd: None,
    };
    let key = api_keys::create(&mut transaction, &context, &first_key).await?;
    transaction.commit().await?;
    Ok((tenant, key))
}

/// The tenant's settings.
pub async fn config(pool: &PgPool, context: &TenantContext) -> Result<store::TenantConfig, TenantError> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let config = store::get_config(&mut transaction).await?;
    transaction.commit().await?;
    Ok(config)
}

/// Validates a settings change given as a JSON object: absent fields stay, `null` clears the clearable.
pub fn parse_config_patch(
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<store::ConfigPatch, TenantError> {
    use serde_json::Value;
    let invalid = |message: &str| TenantError::Invalid(message.to_owned());
    let mut patch = store::ConfigPatch::default();
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("default_provider", Value::String(provider)) => {
                crate::providers::ProviderKind::parse(provider).ok_or_else(|| {
                    invalid("default_provider must be one of local, openai, anthropic, gemini, openai_compatible")
                })?;
                patch.default_provider = Some(provider.clone());
            }
            ("default_model", Value::String(model)) if (1..=200).contains(&model.trim().len()) => {
                patch.default_model = Some(model.trim().to_owned());
            }
            ("fallback_model", Value::Null) => patch.fallback_model = Some(None),
            ("fallback_model", Value::String(model)) if (1..=200).contains(&model.trim().len()) => {
                patch.fallback_model = Some(Some(model.trim().to_owned()));
            }
            ("active_policy_profile_id", Value::Null) => patch.active_policy_profile_id = Some(None),
            ("active_policy_profile_id", Value::String(id)) => {
                let id = uuid::Uuid::parse_str(id).map_err(|_| invalid("active_policy_profile_id must be a UUID"))?;
                patch.active_policy_profile_id = Some(Some(id.into()));
            }
            // A decimal string or a number, as for a key's own budget (`budgets::parse_amount`).
            ("monthly_budget_usd", amount) => {
                patch.monthly_budget_usd = Some(budget(name, amount)?);
            }
            (column @ ("key_monthly_budget_usd" | "end_user_monthly_budget_usd" | "agent_run_budget_usd"), amount) => {
                patch.budgets.push((static_column(column), budget(name, amount)?));
            }
            ("agent_run_max_steps", Value::Null) => patch.agent_run_max_steps = Some(None),
            ("agent_run_max_steps", Value::Number(steps))
                if steps.as_i64().is_some_and(|steps| (1..=10_000).contains(&steps)) =>
            {
                patch.agent_run_max_steps = Some(steps.as_i64().and_then(|steps| i32::try_from(steps).ok()));
            }
            ("multi_agent_enabled", Value::Bool(enabled)) => patch.multi_agent_enabled = Some(*enabled),
            (
                "default_provider"
                | "default_model"
                | "fallback_model"
                | "active_policy_profile_id"
                | "agent_run_max_steps"
                | "multi_agent_enabled",
                _,
            ) => {
                return Err(TenantError::Invalid(format!("{name} has an invalid value")));
            }
            _ => return Err(TenantError::Invalid(format!("unknown setting `{name}`"))),
        }
    }
    Ok(patch)
}

/// A budget setting as the column stores it (its text), or why the value is refused.
fn budget(name: &str, amount: &serde_json::Value) -> Result<Option<String>, TenantError> {
    let amount = crate::budgets::parse_amount(amount)
        .map_err(|_| TenantError::Invalid(format!("{name} has an invalid value")))?;
    Ok(amount.map(|amount| amount.to_string()))
}

/// The budget columns a patch may set, as the static names the query is built from.
fn static_column(column: &str) -> &'static str {
    match column {
        "key_monthly_budget_usd" => "key_monthly_budget_usd",
        "end_user_monthly_budget_usd" => "end_user_monthly_budget_usd",
        _ => "agent_run_budget_usd",
    }
}

pub async fn update_config(
    pool: &PgPool,
    context: &TenantContext,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<store::TenantConfig, TenantError> {
    let patch = parse_config_patch(fields)?;
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    // A foreign key sees every tenant's profiles; only this tenant's may be named.
    if let Some(Some(profile)) = patch.active_policy_profile_id
        && crate::policy::store::find(&mut transaction, profile).await?.is_none()
    {
        return Err(TenantError::Invalid("active_policy_profile_id names no policy profile of this tenant".to_owned()));
    }
    let config = store::update_config(&mut transaction, &patch).await?;
    let entry = AuditEntry::new("tenant_config.updated", "tenant", context.tenant_id().to_string())
        .with_details(serde_json::Value::Object(fields.clone()));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(config)
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

    #[test]
    fn settings_patches_accept_known_fields_and_null_clears() {
        let fields = |value: serde_json::Value| value.as_object().unwrap().clone();
        let patch =
            parse_config_patch(&fields(serde_json::json!({"fallback_model": null, "monthly_budget_usd": 12.5})))
                .unwrap();
        assert_eq!(patch.fallback_model, Some(None));
        assert_eq!(patch.monthly_budget_usd, Some(Some("12.5".to_owned())));
        assert!(parse_config_patch(&fields(serde_json::json!({"default_model": ""}))).is_err());
        assert!(parse_config_patch(&fields(serde_json::json!({"multi_agent_enabled": "yes"}))).is_err());
        for too_much in [99_999_999.999_999_9, 1e8, -0.01] {
            assert!(parse_config_patch(&fields(serde_json::json!({"monthly_budget_usd": too_much}))).is_err());
        }
        assert!(parse_config_patch(&fields(serde_json::json!({"monthly_budget_usd": 99_999_999.999_999}))).is_ok());
        // A decimal string, as for a key's own budget.
        let patch = parse_config_patch(&fields(serde_json::json!({"key_monthly_budget_usd": "12.50"}))).unwrap();
        assert_eq!(patch.budgets, [("key_monthly_budget_usd", Some("12.5".to_owned()))]);
        for bad in ["abc", "-1", "1.0000001", ""] {
            assert!(parse_config_patch(&fields(serde_json::json!({"agent_run_budget_usd": bad}))).is_err(), "{bad}");
        }
    }
}
