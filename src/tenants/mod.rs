//! Tenants: the organisations that use Switchboard, over their whole life. Created by the operator, each
//! with its settings row and a first admin API key; listed with their month-to-date usage; renamed,
//! suspended (its keys refused, its queued runs waiting) and resumed; exported (`export/`); deleted with
//! every row they own. What the operator does is recorded in the tenant's trail and in the operator's
//! own, which outlives the tenant.

pub mod export;
pub mod profile;
pub mod secrets;
pub mod store;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::api_keys::{self, ApiKeyError, CreatedApiKey, NewApiKey};
use crate::audit::{self, AuditEntry};
use crate::auth::context::{Scope, TenantContext};
use crate::ids::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{0}")]
    Invalid(String),
    /// A setting the service knows but cannot honour yet.
    #[error("{0}")]
    Unsupported(String),
    #[error("a tenant with slug `{0}` already exists")]
    SlugTaken(String),
    #[error("no such tenant")]
    NotFound,
    #[error("the system tenant (the shared corpus) cannot be renamed, suspended or deleted")]
    SystemTenant,
    #[error("deleting a tenant needs `?confirm=` with the tenant's slug")]
    ConfirmationRequired,
    #[error("only a suspended tenant can be deleted: suspend it first (PATCH `status: suspended`)")]
    NotSuspended,
    /// `rerank: true` on a deployment with no reranker: the setting would do nothing.
    #[error("this deployment has no reranker (the operator sets SWITCHBOARD_RERANK_MODEL): rerank cannot be turned on")]
    RerankerUnavailable,
    #[error("{} exports are being read already, the most at once; try again when one has finished", export::AT_ONCE)]
    ExportsBusy,
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

/// Whether a tenant's credentials work: `suspended` refuses its keys and widget tokens, and holds its
/// queued agent runs until it is `active` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub status: TenantStatus,
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What a tenant used this month (UTC), from its usage records.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct MonthUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// The priced records' cost, exact.
    pub cost_usd: Decimal,
    /// Records the catalog had no price for (not in `cost_usd`).
    pub unpriced_records: i64,
}

/// A tenant as the operator sees it: the row, and its month-to-date usage.
#[derive(Debug, Clone)]
pub struct TenantSummary {
    pub tenant: Tenant,
    pub period_start: chrono::NaiveDate,
    pub usage: MonthUsage,
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
    let details = serde_json::json!({ "name": tenant.name, "slug": tenant.slug });
    let event = OperatorEvent {
        action: "tenant.created",
        tenant_id: tenant.id,
        tenant_slug: &tenant.slug,
        details: details.clone(),
        request_id: request_id.as_deref(),
    };
    store::append_operator_event(&mut transaction, &event).await?;
    let context = TenantContext::operator(tenant.id, request_id);
    audit::record(
        &mut transaction,
        &context,
        &AuditEntry::new("tenant.created", "tenant", tenant.id.to_string()).with_details(details),
    )
    .await?;
    let first_key = NewApiKey {
        name: "initial admin key".to_owned(),
        scopes: vec![Scope::Admin, Scope::Chat, Scope::Runs],
        expires_at: None,
        monthly_budget_usd: None,
        collections: None,
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
            // No coordinator runs several agents yet: a switch that did nothing would be believed.
            ("multi_agent_enabled", Value::Bool(true)) => {
                return Err(TenantError::Unsupported(
                    "multi_agent_enabled cannot be turned on yet: multi-agent runs are planned, not built; only \
                     false is accepted"
                        .to_owned(),
                ));
            }
            ("multi_agent_enabled", Value::Bool(false)) => patch.multi_agent_enabled = Some(false),
            ("shared_corpus", Value::Bool(enabled)) => patch.shared_corpus = Some(*enabled),
            ("rerank", Value::Bool(enabled)) => patch.rerank = Some(*enabled),
            (column @ ("conversation_retention_days" | "usage_retention_days" | "audit_retention_days"), days) => {
                patch.retention.push((retention_column(column), retention_days(column, days)?));
            }
            ("relevance_floor", floors) => patch.relevance_floors = relevance_floors(floors)?,
            ("workspace_max_files", Value::Number(files))
                if files.as_i64().is_some_and(|files| (1..=MAX_WORKSPACE_FILES).contains(&files)) =>
            {
                patch.workspace_max_files = files.as_i64().and_then(|files| i32::try_from(files).ok());
            }
            ("workspace_max_bytes", Value::Number(bytes))
                if bytes.as_i64().is_some_and(|bytes| (1..=MAX_WORKSPACE_BYTES).contains(&bytes)) =>
            {
                patch.workspace_max_bytes = bytes.as_i64();
            }
            ("workspace_max_files", _) => {
                return Err(TenantError::Invalid(format!(
                    "workspace_max_files must be a whole number from 1 to {MAX_WORKSPACE_FILES}"
                )));
            }
            ("workspace_max_bytes", _) => {
                return Err(TenantError::Invalid(format!(
                    "workspace_max_bytes must be a whole number from 1 to {MAX_WORKSPACE_BYTES}"
                )));
            }
            (
                "default_provider"
                | "default_model"
                | "fallback_model"
                | "active_policy_profile_id"
                | "agent_run_max_steps"
                | "multi_agent_enabled"
                | "shared_corpus"
                | "rerank",
                _,
            ) => {
                return Err(TenantError::Invalid(format!("{name} has an invalid value")));
            }
            _ => return Err(TenantError::Invalid(format!("unknown setting `{name}`"))),
        }
    }
    Ok(patch)
}

