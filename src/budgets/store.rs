//! SQL for budgets: the settings in `tenant_configs` and the keys' own in `api_keys`, spend per subject and
//! month in `budget_spend`, and open reservations in `budget_reservations`; every function runs inside a
//! tenant-bound transaction.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::ids::{ApiKeyId, RunId, TenantId};

/// The tenant's budget settings, as stored, and the acting key's own budget.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct BudgetSettings {
    pub tenant: Option<Decimal>,
    pub api_key: Option<Decimal>,
    pub end_user: Option<Decimal>,
    pub agent_run: Option<Decimal>,
    pub agent_run_max_steps: Option<i32>,
    /// `api_keys.monthly_budget_usd` of the key named, if any.
    pub own_api_key: Option<Decimal>,
}

/// The settings, with `key`'s own budget read in the same statement: every turn starts with this, so a
/// key's budget costs it no extra round trip.
pub async fn settings(connection: &mut PgConnection, key: Option<ApiKeyId>) -> Result<BudgetSettings, sqlx::Error> {
    sqlx::query_as(
        "SELECT monthly_budget_usd AS tenant, key_monthly_budget_usd AS api_key, \
         end_user_monthly_budget_usd AS end_user, agent_run_budget_usd AS agent_run, agent_run_max_steps, \
         (SELECT monthly_budget_usd FROM api_keys WHERE id = $1) AS own_api_key \
         FROM tenant_configs",
    )
    .bind(key)
    .fetch_one(connection)
    .await
}

/// A key's own budget, for the report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyBudget {
    pub id: ApiKeyId,
    pub limit_usd: Decimal,
    pub revoked: bool,
}

/// Every key of the tenant that has a budget of its own.
pub async fn key_budgets(connection: &mut PgConnection) -> Result<Vec<KeyBudget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, monthly_budget_usd AS limit_usd, revoked_at IS NOT NULL AS revoked FROM api_keys \
         WHERE monthly_budget_usd IS NOT NULL ORDER BY id",
    )
    .fetch_all(connection)
    .await
}

/// (spent, reserved) of a subject in a period; zero when nothing was ever counted.
pub async fn spend(
    connection: &mut PgConnection,
    subject: &str,
    period: NaiveDate,
) -> Result<(Decimal, Decimal), sqlx::Error> {
    let row: Option<(Decimal, Decimal)> =
        sqlx::query_as("SELECT spent_usd, reserved_usd FROM budget_spend WHERE subject = $1 AND period = $2")
            .bind(subject)
            .bind(period)
            .fetch_optional(connection)
            .await?;
    Ok(row.unwrap_or_default())
}

/// Adds `amount` to the subject's reservations if the budget is open and the amount fits: one statement,
/// so the row lock orders concurrent reservations (each sees the others' amounts). False: refused.
pub async fn reserve(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    subject: &str,
    period: NaiveDate,
    amount: Decimal,
    limit: Decimal,
) -> Result<bool, sqlx::Error> {
    let reserved = sqlx::query(
        "INSERT INTO budget_spend AS spend (tenant_id, subject, period, reserved_usd) \
         SELECT $1, $2, $3, $4 WHERE $4 <= $5 AND 0 < $5 \
         ON CONFLICT (tenant_id, subject, period) DO UPDATE SET reserved_usd = spend.reserved_usd + EXCLUDED.reserved_usd \
         WHERE spend.spent_usd + spend.reserved_usd < $5 \
           AND spend.spent_usd + spend.reserved_usd + EXCLUDED.reserved_usd <= $5",
    )
    .bind(tenant_id)
    .bind(subject)
    .bind(period)
    .bind(amount)
    .bind(limit)
    .execute(connection)
    .await?;
    Ok(reserved.rows_affected() == 1)
}

pub async fn insert_reservation(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
    subjects: &[&str],
    period: NaiveDate,
    amount: Decimal,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO budget_reservations (id, tenant_id, run_id, subjects, period, amount_usd) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant_id)
    .bind(run_id)
    .bind(subjects)
    .bind(period)
    .bind(amount)
    .execute(connection)
    .await?;
    Ok(())
}

/// A reservation a run had not settled yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reservation {
    pub subjects: Vec<String>,
    pub period: NaiveDate,
    pub amount_usd: Decimal,
}

/// Removes and returns the run's open reservations.
pub async fn take_reservations(connection: &mut PgConnection, run_id: RunId) -> Result<Vec<Reservation>, sqlx::Error> {
    sqlx::query_as("DELETE FROM budget_reservations WHERE run_id = $1 RETURNING subjects, period, amount_usd")
        .bind(run_id)
        .fetch_all(connection)
        .await
}

/// Releases `released` of the subject's reservations and counts `spent`; returns the spend now and the
/// highest threshold already audited.
pub async fn settle(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    subject: &str,
    period: NaiveDate,
    released: Decimal,
    spent: Decimal,
) -> Result<(Decimal, i16), sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO budget_spend AS spend (tenant_id, subject, period, spent_usd) VALUES ($1, $2, $3, $5) \
         ON CONFLICT (tenant_id, subject, period) DO UPDATE \
         SET reserved_usd = greatest(spend.reserved_usd - $4, 0), spent_usd = spend.spent_usd + $5 \
         RETURNING spent_usd, audited_percent",
    )
    .bind(tenant_id)
    .bind(subject)
    .bind(period)
    .bind(released)
    .bind(spent)
    .fetch_one(connection)
    .await
}

/// Records that `percent` of the budget was audited; false when another process did it first.
pub async fn mark_audited(
    connection: &mut PgConnection,
    subject: &str,
    period: NaiveDate,
    percent: i16,
) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query(
        "UPDATE budget_spend SET audited_percent = $3 WHERE subject = $1 AND period = $2 AND audited_percent < $3",
    )
    .bind(subject)
    .bind(period)
    .bind(percent)
    .execute(connection)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// Every subject's spend in a period, for the budgets report.
pub async fn spend_in(
    connection: &mut PgConnection,
    period: NaiveDate,
) -> Result<Vec<(String, Decimal, Decimal)>, sqlx::Error> {
    sqlx::query_as("SELECT subject, spent_usd, reserved_usd FROM budget_spend WHERE period = $1 ORDER BY subject")
        .bind(period)
        .fetch_all(connection)
        .await
}
