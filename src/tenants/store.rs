//! SQL for tenants, their settings rows, and the operator's trail. `tenants` and
//! `operator_audit_events` are not tenant-scoped; the rest runs in a transaction bound to the tenant.

use sqlx::PgConnection;

use super::{MonthUsage, NewTenant, OperatorEvent, Tenant, TenantStatus};
use crate::ids::TenantId;

pub async fn insert(connection: &mut PgConnection, new_tenant: &NewTenant) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) \
         RETURNING id, name, slug, status, suspended_at, created_at",
    )
    .bind(TenantId::new())
    .bind(&new_tenant.name)
    .bind(&new_tenant.slug)
    .fetch_one(connection)
    .await
}

/// Tenants newest first (ids are UUIDv7; the system tenant's nil id comes last), after `before`.
pub async fn page(
    connection: &mut PgConnection,
    limit: i64,
    before: Option<TenantId>,
) -> Result<Vec<Tenant>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, slug, status, suspended_at, created_at FROM tenants \
         WHERE ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(before)
    .fetch_all(connection)
    .await
}

/// One tenant; with `for_update`, its row locked until the transaction ends.
pub async fn find(
    connection: &mut PgConnection,
    id: TenantId,
    for_update: bool,
) -> Result<Option<Tenant>, sqlx::Error> {
    let query = if for_update {
        "SELECT id, name, slug, status, suspended_at, created_at FROM tenants WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT id, name, slug, status, suspended_at, created_at FROM tenants WHERE id = $1"
    };
    sqlx::query_as(query).bind(id).fetch_optional(connection).await
}

/// The tenant's status, for authentication; `None` when it no longer exists.
pub async fn status(connection: &mut PgConnection, id: TenantId) -> Result<Option<TenantStatus>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1").bind(id).fetch_optional(connection).await
}

pub async fn rename(connection: &mut PgConnection, id: TenantId, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET name = $2 WHERE id = $1").bind(id).bind(name).execute(connection).await?;
    Ok(())
}

/// Suspends (since now) or resumes the tenant.
pub async fn set_status(connection: &mut PgConnection, id: TenantId, status: TenantStatus) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET status = $2, \
         suspended_at = CASE WHEN $2 = 'suspended' THEN now() ELSE NULL END WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .execute(connection)
    .await?;
    Ok(())
}

/// The bound tenant's usage since `since` (a UTC day).
pub async fn usage_since(connection: &mut PgConnection, since: chrono::NaiveDate) -> Result<MonthUsage, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(input_tokens), 0)::bigint AS input_tokens, \
                coalesce(sum(output_tokens), 0)::bigint AS output_tokens, \
                coalesce(sum(cost_usd), 0) AS cost_usd, \
                count(*) FILTER (WHERE NOT priced) AS unpriced_records \
         FROM usage_records WHERE created_at >= ($1::date AT TIME ZONE 'UTC')",
    )
    .bind(since)
    .fetch_one(connection)
    .await
}

/// Deletes the tenant the transaction is bound to, with every row it owns (`erase_tenant`, migration 0024:
/// its audit trail, then the tenant, which every other table's rows follow by cascade).
pub async fn erase(connection: &mut PgConnection, id: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT erase_tenant($1)").bind(id).execute(connection).await?;
    Ok(())
}