/// The highest quotas per workspace a tenant may set (migration 0030's checks): files, and bytes (1 GiB).
pub const MAX_WORKSPACE_FILES: i64 = 100_000;
pub const MAX_WORKSPACE_BYTES: i64 = 1024 * 1024 * 1024;

/// A budget setting as the column stores it (its text), or why the value is refused.
fn budget(name: &str, amount: &serde_json::Value) -> Result<Option<String>, TenantError> {
    let amount = crate::budgets::parse_amount(amount)
        .map_err(|_| TenantError::Invalid(format!("{name} has an invalid value")))?;
    Ok(amount.map(|amount| amount.to_string()))
}

/// `relevance_floor`: `null` (every mode's default) or an object naming some of `hybrid`, `vector` and
/// `full_text`, each a number from 0 to 1 or `null` (that mode's default); as the columns to set.
fn relevance_floors(floors: &serde_json::Value) -> Result<Vec<(&'static str, Option<f64>)>, TenantError> {
    const COLUMNS: [(&str, &str); 3] = [
        ("hybrid", "relevance_floor_hybrid"),
        ("vector", "relevance_floor_vector"),
        ("full_text", "relevance_floor_full_text"),
    ];
    let invalid = || {
        TenantError::Invalid(
            "relevance_floor must be null or an object of hybrid, vector and full_text, each null (the default) or \
             a number from 0 to 1"
                .to_owned(),
        )
    };
    let fields = match floors {
        serde_json::Value::Null => return Ok(COLUMNS.iter().map(|(_, column)| (*column, None)).collect()),
        serde_json::Value::Object(fields) => fields,
        _ => return Err(invalid()),
    };
    fields
        .iter()
        .map(|(mode, floor)| {
            let column =
                COLUMNS.iter().find(|(name, _)| name == mode).map(|(_, column)| *column).ok_or_else(invalid)?;
            match floor {
                serde_json::Value::Null => Ok((column, None)),
                floor => floor
                    .as_f64()
                    .filter(|floor| (0.0..=1.0).contains(floor))
                    .map(|floor| (column, Some(floor)))
                    .ok_or_else(invalid),
            }
        })
        .collect()
}

/// The budget columns a patch may set, as the static names the query is built from.
fn static_column(column: &str) -> &'static str {
    match column {
        "key_monthly_budget_usd" => "key_monthly_budget_usd",
        "end_user_monthly_budget_usd" => "end_user_monthly_budget_usd",
        _ => "agent_run_budget_usd",
    }
}

/// The shortest retention of usage records and audit events: a budget period (a calendar month, UTC) must
/// always be covered.
pub const MIN_ACCOUNTING_RETENTION_DAYS: i64 = 31;
/// The longest retention that is not forever (a century).
pub const MAX_RETENTION_DAYS: i64 = 36_500;

