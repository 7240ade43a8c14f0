//! SQL for budgets: the settings in `tenant_configs` and the keys' own in `api_keys`, spend per subject and
//! month in `budget_spend`, and open reservations in `budget_reservations`; every function runs inside a
//! tenant-bound transaction, but [`reserve`], one statement that is a transaction of its own, bound to the
//! tenant by the function it calls (migration 0022).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::ids::{ApiKeyId, RunId, TenantId};

/// The tenant's budget settings, as stored, the acting key's own budget, and what each subject asked
/// about has spent and reserved this period.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct BudgetSettings {
    pub tenant: Option<Decimal>,
    pub api_key: Option<Decimal>,
    pub end_user: Option<Decimal>,
    pub agent_run: Option<Decimal>,
    pub agent_run_max_steps: Option<i32>,
    /// `api_keys.monthly_budget_usd` of the key named, if any.
    pub own_api_key: Option<Decimal>,
    /// Spent plus reserved of each subject asked about, in the order asked (zero when nothing was counted).
    pub used: Vec<Decimal>,
}

/// The settings, with `key`'s own budget and the spend of `subjects` in `period` read in the same
/// statement: every turn starts with this, so neither a key's budget nor the check that a budget is not
/// used up costs it a round trip of its own.
pub async fn settings(
    connection: &mut PgConnection,
    key: Option<ApiKeyId>,
    period: NaiveDate,
    subjects: &[&str],
) -> Result<BudgetSettings, sqlx::Error> {
    sqlx::query_as(
        "SELECT monthly_budget_usd AS tenant, key_monthly_budget_usd AS api_key, \
         end_user_monthly_budget_usd AS end_user, agent_run_budget_usd AS agent_run, agent_run_max_steps, \
         (SELECT monthly_budget_usd FROM api_keys WHERE id = $1) AS own_api_key, \
         ARRAY(SELECT coalesce(spend.spent_usd + spend.reserved_usd, 0) \
               FROM unnest($3::text[]) WITH ORDINALITY AS asked (subject, position) \
               LEFT JOIN budget_spend spend ON spend.subject = asked.subject AND spend.period = $2 \
               ORDER BY asked.position) AS used \
         FROM tenant_configs",
    )
    .bind(key)
    .bind(period)
    .bind(subjects)
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

/// Reserves `amount` against every line (`subjects[i]` up to `limits[i]`) and records the reservation,
/// all or none, in one statement that is its own transaction (`reserve_budgets`, migration 0022: bound to
/// the tenant, row locks ordering concurrent reservations, committed without waiting for the disk).
/// `Some((subject, used))`: the line that refused, with what was spent and reserved against it; nothing
/// was reserved.
pub async fn reserve(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: TenantId,
    run_id: RunId,
    period: NaiveDate,
    amount: Decimal,
    subjects: &[&str],
    limits: &[Decimal],
) -> Result<Option<(String, Decimal)>, sqlx::Error> {
    sqlx::query_as("SELECT refused_subject, used_usd FROM reserve_budgets($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant_id)
        .bind(run_id)
        .bind(uuid::Uuid::now_v7())
        .bind(period)
        .bind(amount)
        .bind(subjects)
        .bind(limits)
        .fetch_optional(executor)
        .await
}

/// One line as the settlement left it: the spend now, and the highest threshold already audited.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Settled {
    pub subject: String,
    pub spent_usd: Decimal,
    pub audited_percent: i16,
}

/// A run's (or call's) reservations to settle: released from each of `subjects` (its budget lines), and
/// `spent` counted against each.
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    pub tenant_id: TenantId,
    pub run_id: RunId,
    pub period: NaiveDate,
    pub subjects: Vec<&'a str>,
    pub spent: Decimal,
}

