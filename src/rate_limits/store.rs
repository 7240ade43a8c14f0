//! SQL for rate limits: the admission check (one statement), giving tokens back or taking more, and the
//! limits a tenant's admin set. Every function runs in a transaction bound to the tenant: [`admit`] is one
//! statement that is a transaction of its own, bound to the tenant by the function it calls (migration
//! 0022); the others run in the caller's.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{LimitKind, LimitScope, Limits, MAX_PER_MINUTE, OperatorLimits};
use crate::ids::{ApiKeyId, TenantId, UserId};

/// What one admission asks for: who acts, what the request costs, and the operator's defaults for the
/// limits the tenant has not set.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub api_key: Option<ApiKeyId>,
    /// A widget user: their bucket is named by their external id, like an integration request's.
    pub widget_user: Option<UserId>,
    /// An end user named by the tenant's own id (the integration door's `external_user_id`).
    pub external_user: Option<&'a str>,
    pub tokens: u64,
    pub defaults: OperatorLimits,
}

/// One limit that applies to the request, as the statement saw and left it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckedBucket {
    pub scope: String,
    pub subject: String,
    pub kind: String,
    pub per_minute: i64,
    pub cost: i64,
    /// The request's cost as time: cost × 60 s / limit, in microseconds.
    pub step_us: i64,
    /// The bucket's state as the statement's snapshot saw it (`None`: never used, a full bucket).
    pub seen_tat: Option<DateTime<Utc>>,
    /// The state this request left, when it took its share (`None`: it took nothing from this bucket).
    pub taken_tat: Option<DateTime<Utc>>,
}

/// What the admission statement found and did.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The database's clock: every duration is measured against it, never against this process's.
    pub now: DateTime<Utc>,
    pub running: i64,
    pub buckets: Vec<CheckedBucket>,
}

#[derive(sqlx::FromRow)]
struct CheckedRow {
    now: DateTime<Utc>,
    running: i64,
    scope: Option<String>,
    subject: Option<String>,
    kind: Option<String>,
    per_minute: Option<i64>,
    cost: Option<i64>,
    step_us: Option<i64>,
    seen_tat: Option<DateTime<Utc>>,
    taken_tat: Option<DateTime<Utc>>,
}

/// The admission check, in one statement that is its own transaction (`admit_rate_limits`, migrations
/// 0022, 0051, 0053 and 0055, bound to the tenant and committed without waiting for the disk): the limits
/// that apply (the tenant's own, else the operator's), the tenant's running runs, and GCRA on every
/// limited bucket, all or nothing.
///
/// Every bucket is taken with an `INSERT … ON CONFLICT DO UPDATE … WHERE it fits`, in key order:
/// PostgreSQL locks the bucket's row and evaluates the condition on its latest committed version, so two
/// processes admitting at once can never both take the last of a limit, and concurrent admissions cannot
/// deadlock. When one bucket does not fit, the function puts back the ones it took, while it still holds
/// all their rows, and answers with the buckets as they are, none taken.
pub async fn admit(
    pool: &PgPool,
    tenant_id: TenantId,
    ask: &Ask<'_>,
    max_running: u64,
) -> Result<Checked, sqlx::Error> {
    let per_minute = |limit: Option<u64>| limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX));
    let defaults = &ask.defaults;
    let rows: Vec<CheckedRow> = sqlx::query_as(
        "SELECT checked.now, checked.running, checked.scope, checked.subject, checked.kind, checked.per_minute, \
                checked.cost, checked.step_us, checked.seen_tat, checked.taken_tat \
         FROM admit_rate_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS checked",
    )
    .bind(tenant_id)
    .bind(ask.api_key.map(|id| id.to_string()))
    .bind(ask.external_user)
    .bind(ask.widget_user)
    // More than any limit can be is never admitted anyway; capped so the arithmetic stays in range.
    .bind(i64::try_from(ask.tokens.min(MAX_PER_MINUTE + 1)).expect("a capped cost fits"))
    .bind(per_minute(defaults.api_key.requests_per_minute))
    .bind(per_minute(defaults.api_key.tokens_per_minute))
    .bind(per_minute(defaults.tenant.requests_per_minute))
    .bind(per_minute(defaults.tenant.tokens_per_minute))
    .bind(per_minute(defaults.end_user.requests_per_minute))
    .bind(per_minute(defaults.end_user.tokens_per_minute))
    .bind(i64::try_from(max_running).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let (now, running) = rows.first().map_or((Utc::now(), 0), |row| (row.now, row.running));
    let buckets = rows
        .into_iter()
        .filter_map(|row| {
            Some(CheckedBucket {
                scope: row.scope?,
                subject: row.subject?,
                kind: row.kind?,
                per_minute: row.per_minute?,
                cost: row.cost?,
                step_us: row.step_us?,
                seen_tat: row.seen_tat,
                taken_tat: row.taken_tat,
            })
        })
        .collect();
    Ok(Checked { now, running, buckets })
}