/// A retention setting: `null` (forever) or whole days, at least a day for conversations and
/// [`MIN_ACCOUNTING_RETENTION_DAYS`] for usage and audit.
fn retention_days(name: &str, days: &serde_json::Value) -> Result<Option<i32>, TenantError> {
    let least = if name == "conversation_retention_days" { 1 } else { MIN_ACCOUNTING_RETENTION_DAYS };
    match days {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(days)
            if days.as_i64().is_some_and(|days| (least..=MAX_RETENTION_DAYS).contains(&days)) =>
        {
            Ok(days.as_i64().and_then(|days| i32::try_from(days).ok()))
        }
        _ if least == 1 => Err(TenantError::Invalid(format!(
            "{name} must be null (kept forever) or a whole number of days from 1 to {MAX_RETENTION_DAYS}"
        ))),
        _ => Err(TenantError::Invalid(format!(
            "{name} must be null (kept forever) or a whole number of days from {least} (a budget period) to \
             {MAX_RETENTION_DAYS}"
        ))),
    }
}

/// The retention columns a patch may set, as the static names the query is built from.
fn retention_column(column: &str) -> &'static str {
    match column {
        "conversation_retention_days" => "conversation_retention_days",
        "usage_retention_days" => "usage_retention_days",
        _ => "audit_retention_days",
    }
}

