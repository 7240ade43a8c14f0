//! Budgets: what a tenant, each of its API keys, each of its end users and each agent run may spend, in
//! US dollars per calendar month (UTC) or per run. Before every model call the worst case is reserved
//! against every budget the run is under, all or none, in one statement whose row locks order concurrent
//! calls, so together they never spend past a budget; the run's usage settles the reservations to the
//! actual cost, and a run that fails, is cancelled or dies releases them. Crossing 50, 80 and 100 % is
//! audited, and sent to the tenant's webhooks (`budget.threshold`).

pub mod store;

pub use store::{Settled, Settlement};

use chrono::{Datelike as _, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use crate::audit::Recorder;
use crate::ids::{ApiKeyId, RunId, TenantId, UserId};

/// Which budget a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// The tenant's monthly budget.
    Tenant,
    /// Each API key's monthly budget.
    ApiKey,
    /// Each end user's monthly budget.
    EndUser,
    /// Each agent run's budget.
    AgentRun,
}

impl BudgetKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Tenant => "the tenant's monthly budget",
            Self::ApiKey => "this API key's monthly budget",
            Self::EndUser => "this end user's monthly budget",
            Self::AgentRun => "this agent run's budget",
        }
    }
}

/// One budget a run is under: its kind, the row its spend is counted in, and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLine {
    pub kind: BudgetKind,
    pub subject: String,
    pub limit_usd: Decimal,
}

/// A call that no budget left room for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is used up: {remaining_usd} of {limit_usd} US dollars remain", kind.describe())]
pub struct BudgetExhausted {
    pub kind: BudgetKind,
    pub limit_usd: Decimal,
    pub remaining_usd: Decimal,
}

/// The budgets a run is under, and the month its spend counts in.
#[derive(Debug, Clone, Default)]
pub struct RunBudgets {
    pub lines: Vec<BudgetLine>,
    pub period: NaiveDate,
    /// An agent run's most model steps.
    pub max_steps: Option<u32>,
    /// The first budget that was used up when the budgets were read, if any.
    used_up: Option<BudgetExhausted>,
}

/// Who the run is for, to find the budgets it is under.
#[derive(Debug, Clone, Copy)]
pub struct Payer {
    pub run_id: RunId,
    pub api_key_id: Option<ApiKeyId>,
    pub end_user: Option<UserId>,
    pub agent_run: bool,
}

impl Payer {
    /// Whoever pays for a priced call made outside any run (a search, a rerank, a document's embedding,
    /// `/v1/embeddings`): its own id, which holds no reservation.
    pub fn outside_run(api_key_id: Option<ApiKeyId>, end_user: Option<UserId>) -> Self {
        Self { run_id: RunId::new(), api_key_id, end_user, agent_run: false }
    }
}

/// An amount the API was given for a budget that cannot be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be US dollars from 0 to 99999999.999999, at most six decimal places, as a decimal string (\"12.50\") \
     or a number; or null for no budget"
)]
pub struct InvalidAmount;

/// A budget as the API takes it: a decimal string, or a JSON number read as the decimal it spells (not
/// through arithmetic on a float); `null` is no budget. Bounded by the columns (`numeric(14, 6)`), and
/// refused rather than rounded where they would round it.
pub fn parse_amount(value: &serde_json::Value) -> Result<Option<Decimal>, InvalidAmount> {
    use std::str::FromStr as _;
    let amount = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(text) => Decimal::from_str_exact(text).map_err(|_| InvalidAmount)?,
        serde_json::Value::Number(number) => {
            let text = number.to_string();
            Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)).map_err(|_| InvalidAmount)?
        }
        _ => return Err(InvalidAmount),
    };
    let amount = amount.normalize();
    if amount.is_zero() {
        // `-0` too: stored as the zero it is.
        return Ok(Some(Decimal::ZERO));
    }
    let most = Decimal::new(99_999_999_999_999, 6);
    if amount.is_sign_negative() || amount > most || amount.scale() > 6 {
        return Err(InvalidAmount);
    }
    Ok(Some(amount))
}

/// What [`parse_amount`] takes, for the API's document: a decimal string, a number or null. (The strings
/// described are those always taken; a few other spellings are too, such as `"+5"` or `"5."`.)
pub fn amount_schema() -> utoipa::openapi::schema::OneOfBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[0-9]{1,8}(\.[0-9]{1,6})?$"))
                .description(Some("A decimal string, e.g. `\"12.50\"`.")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(99_999_999.999_999))
                .description(Some("A number, read as the decimal it spells (at most six decimal places).")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null).description(Some("No budget.")))
        .description(Some("US dollars from 0 to 99999999.999999, at most six decimal places; null for none."))
}

