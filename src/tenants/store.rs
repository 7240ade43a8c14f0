//! SQL for tenants and their settings rows.

use sqlx::PgConnection;

use super::{NewTenant, Tenant};
use crate::ids::TenantId;

pub async fn insert(connection: &mut PgConnection, new_tenant: &NewTenant) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) RETURNING id, name, slug, created_at")
        .bind(TenantId::new())
        .bind(&new_tenant.name)
        .bind(&new_tenant.slug)
        .fetch_one(connection)
        .await
}

pub async fn insert_default_config(connection: &mut PgConnection, tenant_id: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tenant_configs (tenant_id) VALUES ($1)").bind(tenant_id).execute(connection).await?;
    Ok(())
}

/// A tenant's settings.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct TenantConfig {
    pub default_provider: String,
    pub default_model: String,
    pub fallback_model: Option<String>,
    pub active_policy_profile_id: Option<crate::ids::PolicyProfileId>,
    pub monthly_budget_usd: Option<String>,
    pub key_monthly_budget_usd: Option<String>,
    pub end_user_monthly_budget_usd: Option<String>,
    pub agent_run_budget_usd: Option<String>,
    pub agent_run_max_steps: Option<i32>,
    pub multi_agent_enabled: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const CONFIG_SELECT: &str = "SELECT default_provider, default_model, fallback_model, active_policy_profile_id, \
     monthly_budget_usd::text AS monthly_budget_usd, key_monthly_budget_usd::text AS key_monthly_budget_usd, \
     end_user_monthly_budget_usd::text AS end_user_monthly_budget_usd, \
     agent_run_budget_usd::text AS agent_run_budget_usd, agent_run_max_steps, multi_agent_enabled, updated_at \
     FROM tenant_configs";

pub async fn get_config(connection: &mut PgConnection) -> Result<TenantConfig, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(CONFIG_SELECT)).fetch_one(connection).await
}

/// A change to the settings; `None` leaves a field as it is, `Some(None)` clears a clearable one.
#[derive(Debug, Clone, Default)]
pub struct ConfigPatch {
    pub default_provider: Option<String>,
    pub default_model: Option<String>,
    pub fallback_model: Option<Option<String>>,
    pub active_policy_profile_id: Option<Option<crate::ids::PolicyProfileId>>,
    pub monthly_budget_usd: Option<Option<String>>,
    /// The other budgets, by column name: each API key's, each end user's and each agent run's.
    pub budgets: Vec<(&'static str, Option<String>)>,
    pub agent_run_max_steps: Option<Option<i32>>,
    pub multi_agent_enabled: Option<bool>,
}

pub async fn update_config(connection: &mut PgConnection, patch: &ConfigPatch) -> Result<TenantConfig, sqlx::Error> {
    let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE tenant_configs SET updated_at = now()");
    if let Some(provider) = &patch.default_provider {
        query.push(", default_provider = ").push_bind(provider);
    }
    if let Some(model) = &patch.default_model {
        query.push(", default_model = ").push_bind(model);
    }
    if let Some(fallback) = &patch.fallback_model {
        query.push(", fallback_model = ").push_bind(fallback);
    }
    if let Some(profile) = &patch.active_policy_profile_id {
        query.push(", active_policy_profile_id = ").push_bind(profile);
    }
    if let Some(budget) = &patch.monthly_budget_usd {
        query.push(", monthly_budget_usd = ").push_bind(budget).push("::numeric");
    }
    for (column, budget) in &patch.budgets {
        query.push(", ").push(*column).push(" = ").push_bind(budget).push("::numeric");
    }
    if let Some(steps) = patch.agent_run_max_steps {
        query.push(", agent_run_max_steps = ").push_bind(steps);
    }
    if let Some(enabled) = patch.multi_agent_enabled {
        query.push(", multi_agent_enabled = ").push_bind(enabled);
    }
    query.build().execute(&mut *connection).await?;
    get_config(connection).await
}

/// The tenant's display name (the system prompt names it).
pub async fn name(connection: &mut PgConnection, id: TenantId) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1").bind(id).fetch_one(connection).await
}

/// The tenant a slug names. Outside any tenant: for the operator's command line and the demo page.
pub async fn find_by_slug(pool: &sqlx::PgPool, slug: &str) -> Result<Option<TenantId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1").bind(slug).fetch_optional(pool).await
}

/// Every tenant, for work done across them (the embedding backfill).
pub async fn all_ids(pool: &sqlx::PgPool) -> Result<Vec<TenantId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM tenants ORDER BY id").fetch_all(pool).await
}