/// Usage records and audit events are kept at least as long as conversations: `None` is forever, so while
/// conversations are kept forever, so are they.
pub fn check_retention(conversations: Option<i32>, usage: Option<i32>, audit: Option<i32>) -> Result<(), TenantError> {
    for (name, days) in [("usage_retention_days", usage), ("audit_retention_days", audit)] {
        let Some(days) = days else { continue };
        match conversations {
            None => {
                return Err(TenantError::Invalid(format!(
                    "{name} must be null (forever) while conversation_retention_days is null: usage and audit are \
                     kept at least as long as conversations"
                )));
            }
            Some(conversations) if days < conversations => {
                return Err(TenantError::Invalid(format!(
                    "{name} ({days}) must be at least conversation_retention_days ({conversations}): usage and \
                     audit are kept at least as long as conversations"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// What the deployment can do, which some settings depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deployment {
    /// A reranker is configured (`SWITCHBOARD_RERANK_MODEL`).
    pub reranker: bool,
}

/// Changes the settings as a deployment without optional capabilities (no reranker) allows.
pub async fn update_config(
    pool: &PgPool,
    context: &TenantContext,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<store::TenantConfig, TenantError> {
    update_config_on(pool, context, fields, Deployment::default()).await
}

/// Changes the settings; a setting the deployment cannot honour (`rerank: true` without a reranker) is
/// refused rather than accepted and ignored.
pub async fn update_config_on(
    pool: &PgPool,
    context: &TenantContext,
    fields: &serde_json::Map<String, serde_json::Value>,
    deployment: Deployment,
) -> Result<store::TenantConfig, TenantError> {
    let patch = parse_config_patch(fields)?;
    if patch.rerank == Some(true) && !deployment.reranker {
        return Err(TenantError::RerankerUnavailable);
    }
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    // A foreign key sees every tenant's profiles; only this tenant's may be named.
    if let Some(Some(profile)) = patch.active_policy_profile_id
        && crate::policy::store::find(&mut transaction, profile).await?.is_none()
    {
        return Err(TenantError::Invalid("active_policy_profile_id names no policy profile of this tenant".to_owned()));
    }
    if !patch.retention.is_empty() {
        store::lock_config(&mut transaction).await?;
        let current = store::get_config(&mut transaction).await?;
        let after = |column: &str, now: Option<i32>| {
            patch.retention.iter().rev().find(|(name, _)| *name == column).map_or(now, |(_, days)| *days)
        };
        check_retention(
            after("conversation_retention_days", current.conversation_retention_days),
            after("usage_retention_days", current.usage_retention_days),
            after("audit_retention_days", current.audit_retention_days),
        )?;
    }
    let config = store::update_config(&mut transaction, &patch).await?;
    let entry = AuditEntry::new("tenant_config.updated", "tenant", context.tenant_id().to_string())
        .with_details(serde_json::Value::Object(fields.clone()));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(config)
}

/// A validated change to a tenant: a new name, a new status, or both.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub status: Option<TenantStatus>,
}

impl TenantPatch {
    pub fn parse(name: Option<&str>, status: Option<TenantStatus>) -> Result<Self, TenantError> {
        let name = name
            .map(|name| {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 200 {
                    return Err(TenantError::Invalid("name must be 1 to 200 characters".to_owned()));
                }
                Ok(name.to_owned())
            })
            .transpose()?;
        Ok(Self { name, status })
    }
}

/// Tenants, newest first, `limit` at a time after `before`, each with its usage this month.
pub async fn list(pool: &PgPool, limit: i64, before: Option<TenantId>) -> Result<Vec<TenantSummary>, TenantError> {
    let mut transaction = pool.begin().await?;
    let tenants = store::page(&mut transaction, limit, before).await?;
    let mut summaries = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        summaries.push(summary(&mut transaction, tenant).await?);
    }
    transaction.commit().await?;
    Ok(summaries)
}

/// One tenant, with its usage this month.
pub async fn get(pool: &PgPool, id: TenantId) -> Result<TenantSummary, TenantError> {
    let mut transaction = pool.begin().await?;
    let tenant = store::find(&mut transaction, id, false).await?.ok_or(TenantError::NotFound)?;
    let summary = summary(&mut transaction, tenant).await?;
    transaction.commit().await?;
    Ok(summary)
}

/// The tenant's usage since the first day of this month (UTC), read under its own tenant binding (usage
/// records are tenant-scoped, so each tenant's are read with the transaction bound to it).
async fn summary(transaction: &mut sqlx::PgConnection, tenant: Tenant) -> Result<TenantSummary, sqlx::Error> {
    let period_start = crate::budgets::current_period();
    crate::db::set_tenant(transaction, tenant.id).await?;
    let usage = store::usage_since(transaction, period_start).await?;
    Ok(TenantSummary { tenant, period_start, usage })
}

/// Renames, suspends or resumes a tenant, in one transaction, each change recorded in the tenant's audit
/// trail (as the operator) and in the operator's own.
pub async fn update(
    pool: &PgPool,
    id: TenantId,
    patch: &TenantPatch,
    request_id: Option<String>,
) -> Result<TenantSummary, TenantError> {
    let mut transaction = pool.begin().await?;
    let before = store::find(&mut transaction, id, true).await?.ok_or(TenantError::NotFound)?;
    if id == TenantId::SYSTEM {
        return Err(TenantError::SystemTenant);
    }
    let mut changes = Vec::new();
    if let Some(name) = patch.name.as_ref().filter(|name| **name != before.name) {
        store::rename(&mut transaction, id, name).await?;
        changes.push(("tenant.renamed", serde_json::json!({ "from": before.name, "to": name })));
    }
    if let Some(status) = patch.status.filter(|status| *status != before.status) {
        store::set_status(&mut transaction, id, status).await?;
        let action = match status {
            TenantStatus::Suspended => "tenant.suspended",
            TenantStatus::Active => "tenant.resumed",
        };
        changes.push((action, serde_json::json!({ "from": before.status, "to": status })));
    }
    crate::db::set_tenant(&mut transaction, id).await?;
    let context = TenantContext::operator(id, request_id.clone());
    for (action, details) in changes {
        let entry = AuditEntry::new(action, "tenant", id.to_string()).with_details(details.clone());
        audit::record(&mut transaction, &context, &entry).await?;
        let event = OperatorEvent {
            action,
            tenant_id: id,
            tenant_slug: &before.slug,
            details,
            request_id: request_id.as_deref(),
        };
        store::append_operator_event(&mut transaction, &event).await?;
    }
    let tenant = store::find(&mut transaction, id, false).await?.ok_or(TenantError::NotFound)?;
    let summary = summary(&mut transaction, tenant).await?;
    transaction.commit().await?;
    Ok(summary)
}

/// What the operator did, for its own trail (`operator_audit_events`).
#[derive(Debug, Clone)]
pub struct OperatorEvent<'a> {
    pub action: &'static str,
    pub tenant_id: TenantId,
    pub tenant_slug: &'a str,
    pub details: serde_json::Value,
    pub request_id: Option<&'a str>,
}

/// Deletes a suspended tenant and every row it owns, in one transaction: the tenant's slug must be given
/// again as `confirm`. Recorded in the operator's trail (the tenant's own goes with it).
pub async fn delete(
    pool: &PgPool,
    id: TenantId,
    confirm: Option<&str>,
    request_id: Option<String>,
) -> Result<Tenant, TenantError> {
    let mut transaction = pool.begin().await?;
    let tenant = store::find(&mut transaction, id, true).await?.ok_or(TenantError::NotFound)?;
    if id == TenantId::SYSTEM {
        return Err(TenantError::SystemTenant);
    }
    if confirm != Some(tenant.slug.as_str()) {
        return Err(TenantError::ConfirmationRequired);
    }
    if tenant.status != TenantStatus::Suspended {
        return Err(TenantError::NotSuspended);
    }
    crate::db::set_tenant(&mut transaction, id).await?;
    let usage = store::usage_since(&mut transaction, crate::budgets::current_period()).await?;
    store::erase(&mut transaction, id).await?;
    let details = serde_json::json!({
        "name": tenant.name,
        "created_at": tenant.created_at,
        "suspended_at": tenant.suspended_at,
        "month_to_date": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": usage.cost_usd.normalize().to_string(),
        },
    });
    let event = OperatorEvent {
        action: "tenant.deleted",
        tenant_id: id,
        tenant_slug: &tenant.slug,
        details,
        request_id: request_id.as_deref(),
    };
    store::append_operator_event(&mut transaction, &event).await?;
    transaction.commit().await?;
    Ok(tenant)
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
        assert!(matches!(
            parse_config_patch(&fields(serde_json::json!({"multi_agent_enabled": true}))),
            Err(TenantError::Unsupported(_))
        ));
        let off = parse_config_patch(&fields(serde_json::json!({"multi_agent_enabled": false}))).unwrap();
        assert_eq!(off.multi_agent_enabled, Some(false));
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

#[cfg(test)]
mod retention_settings {
    use super::*;

    fn patch(value: &serde_json::Value) -> Result<store::ConfigPatch, TenantError> {
        parse_config_patch(value.as_object().unwrap())
    }

    #[test]
    fn retention_is_null_or_whole_days_in_range() {
        let parsed = patch(&serde_json::json!({
            "conversation_retention_days": 30, "usage_retention_days": 400, "audit_retention_days": null
        }))
        .unwrap();
        let mut retention = parsed.retention;
        retention.sort_unstable();
        assert_eq!(
            retention,
            [
                ("audit_retention_days", None),
                ("conversation_retention_days", Some(30)),
                ("usage_retention_days", Some(400))
            ]
        );
        assert!(patch(&serde_json::json!({"conversation_retention_days": 1})).is_ok());
        assert!(patch(&serde_json::json!({"conversation_retention_days": 36_500})).is_ok());
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-1),
            serde_json::json!(36_501),
            serde_json::json!(1.5),
            serde_json::json!("30"),
            serde_json::json!(true),
            serde_json::json!([30]),
        ] {
            assert!(patch(&serde_json::json!({"conversation_retention_days": bad})).is_err(), "{bad}");
        }
        // Usage and audit cover at least a budget period.
        for name in ["usage_retention_days", "audit_retention_days"] {
            assert!(patch(&serde_json::json!({name: 31})).is_ok());
            let refused = patch(&serde_json::json!({name: 30})).unwrap_err().to_string();
            assert!(refused.contains("budget period"), "{refused}");
        }
    }

    #[test]
    fn usage_and_audit_are_kept_at_least_as_long_as_conversations() {
        assert!(check_retention(None, None, None).is_ok());
        assert!(check_retention(Some(30), None, None).is_ok());
        assert!(check_retention(Some(30), Some(30), Some(365)).is_ok());
        assert!(check_retention(Some(90), Some(31), None).is_err(), "usage shorter than conversations");
        assert!(check_retention(Some(90), None, Some(60)).is_err(), "audit shorter than conversations");
        let refused = check_retention(None, Some(400), None).unwrap_err().to_string();
        assert!(refused.contains("while conversation_retention_days is null"), "{refused}");
    }
}