/// A bucket's state moved by `micros`: back (negative) to give a reservation back, forward to charge
/// what a run used beyond its estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub scope: LimitScope,
    pub subject: String,
    pub kind: LimitKind,
    pub micros: i64,
}

/// Moves each bucket's state by its shift, in one statement. Adding to `tat` whatever it is charges (or
/// refunds) as of the admission: a bucket that has refilled since is unaffected by a refund, as it should
/// be. Rows are locked in key order, like admissions lock them.
pub async fn shift(connection: &mut PgConnection, tenant_id: TenantId, shifts: &[Shift]) -> Result<(), sqlx::Error> {
    if shifts.is_empty() {
        return Ok(());
    }
    let scopes: Vec<&str> = shifts.iter().map(|shift| shift.scope.as_str()).collect();
    let subjects: Vec<&str> = shifts.iter().map(|shift| shift.subject.as_str()).collect();
    let kinds: Vec<&str> = shifts.iter().map(|shift| shift.kind.as_str()).collect();
    let micros: Vec<i64> = shifts.iter().map(|shift| shift.micros).collect();
    sqlx::query(
        "WITH moves AS ( \
             SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS m (scope, subject, kind, micros)), \
         locked AS ( \
             SELECT b.scope, b.subject, b.kind, m.micros FROM rate_limit_buckets b \
             JOIN moves m ON (m.scope, m.subject, m.kind) = (b.scope, b.subject, b.kind) \
             WHERE b.tenant_id = $1 \
             ORDER BY b.scope, b.subject, b.kind \
             FOR UPDATE OF b) \
         UPDATE rate_limit_buckets b SET tat = b.tat + locked.micros * interval '1 microsecond' \
         FROM locked \
         WHERE b.tenant_id = $1 AND (b.scope, b.subject, b.kind) = (locked.scope, locked.subject, locked.kind)",
    )
    .bind(tenant_id)
    .bind(scopes)
    .bind(subjects)
    .bind(kinds)
    .bind(micros)
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SettingRow {
    requests_per_minute: Option<i64>,
    tokens_per_minute: Option<i64>,
}

impl SettingRow {
    fn limits(&self) -> Limits {
        let unsigned = |value: Option<i64>| value.and_then(|value| u64::try_from(value).ok());
        Limits {
            requests_per_minute: unsigned(self.requests_per_minute),
            tokens_per_minute: unsigned(self.tokens_per_minute),
        }
    }
}

/// The limits the tenant set for `subject` ('tenant', 'end_user' or a key's id); none set is all `None`.
pub async fn setting(connection: &mut PgConnection, subject: &str) -> Result<Limits, sqlx::Error> {
    let row: Option<SettingRow> =
        sqlx::query_as("SELECT requests_per_minute, tokens_per_minute FROM rate_limits WHERE subject = $1")
            .bind(subject)
            .fetch_optional(connection)
            .await?;
    Ok(row.map(|row| row.limits()).unwrap_or_default())
}

/// Sets the tenant's limits for `subject`; limits with nothing set leave no row.
pub async fn put_setting(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    subject: &str,
    limits: Limits,
) -> Result<(), sqlx::Error> {
    if limits == Limits::default() {
        sqlx::query("DELETE FROM rate_limits WHERE subject = $1").bind(subject).execute(connection).await?;
        return Ok(());
    }
    let signed = |value: Option<u64>| value.map(|value| i64::try_from(value).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO rate_limits (tenant_id, subject, requests_per_minute, tokens_per_minute) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, subject) DO UPDATE \
         SET requests_per_minute = excluded.requests_per_minute, tokens_per_minute = excluded.tokens_per_minute, \
             updated_at = now()",
    )
    .bind(tenant_id)
    .bind(subject)
    .bind(signed(limits.requests_per_minute))
    .bind(signed(limits.tokens_per_minute))
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes an erased end user's rate-limit buckets, which name them by the tenant's own id.
pub async fn delete_end_user_buckets(connection: &mut PgConnection, external_id: &str) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM rate_limit_buckets WHERE scope = 'end_user' AND subject = $1")
        .bind(external_id)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected())
}