/// The first day of the current month (UTC): the period monthly budgets count in.
pub fn current_period() -> NaiveDate {
    let today = Utc::now().date_naive();
    today.with_day(1).expect("every month has a first day")
}

impl RunBudgets {
    /// The budgets the tenant's settings and the acting key's own budget put this run under (none set: an
    /// empty plan, and no cost per call), read with what each has spent and reserved, in one statement.
    pub async fn of(connection: &mut PgConnection, payer: Payer) -> Result<Self, sqlx::Error> {
        let period = current_period();
        let subjects: Vec<(BudgetKind, String)> = [
            (BudgetKind::Tenant, Some("tenant".to_owned())),
            (BudgetKind::ApiKey, payer.api_key_id.map(|key| format!("api_key:{key}"))),
            (BudgetKind::EndUser, payer.end_user.map(|user| format!("end_user:{user}"))),
            (BudgetKind::AgentRun, payer.agent_run.then(|| format!("run:{}", payer.run_id))),
        ]
        .into_iter()
        .filter_map(|(kind, subject)| Some((kind, subject?)))
        .collect();
        let asked: Vec<&str> = subjects.iter().map(|(_, subject)| subject.as_str()).collect();
        let settings = store::settings(connection, payer.api_key_id, period, &asked).await?;
        let mut budgets = Self::from_settings(&settings, &subjects, payer, period);
        // A budget that looks used up may be held by reservations nobody will settle: they are released
        // and the budgets read again (nothing is looked at while the budgets have room).
        if budgets.used_up.is_some() && store::release_stale(connection).await? {
            let settings = store::settings(connection, payer.api_key_id, period, &asked).await?;
            budgets = Self::from_settings(&settings, &subjects, payer, period);
        }
        Ok(budgets)
    }

    fn from_settings(
        settings: &store::BudgetSettings,
        subjects: &[(BudgetKind, String)],
        payer: Payer,
        period: NaiveDate,
    ) -> Self {
        let limit_of = |kind| match kind {
            BudgetKind::Tenant => settings.tenant,
            // The key's own budget replaces the tenant's budget for every key, whether tighter or looser.
            BudgetKind::ApiKey => settings.own_api_key.or(settings.api_key),
            BudgetKind::EndUser => settings.end_user,
            BudgetKind::AgentRun => settings.agent_run,
        };
        let mut lines = Vec::new();
        let mut used_up = None;
        for (position, (kind, subject)) in subjects.iter().enumerate() {
            let Some(limit_usd) = limit_of(*kind) else { continue };
            let used = settings.used.get(position).copied().unwrap_or_default();
            let line = BudgetLine { kind: *kind, subject: subject.clone(), limit_usd };
            if used_up.is_none() && used >= limit_usd {
                used_up = Some(exhausted(&line, used));
            }
            lines.push(line);
        }
        let max_steps =
            settings.agent_run_max_steps.filter(|_| payer.agent_run).and_then(|steps| u32::try_from(steps).ok());
        Self { lines, period, max_steps, used_up }
    }

    /// Refuses a run whose budgets were already used up when they were read (checked before anything is
    /// recorded).
    pub fn check_open(&self) -> Result<(), BudgetExhausted> {
        self.used_up.clone().map_or(Ok(()), Err)
    }

    /// Reserves `amount` against every budget, all or none, in one statement that is its own transaction
    /// (see `store::reserve`): nothing to commit or give back, refused or not. A budget is open while its
    /// spend and reservations are below its limit and the call's worst case fits in what is left.
    pub async fn reserve(
        &self,
        pool: &PgPool,
        tenant_id: TenantId,
        run_id: RunId,
        amount: Decimal,
    ) -> Result<Result<(), BudgetExhausted>, sqlx::Error> {
        if self.lines.is_empty() {
            return Ok(Ok(()));
        }
        let (subjects, limits) = self.subjects_and_limits();
        let mut refused = store::reserve(pool, tenant_id, run_id, self.period, amount, &subjects, &limits).await?;
        // Refused: reservations nobody will settle may be holding the room; released, and asked once more.
        if refused.is_some() && release_stale(pool, tenant_id).await? {
            refused = store::reserve(pool, tenant_id, run_id, self.period, amount, &subjects, &limits).await?;
        }
        let Some((subject, used)) = refused else { return Ok(Ok(())) };
        let line = self.lines.iter().find(|line| line.subject == subject).expect("the refused line is one of ours");
        Ok(Err(exhausted(line, used)))
    }