/// Settles the run's reservations in one statement (`settle_budgets`, migration 0022): removes them,
/// releases what they reserved from each of the settlement's subjects and counts its `spent` against
/// each. Rows are taken in subject order, as reservations take them.
pub async fn settle(connection: &mut PgConnection, settlement: &Settlement<'_>) -> Result<Vec<Settled>, sqlx::Error> {
    let query = sqlx::query_as(
        "SELECT settled.subject, settled.spent_usd, settled.audited_percent \
         FROM settle_budgets($1, $2, $3, $4, $5) AS settled",
    );
    bind_settlement(query, settlement).fetch_all(connection).await
}

/// Binds `settle_budgets`' five arguments from the settlement, after whatever `query` bound before.
pub fn bind_settlement<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    settlement: &'q Settlement<'_>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(settlement.tenant_id)
        .bind(settlement.run_id)
        .bind(settlement.period)
        .bind(&settlement.subjects)
        .bind(settlement.spent)
}

/// One statement that removes the tenant's reservations the condition picks and releases what they
/// reserved, counting nothing as spent; rows are taken in subject order, as reservations take them. Its
/// row count is that of the budget lines it released from.
macro_rules! release_where {
    (tenant = $tenant:literal, $condition:literal) => {
        concat!(
            "WITH taken AS ( \
                 DELETE FROM budget_reservations reservation WHERE reservation.tenant_id = ",
            $tenant,
            " AND ",
            $condition,
            " RETURNING reservation.subjects, reservation.period, reservation.amount_usd), \
             released AS ( \
                 SELECT subject, taken.period, sum(taken.amount_usd) AS amount \
                 FROM taken, unnest(taken.subjects) AS subject GROUP BY subject, taken.period), \
             locked AS ( \
                 SELECT spend.subject, spend.period, released.amount FROM budget_spend spend \
                 JOIN released ON (released.subject, released.period) = (spend.subject, spend.period) \
                 WHERE spend.tenant_id = ",
            $tenant,
            " \
                 ORDER BY spend.subject, spend.period \
                 FOR UPDATE OF spend) \
             UPDATE budget_spend spend SET reserved_usd = greatest(spend.reserved_usd - locked.amount, 0) \
             FROM locked \
             WHERE spend.tenant_id = ",
            $tenant,
            " \
               AND (spend.subject, spend.period) = (locked.subject, locked.period)"
        )
    };
}

/// Removes the run's (or call's) open reservations and releases what they reserved, counting nothing as
/// spent, in one statement.
pub async fn release(connection: &mut PgConnection, tenant_id: TenantId, run_id: RunId) -> Result<(), sqlx::Error> {
    sqlx::query(release_where!(tenant = "$1", "reservation.run_id = $2"))
        .bind(tenant_id)
        .bind(run_id)
        .execute(connection)
        .await?;
    Ok(())
}

/// How old a reservation whose run is not under way must be before nobody will settle it: longer than
/// any one call outside a run lasts (a provider's time-out, its retries, a large document's embedding).
const STALE_AFTER: &str = "15 minutes";

/// Releases the bound tenant's reservations that nobody will settle, in one statement: a call's once it
/// is [`STALE_AFTER`] old (its process died first), a run's once the run has ended or is gone (the
/// sweeper closes a dead process's runs and releases theirs; this also catches one it missed). True when
/// it released any.
pub async fn release_stale(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let released = sqlx::query(release_where!(
        tenant = "current_tenant_id()",
        "reservation.created_at < now() - $1::interval \
         AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.id = reservation.run_id \
                         AND runs.status IN ('queued', 'running', 'awaiting_approval'))"
    ))
    .bind(STALE_AFTER)
    .execute(connection)
    .await?;
    Ok(released.rows_affected() > 0)
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

/// Deletes an erased end user's own budget rows (`end_user:<id>`, every period); the tenant's and the
/// keys' rows keep what they spent.
pub async fn delete_end_user_spend(
    connection: &mut PgConnection,
    user_id: crate::ids::UserId,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM budget_spend WHERE subject = 'end_user:' || $1::text")
        .bind(user_id)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected())
}