/// Appends to the operator's trail, which the application role may insert into and read, never change.
pub async fn append_operator_event(
    connection: &mut PgConnection,
    event: &OperatorEvent<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO operator_audit_events \
         (id, action, target_tenant_id, target_tenant_slug, details, request_id, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(event.action)
    .bind(event.tenant_id)
    .bind(event.tenant_slug)
    .bind(&event.details)
    .bind(event.request_id)
    .bind(crate::telemetry::current_trace_id())
    .execute(connection)
    .await?;
    Ok(())
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
    /// Whether the tenant's searches read the shared corpus (the operator's documentation).
    pub shared_corpus: bool,
    /// Whether the tenant's searches and turns are reranked by the deployment's reranker (when a request
    /// does not say).
    pub rerank: bool,
    /// Days after their last activity that conversations (and their runs' text) are kept; `None`: forever.
    pub conversation_retention_days: Option<i32>,
    /// Days usage records are kept; `None`: forever.
    pub usage_retention_days: Option<i32>,
    /// Days audit events are kept; `None`: forever.
    pub audit_retention_days: Option<i32>,
    /// The tenant's own relevance floor per search mode; `None`: the default.
    pub relevance_floor_hybrid: Option<f64>,
    pub relevance_floor_vector: Option<f64>,
    pub relevance_floor_full_text: Option<f64>,
    /// The most files, and bytes of them, each of the tenant's workspaces may hold.
    pub workspace_max_files: i32,
    pub workspace_max_bytes: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The tenant's settings (one row), for [`db::read_together`](crate::db::read_together); [`config_of`]
/// decodes its rows.
pub const CONFIG_SELECT: &str = "SELECT default_provider, default_model, fallback_model, active_policy_profile_id, \
     monthly_budget_usd::text AS monthly_budget_usd, key_monthly_budget_usd::text AS key_monthly_budget_usd, \
     end_user_monthly_budget_usd::text AS end_user_monthly_budget_usd, \
     agent_run_budget_usd::text AS agent_run_budget_usd, agent_run_max_steps, multi_agent_enabled, \
     shared_corpus, rerank, conversation_retention_days, usage_retention_days, audit_retention_days, \
     relevance_floor_hybrid, relevance_floor_vector, relevance_floor_full_text, workspace_max_files, \
     workspace_max_bytes, updated_at \
     FROM tenant_configs";

pub async fn get_config(connection: &mut PgConnection) -> Result<TenantConfig, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(CONFIG_SELECT)).fetch_one(connection).await
}

/// The settings from the rows [`CONFIG_SELECT`] answered.
pub fn config_of(rows: &[sqlx::postgres::PgRow]) -> Result<TenantConfig, sqlx::Error> {
    rows.first().map_or(Err(sqlx::Error::RowNotFound), sqlx::FromRow::from_row)
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
    pub shared_corpus: Option<bool>,
    pub rerank: Option<bool>,
    /// The retention settings, by column name (`conversation_retention_days`, …), in days or `None`.
    pub retention: Vec<(&'static str, Option<i32>)>,
    /// The relevance floors, by column name (`relevance_floor_hybrid`, …), or `None` for the default.
    pub relevance_floors: Vec<(&'static str, Option<f64>)>,
    pub workspace_max_files: Option<i32>,
    pub workspace_max_bytes: Option<i64>,
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
    if let Some(enabled) = patch.shared_corpus {
        query.push(", shared_corpus = ").push_bind(enabled);
    }
    if let Some(enabled) = patch.rerank {
        query.push(", rerank = ").push_bind(enabled);
    }
    for (column, days) in &patch.retention {
        query.push(", ").push(*column).push(" = ").push_bind(*days);
    }
    for (column, floor) in &patch.relevance_floors {
        query.push(", ").push(*column).push(" = ").push_bind(*floor);
    }
    if let Some(files) = patch.workspace_max_files {
        query.push(", workspace_max_files = ").push_bind(files);
    }
    if let Some(bytes) = patch.workspace_max_bytes {
        query.push(", workspace_max_bytes = ").push_bind(bytes);
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

/// Every tenant that is not suspended (a suspended one may be being deleted).
pub async fn active_ids(pool: &sqlx::PgPool) -> Result<Vec<TenantId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM tenants WHERE status = 'active' ORDER BY id").fetch_all(pool).await
}

/// Locks the tenant's settings row until the transaction ends: a change checked against the settings
/// (retention's rules) sees them as no concurrent change can make them meanwhile.
pub async fn lock_config(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM tenant_configs FOR UPDATE").execute(connection).await?;
    Ok(())
}