    /// [`Self::reserve`] on a connection the pool has free at once, else not at all (`None`), for a
    /// reservation made beside a transaction that holds a connection already: one that waited for a
    /// second could, with as many such transactions as the pool has connections, wait for ever. A refusal
    /// is `None` too: [`Self::reserve`] (which first releases stale reservations) decides it.
    pub async fn reserve_if_free(
        &self,
        pool: &PgPool,
        tenant_id: TenantId,
        run_id: RunId,
        amount: Decimal,
    ) -> Option<Result<(), sqlx::Error>> {
        if self.lines.is_empty() {
            return Some(Ok(()));
        }
        let mut connection = pool.try_acquire()?;
        let (subjects, limits) = self.subjects_and_limits();
        match store::reserve(&mut *connection, tenant_id, run_id, self.period, amount, &subjects, &limits).await {
            Ok(None) => Some(Ok(())),
            Ok(Some(_refused)) => None,
            Err(error) => Some(Err(error)),
        }
    }

    /// Each line's subject and limit, in the lines' order: what a reservation is given.
    fn subjects_and_limits(&self) -> (Vec<&str>, Vec<Decimal>) {
        self.lines.iter().map(|line| (line.subject.as_str(), line.limit_usd)).unzip()
    }

    /// Gives back what the run reserved, counting nothing as spent: the run did not start. A release
    /// that fails is logged: the reservation is then released once it is stale.
    pub async fn release(&self, pool: &PgPool, tenant_id: TenantId, run_id: RunId) {
        if self.lines.is_empty() {
            return;
        }
        let released = async {
            let mut transaction = crate::db::begin_tenant(pool, tenant_id).await?;
            store::release(&mut transaction, tenant_id, run_id).await?;
            transaction.commit().await
        };
        if let Err(error) = released.await {
            tracing::warn!(%error, "could not release a budget reservation; it is released once stale");
        }
    }

    /// Settles the run's reservations: releases them and counts `actual` (a cost the catalog could
    /// price, else nothing) as spent against each budget, in one statement, auditing each threshold
    /// crossed. In the caller's transaction, with the usage record.
    pub async fn settle(
        &self,
        connection: &mut PgConnection,
        by: &Recorder<'_>,
        run_id: RunId,
        actual: Option<Decimal>,
    ) -> Result<(), sqlx::Error> {
        // A run under no budget reserved nothing: no statement at all.
        let Some(settlement) = self.settlement(by.tenant_id, run_id, actual) else { return Ok(()) };
        let settled = store::settle(connection, &settlement).await?;
        self.audit_settled(connection, by, &settled).await
    }

    /// What settling the run's reservations with `actual` takes: none under no budget. For a statement
    /// that settles with something else it writes ([`crate::usage::store::record_settling`]), followed
    /// by [`Self::audit_settled`].
    pub fn settlement(&self, tenant_id: TenantId, run_id: RunId, actual: Option<Decimal>) -> Option<Settlement<'_>> {
        (!self.lines.is_empty()).then(|| Settlement {
            tenant_id,
            run_id,
            period: self.period,
            subjects: self.lines.iter().map(|line| line.subject.as_str()).collect(),
            spent: actual.unwrap_or_default(),
        })
    }

    /// Audits each threshold the settled lines crossed.
    pub async fn audit_settled(
        &self,
        connection: &mut PgConnection,
        by: &Recorder<'_>,
        settled: &[Settled],
    ) -> Result<(), sqlx::Error> {
        for line in &self.lines {
            let Some(now) = settled.iter().find(|settled| settled.subject == line.subject) else { continue };
            audit_thresholds(connection, by, line, self.period, now.spent_usd, now.audited_percent).await?;
        }
        Ok(())
    }
}

impl RunBudgets {
    /// Counts `actual` against every budget as a charge of its own, with nothing reserved: for a question's
    /// embedding (a turn's or a search's), a few tokens whose reservation would cost more time than it
    /// could protect (settling under a run's id would release what the run reserved for its model calls).
    pub async fn charge(
        &self,
        connection: &mut PgConnection,
        by: &Recorder<'_>,
        actual: Option<Decimal>,
    ) -> Result<(), sqlx::Error> {
        self.settle(connection, by, RunId::new(), actual).await
    }
}

/// A priced call outside a run's model calls (`/v1/embeddings`, a document's embedding, a rerank),
/// reserved before it is made under an id of its own, so that a run's reservation is never touched by it:
/// settled with its cost by [`RunBudgets::settle_call`], or released by [`RunBudgets::release_call`] when
/// the call fails. One its process never settles is released once it is stale and a budget needs the
/// room ([`store::release_stale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallReservation(RunId);

impl RunBudgets {
    /// Reserves `estimate` (the call's expected cost; nothing when it is unknown or free) against every
    /// budget, all or none, before the call is made.
    pub async fn reserve_call(
        &self,
        pool: &PgPool,
        tenant_id: TenantId,
        estimate: Option<Decimal>,
    ) -> Result<Result<CallReservation, BudgetExhausted>, sqlx::Error> {
        let call = CallReservation(RunId::new());
        match estimate {
            Some(estimate) if estimate > Decimal::ZERO => {
                Ok(self.reserve(pool, tenant_id, call.0, estimate).await?.map(|()| call))
            }
            _ => Ok(Ok(call)),
        }
    }

    /// Settles the call's reservation to `actual` (or counts `actual` when nothing was reserved), auditing
    /// each threshold crossed. In the caller's transaction, with the usage record.
    pub async fn settle_call(
        &self,
        connection: &mut PgConnection,
        by: &Recorder<'_>,
        call: CallReservation,
        actual: Option<Decimal>,
    ) -> Result<(), sqlx::Error> {
        self.settle(connection, by, call.0, actual).await
    }

    /// Gives back what the call reserved, when it failed and costs nothing (see [`Self::release`]).
    pub async fn release_call(&self, pool: &PgPool, tenant_id: TenantId, call: CallReservation) {
        self.release(pool, tenant_id, call.0).await;
    }
}

/// [`store::release_stale`] in a transaction of its own.
async fn release_stale(pool: &PgPool, tenant_id: TenantId) -> Result<bool, sqlx::Error> {
    let mut transaction = crate::db::begin_tenant(pool, tenant_id).await?;
    let released = store::release_stale(&mut transaction).await?;
    transaction.commit().await?;
    Ok(released)
}

/// Releases what a run reserved, counting nothing as spent (its process died before it knew its usage).
pub async fn release_abandoned(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
) -> Result<(), sqlx::Error> {
    store::release(connection, tenant_id, run_id).await
}

fn exhausted(line: &BudgetLine, used: Decimal) -> BudgetExhausted {
    BudgetExhausted {
        kind: line.kind,
        limit_usd: line.limit_usd,
        remaining_usd: (line.limit_usd - used).max(Decimal::ZERO),
    }
}

const THRESHOLDS: [i16; 3] = [50, 80, 100];

async fn audit_thresholds(
    connection: &mut PgConnection,
    by: &Recorder<'_>,
    line: &BudgetLine,
    period: NaiveDate,
    spent: Decimal,
    audited: i16,
) -> Result<(), sqlx::Error> {
    if line.limit_usd.is_zero() {
        return Ok(());
    }
    let percent = spent * Decimal::from(100) / line.limit_usd;
    let Some(crossed) = THRESHOLDS.into_iter().rev().find(|&threshold| percent >= Decimal::from(threshold)) else {
        return Ok(());
    };
    if crossed <= audited || !store::mark_audited(connection, &line.subject, period, crossed).await? {
        return Ok(());
    }
    let entry = crate::audit::AuditEntry::new("budget.threshold_crossed", "budget", line.subject.clone()).with_details(
        serde_json::json!({
            "budget": line.kind, "percent": crossed, "period": period,
            "spent_usd": spent.normalize().to_string(), "limit_usd": line.limit_usd.normalize().to_string(),
        }),
    );
    crate::audit::store::append(connection, by, &entry).await?;
    let threshold = crate::webhooks::events::Event::budget_threshold(
        budget_name(line.kind),
        &line.subject,
        crossed,
        &period.to_string(),
        &spent.normalize().to_string(),
        &line.limit_usd.normalize().to_string(),
    );
    crate::webhooks::store::enqueue(connection, by.tenant_id, &[threshold]).await?;
    Ok(())
}

/// A budget kind as its JSON names it (`tenant`, `api_key`, `end_user`, `agent_run`).
fn budget_name(kind: BudgetKind) -> &'static str {
    match kind {
        BudgetKind::Tenant => "tenant",
        BudgetKind::ApiKey => "api_key",
        BudgetKind::EndUser => "end_user",
        BudgetKind::AgentRun => "agent_run",
    }
}

/// One budget's state this period, for `GET /api/v1/budgets`. Amounts are US dollars, decimal strings.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    pub budget: BudgetKind,
    /// `tenant`, `api_key:<id>`, `end_user:<id>` or `run:<id>`.
    pub subject: String,
    pub limit_usd: Decimal,
    pub spent_usd: Decimal,
    pub reserved_usd: Decimal,
    pub remaining_usd: Decimal,
}

/// Every budget the tenant set, with what was spent and reserved against it this month: the tenant's
/// own, each key with a budget of its own (a revoked one only if it spent this month), and each key, end
/// user and agent run that spent anything under the tenant's budget for each.
pub async fn report(
    pool: &sqlx::PgPool,
    context: &crate::auth::context::TenantContext,
) -> Result<(NaiveDate, Vec<BudgetStatus>), sqlx::Error> {
    let period = current_period();
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let settings = store::settings(&mut transaction, None, period, &[]).await?;
    let spends = store::spend_in(&mut transaction, period).await?;
    let key_budgets = store::key_budgets(&mut transaction).await?;
    transaction.commit().await?;
    let status = |budget, subject: String, limit_usd: Decimal| {
        let (spent_usd, reserved_usd) = spends
            .iter()
            .find(|(known, _, _)| *known == subject)
            .map_or((Decimal::ZERO, Decimal::ZERO), |(_, spent, reserved)| (*spent, *reserved));
        let remaining_usd = (limit_usd - spent_usd - reserved_usd).max(Decimal::ZERO);
        BudgetStatus { budget, subject, limit_usd, spent_usd, reserved_usd, remaining_usd }
    };
    let mut statuses = Vec::new();
    if let Some(limit) = settings.tenant {
        statuses.push(status(BudgetKind::Tenant, "tenant".to_owned(), limit));
    }
    let own_budgets: Vec<(String, Decimal, bool)> =
        key_budgets.iter().map(|key| (format!("api_key:{}", key.id), key.limit_usd, key.revoked)).collect();
    let own_budget = |subject: &str| own_budgets.iter().find(|(own, _, _)| own == subject).map(|(_, limit, _)| *limit);
    let mut keys: Vec<&str> = own_budgets
        .iter()
        .filter(|(_, _, revoked)| !revoked)
        .map(|(subject, _, _)| subject.as_str())
        .chain(spends.iter().map(|(subject, _, _)| subject.as_str()).filter(|subject| subject.starts_with("api_key:")))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for subject in keys {
        if let Some(limit) = own_budget(subject).or(settings.api_key) {
            statuses.push(status(BudgetKind::ApiKey, subject.to_owned(), limit));
        }
    }
    for (prefix, budget, limit) in
        [("end_user:", BudgetKind::EndUser, settings.end_user), ("run:", BudgetKind::AgentRun, settings.agent_run)]
    {
        let Some(limit) = limit else { continue };
        for (subject, _, _) in spends.iter().filter(|(subject, _, _)| subject.starts_with(prefix)) {
            statuses.push(status(budget, subject.clone(), limit));
        }
    }
    Ok((period, statuses))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn budget_amounts_are_decimals_the_column_holds_exactly() {
        let amount = |value: serde_json::Value| parse_amount(&value).map(|amount| amount.map(|usd| usd.to_string()));
        for (value, expected) in [
            (json!("12.50"), Some("12.5")),
            (json!(12.5), Some("12.5")),
            (json!("0"), Some("0")),
            (json!("-0"), Some("0")),
            (json!(0), Some("0")),
            (json!("0.000001"), Some("0.000001")),
            (json!("99999999.999999"), Some("99999999.999999")),
            (json!(99_999_999.99), Some("99999999.99")),
            (json!(null), None),
        ] {
            assert_eq!(amount(value.clone()), Ok(expected.map(str::to_owned)), "{value}");
        }
        for bad in [
            json!(-1),
            json!("-0.01"),
            json!("ten"),
            json!(""),
            json!(" 5"),
            json!("1e3"),
            json!("0.0000001"),
            json!(1e-7),
            json!("100000000"),
            json!(1e12),
            json!(true),
            json!({}),
            json!([1]),
        ] {
            assert_eq!(amount(bad.clone()), Err(InvalidAmount), "{bad}");
        }
    }
}
