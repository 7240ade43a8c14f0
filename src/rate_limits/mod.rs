//! Rate limits: requests and tokens per minute per API key, per tenant and per end user, and a cap on the
//! runs a tenant has running at once. Checked at the door before a run starts ([`admit`]), so a refused
//! request starts and stores nothing.
//!
//! The limits live in PostgreSQL, so every Switchboard process on one database enforces the same ones.
//! Each limit is a GCRA bucket (the generic cell rate algorithm: a token bucket kept as one timestamp,
//! `tat`, the moment the bucket is full again). A request costing `c` of a limit of `L` per minute fits
//! when `max(tat, now) + c·60 s/L <= now + 60 s`, and then moves `tat` there: a full bucket admits `L` at
//! once and refills steadily, `L` per minute. The whole admission (which limits apply, the concurrent-run
//! count, every bucket, all or nothing) is one statement: `store::admit` says how it stays exact when
//! processes admit at the same moment.
//!
//! Tokens are reserved from an estimate at admission ([`estimate_tokens`]: the prompt as the caller sent
//! it, plus the output ceiling it asked for or [`DEFAULT_OUTPUT_TOKENS`]); [`settle_tokens`] corrects
//! the reservation once the real usage is known: just after a run's end is recorded (off its followers'
//! path), or at once where nothing is recorded (a turn that never started, an embedding request).
//!
//! Concurrent runs are counted, not reserved: admission reads the tenant's count of runs with status
//! `running`, in the same statement, and refuses at the cap. The count is kept by triggers on `runs`
//! (migration 0051), in the transaction of every change that starts or stops a run running, so reading it
//! costs 16 rows however many runs are running. The run itself is created later, by the engine, in a
//! transaction of its own, so admissions of one tenant that race may each see the last slot free: the cap
//! can be passed by at most the number of that tenant's admissions in flight at one moment (each lasts
//! milliseconds, and the rate limits bound how many there are). A counter taken at admission and given back
//! when the run ends would be exact only if every way a run ends, a killed process included, gave it back;
//! a count of the runs themselves cannot drift.
//!
//! The limits that apply are the tenant's own ([`settings`], set by its admin) or else the operator's
//! defaults, read at start by `config` and handed over with [`install_operator_limits`].

pub mod corrections;
pub mod settings;
pub mod store;

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::TenantId;
use store::{CheckedBucket, Shift};

/// Every limit is per minute.
const WINDOW_MICROS: i64 = 60_000_000;

/// The output a request is assumed to ask for when it names no ceiling, for the token estimate.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 1024;

/// The cap on a tenant's running runs when the operator sets none
/// (`SWITCHBOARD_MAX_CONCURRENT_RUNS_PER_TENANT`).
pub const DEFAULT_MAX_CONCURRENT_RUNS: u64 = 50;

/// The largest limit that can be set, requests or tokens per minute.
pub const MAX_PER_MINUTE: u64 = 1_000_000_000;

/// How long a client refused for too many running runs is asked to wait: about a short turn.
const RUNS_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Prompts up to this size are counted on the request's own task; longer ones on the blocking pool.
const COUNT_INLINE_BYTES: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("{0}")]
    Limited(Box<Refusal>),
    #[error("{0}")]
    TooManyRuns(Box<RunsRefusal>),
    #[error("{0}")]
    Invalid(String),
    #[error("no such API key")]
    ApiKeyNotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whose limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    ApiKey,
    Tenant,
    EndUser,
}

impl LimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Tenant => "tenant",
            Self::EndUser => "end_user",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "api_key" => Some(Self::ApiKey),
            "tenant" => Some(Self::Tenant),
            "end_user" => Some(Self::EndUser),
            _ => None,
        }
    }

    /// Whose limit, in a sentence.
    fn owner(self) -> &'static str {
        match self {
            Self::ApiKey => "this API key's",
            Self::Tenant => "the tenant's",
            Self::EndUser => "this end user's",
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Requests,
    Tokens,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "requests" => Some(Self::Requests),
            "tokens" => Some(Self::Tokens),
            _ => None,
        }
    }
}

/// Requests and tokens per minute; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

/// The operator's defaults, for every tenant that sets no limit of its own, and the cap on running runs,
/// which only the operator sets (read from the environment by `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorLimits {
    pub api_key: Limits,
    pub tenant: Limits,
    pub end_user: Limits,
    pub max_concurrent_runs_per_tenant: u64,
}

impl Default for OperatorLimits {
    fn default() -> Self {
        Self {
            api_key: Limits::default(),
            tenant: Limits::default(),
            end_user: Limits::default(),
            max_concurrent_runs_per_tenant: DEFAULT_MAX_CONCURRENT_RUNS,
        }
    }
}

static OPERATOR_LIMITS: OnceLock<OperatorLimits> = OnceLock::new();

/// Sets the operator's limits for this process, once, when `serve` starts; a process that never calls it
/// (a test harness, `switchboard ingest`) has the defaults: no rate limits, 50 running runs.
pub fn install_operator_limits(limits: OperatorLimits) {
    if OPERATOR_LIMITS.set(limits).is_err() && OPERATOR_LIMITS.get() != Some(&limits) {
        tracing::warn!("the operator's rate limits were already set; the first ones stay");
    }
}

pub fn operator_limits() -> OperatorLimits {
    OPERATOR_LIMITS.get().copied().unwrap_or_default()
}

/// One limit as the client is told of it: its size, what is left, and how long until it is whole again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub scope: LimitScope,
    pub limit: u64,
    pub remaining: u64,
    pub reset: Duration,
}

/// The tightest limit of each kind that applies to a request (`None`: no limit of that kind applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standings {
    pub requests: Option<Standing>,
    pub tokens: Option<Standing>,
}

/// A request over a limit: which one, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub scope: LimitScope,
    pub kind: LimitKind,
    pub limit: u64,
    /// What the request would have taken: 1 request, or its estimated tokens.
    pub requested: u64,
    /// `None` when the request alone is more than the limit allows in a minute: it never fits.
    pub retry_after: Option<Duration>,
    /// The database's clock when the request was refused.
    pub at: DateTime<Utc>,
    /// Every limit's standing without this request.
    pub standings: Standings,
}

impl Refusal {
    /// `Retry-After`, in whole seconds, rounded up; a request that never fits is asked to wait the window.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.map_or(60, |wait| wait.as_micros().div_ceil(1_000_000).max(1).try_into().unwrap_or(60))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (owner, limit, kind) = (self.scope.owner(), self.limit, self.kind.as_str());
        match self.retry_after {
            Some(_) => {
                let seconds = self.retry_after_seconds();
                let at = self.at + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(60));
                write!(
                    formatter,
                    "rate limit reached: {owner} limit of {limit} {kind} per minute is used up; try again in \
                     {seconds} s (at {})",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            }
            None => write!(
                formatter,
                "rate limit reached: this request's estimated {} tokens are more than {owner} limit of {limit} \
                 {kind} per minute; send a shorter prompt or a lower max_tokens",
                self.requested
            ),
        }
    }
}

/// A run refused because the tenant has its cap of runs running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsRefusal {
    pub running: u64,
    pub cap: u64,
    pub standings: Standings,
}

impl RunsRefusal {
    pub fn retry_after_seconds(&self) -> u64 {
        RUNS_RETRY_AFTER.as_secs()
    }
}

impl fmt::Display for RunsRefusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "the tenant has {} runs running, and may have {} at once; try again when one has finished",
            self.running, self.cap
        )
    }
}

/// What a run-starting request asks of the limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand<'a> {
    /// The prompt's texts as the caller sent them (messages, system prompt), for the token estimate.
    pub prompt: &'a [&'a str],
    /// The output ceiling the caller asked for, if any.
    pub max_output_tokens: Option<u32>,
    /// The end user the request names by the tenant's own id (the integration door's `external_user_id`);
    /// a widget user is known from the context.
    pub end_user: Option<&'a str>,
}

/// An admitted request: the standings to tell the client, and the tokens it reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub standings: Standings,
    pub reservation: TokenReservation,
}

/// The tokens an admission reserved, and from which buckets: what [`settle_tokens`] needs to correct it
/// once the run's usage is known. Serialisable, so it can be kept with the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenReservation {
    pub tenant_id: TenantId,
    pub estimated: u64,
    pub buckets: Vec<ReservedBucket>,
}

/// A tokens-per-minute bucket an admission took from, with the limit it had then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedBucket {
    pub scope: LimitScope,
    pub subject: String,
    pub tokens_per_minute: u64,
}

/// Admits a request that would start a run, or refuses it: `Limited` (a rate limit, with which one and
/// when to try again) or `TooManyRuns`. Admitting takes one request and the estimated tokens from every
/// limit that applies: the API key's (when a key acts), the tenant's, and the end user's (a widget user,
/// or the end user the request names), each the tenant's own setting or else the operator's default.
pub async fn admit(pool: &PgPool, context: &TenantContext, demand: &Demand<'_>) -> Result<Admission, RateLimitError> {
    let estimated = estimate_tokens(demand.prompt, demand.max_output_tokens).await;
    let operator = operator_limits();
    let ask = store::Ask {
        api_key: context.actor().api_key_id(),
        widget_user: context.end_user(),
        external_user: demand.end_user,
        tokens: estimated,
        defaults: operator,
    };
    let tenant_id = context.tenant_id();
    let checked = store::admit(pool, tenant_id, &ask, operator.max_concurrent_runs_per_tenant).await?;
    match decide(&checked, tenant_id, estimated, operator.max_concurrent_runs_per_tenant) {
        Decision::Admitted(admission) => Ok(admission),
        Decision::TooManyRuns(refusal) => Err(RateLimitError::TooManyRuns(Box::new(refusal))),
        Decision::Refused(refusal) => Err(RateLimitError::Limited(Box::new(refusal))),
    }
}

/// Corrects a reservation once the run's real usage is known, in a transaction of its own: tokens
/// reserved and not used go back to every bucket they came from; tokens used beyond the estimate are
/// taken too (a bucket may then be over its limit for a while, and refuses until it has refilled).
pub async fn settle_tokens(
    pool: &PgPool,
    reservation: &TokenReservation,
    actual_tokens: u64,
) -> Result<(), sqlx::Error> {
    shift_buckets(pool, reservation.tenant_id, &settlement(reservation, actual_tokens)).await
}

/// Moves the tenant's buckets by `shifts` in a transaction of its own. Like the admission, it does not
/// wait for the disk: a PostgreSQL crash in that moment leaves the buckets as they were, set right by
/// their refill within the minute.
async fn shift_buckets(pool: &PgPool, tenant_id: TenantId, shifts: &[Shift]) -> Result<(), sqlx::Error> {
    if shifts.is_empty() {
        return Ok(());
    }
    let mut transaction = db::begin_tenant_without_waiting_for_disk(pool, tenant_id).await?;
    store::shift(&mut transaction, tenant_id, shifts).await?;
    transaction.commit().await
}

fn settlement(reservation: &TokenReservation, actual_tokens: u64) -> Vec<Shift> {
    let difference = i128::from(actual_tokens) - i128::from(reservation.estimated);
    if difference == 0 {
        return Vec::new();
    }
    reservation
        .buckets
        .iter()
        .map(|bucket| Shift {
            scope: bucket.scope,
            subject: bucket.subject.clone(),
            kind: LimitKind::Tokens,
            micros: micros_for(difference, bucket.tokens_per_minute),
        })
        .collect()
}

/// `units` of a limit of `per_minute` as time, in microseconds (what GCRA adds to `tat`), at most a day
/// either way: a bucket a day over its limit is as shut as one a year over, and stays a valid timestamp.
fn micros_for(units: i128, per_minute: u64) -> i64 {
    const DAY: i128 = 24 * 60 * WINDOW_MICROS as i128;
    let micros = (units * i128::from(WINDOW_MICROS) / i128::from(per_minute.max(1))).clamp(-DAY, DAY);
    i64::try_from(micros).expect("a day of microseconds fits in an i64")
}

/// The tokens a request is estimated to use: its prompt as sent (each text counted with
/// [`crate::tokens::count`], plus the per-message overhead), and the output ceiling it asked for, else
/// [`DEFAULT_OUTPUT_TOKENS`]. Long prompts are counted on the blocking pool, not on the request's task.
pub async fn estimate_tokens(prompt: &[&str], max_output_tokens: Option<u32>) -> u64 {
    let bytes: usize = prompt.iter().map(|text| text.len()).sum();
    let counted = if bytes <= COUNT_INLINE_BYTES {
        count_prompt(prompt)
    } else {
        let owned: Vec<String> = prompt.iter().map(|text| (*text).to_owned()).collect();
        // Only a panic in the counter fails this; the byte count is then a generous stand-in.
        crate::background::cpu_bound(move || count_prompt(&owned))
            .await
            .unwrap_or_else(|_| u64::try_from(bytes).unwrap_or(u64::MAX))
    };
    counted.saturating_add(max_output_tokens.map_or(DEFAULT_OUTPUT_TOKENS, u64::from))
}

fn count_prompt(prompt: &[impl AsRef<str>]) -> u64 {
    let tokens: usize =
        prompt.iter().map(|text| crate::tokens::count(text.as_ref()) + crate::tokens::PER_MESSAGE_OVERHEAD).sum();
    u64::try_from(tokens).unwrap_or(u64::MAX)
}

/// One bucket of the admission's answer, with its names understood.
struct Bucket<'a> {
    scope: LimitScope,
    subject: &'a str,
    kind: LimitKind,
    per_minute: u64,
    cost: u64,
    step: i64,
    /// How far ahead of now the bucket's state was, before this request (0: full).
    backlog_seen: i64,
    /// How far ahead it is after this request took its share, if it did.
    backlog_taken: Option<i64>,
}

impl<'a> Bucket<'a> {
    fn of(checked: &'a CheckedBucket, now: DateTime<Utc>) -> Option<Self> {
        let backlog = |tat: DateTime<Utc>| (tat - now).num_microseconds().unwrap_or(i64::MAX).max(0);
        Some(Self {
            scope: LimitScope::parse(&checked.scope)?,
            subject: &checked.subject,
            kind: LimitKind::parse(&checked.kind)?,
            per_minute: u64::try_from(checked.per_minute).ok()?,
            cost: u64::try_from(checked.cost).ok()?,
            step: checked.step_us,
            backlog_seen: checked.seen_tat.map_or(0, backlog),
            backlog_taken: checked.taken_tat.map(backlog),
        })
    }

    /// How long until the request would fit, as the snapshot saw the bucket (`Some(ZERO)`: it fitted;
    /// `None`: it never fits).
    fn wait(&self) -> Option<Duration> {
        if self.step > WINDOW_MICROS {
            return None;
        }
        let wait = self.backlog_seen.saturating_add(self.step) - WINDOW_MICROS;
        Some(Duration::from_micros(u64::try_from(wait).unwrap_or(0)))
    }

    fn standing(&self, backlog: i64) -> Standing {
        let free = i128::from((WINDOW_MICROS - backlog).max(0));
        let remaining = free * i128::from(self.per_minute) / i128::from(WINDOW_MICROS);
        Standing {
            scope: self.scope,
            limit: self.per_minute,
            remaining: u64::try_from(remaining).unwrap_or(0).min(self.per_minute),
            reset: Duration::from_micros(u64::try_from(backlog).unwrap_or(0)),
        }
    }
}

/// The tightest of each kind: the fewest remaining, then the longest to reset.
fn tightest<'a>(buckets: impl Iterator<Item = (&'a Bucket<'a>, i64)>) -> Standings {
    let mut standings = Standings::default();
    for (bucket, backlog) in buckets {
        let standing = bucket.standing(backlog);
        let slot = match bucket.kind {
            LimitKind::Requests => &mut standings.requests,
            LimitKind::Tokens => &mut standings.tokens,
        };
        let tighter = slot.is_none_or(|held| (standing.remaining, held.reset) < (held.remaining, standing.reset));
        if tighter {
            *slot = Some(standing);
        }
    }
    standings
}

enum Decision {
    Admitted(Admission),
    Refused(Refusal),
    TooManyRuns(RunsRefusal),
}

/// Reads the admission statement's answer: admitted when every bucket took its share (the statement
/// takes from all or none); otherwise the refusal names the limit that is furthest from fitting.
fn decide(checked: &store::Checked, tenant_id: TenantId, estimated: u64, max_running: u64) -> Decision {
    let buckets: Vec<Bucket<'_>> =
        checked.buckets.iter().filter_map(|bucket| Bucket::of(bucket, checked.now)).collect();
    let seen = || tightest(buckets.iter().map(|bucket| (bucket, bucket.backlog_seen)));
    let running = u64::try_from(checked.running).unwrap_or(0);
    if running >= max_running {
        return Decision::TooManyRuns(RunsRefusal { running, cap: max_running, standings: seen() });
    }
    if buckets.iter().all(|bucket| bucket.backlog_taken.is_some()) {
        let after = tightest(buckets.iter().map(|bucket| (bucket, bucket.backlog_taken.unwrap_or(0))));
        let reservation = TokenReservation {
            tenant_id,
            estimated,
            buckets: buckets
                .iter()
                .filter(|bucket| bucket.kind == LimitKind::Tokens)
                .map(|bucket| ReservedBucket {
                    scope: bucket.scope,
                    subject: bucket.subject.to_owned(),
                    tokens_per_minute: bucket.per_minute,
                })
                .collect(),
        };
        return Decision::Admitted(Admission { standings: after, reservation });
    }
    // Refused by the buckets that took nothing; of those, the one the client must wait for longest.
    let refused = buckets
        .iter()
        .filter(|bucket| bucket.backlog_taken.is_none())
        .max_by_key(|bucket| bucket.wait().unwrap_or(Duration::MAX))
        .expect("a refused admission has a bucket that took nothing");
    let refusal = Refusal {
        scope: refused.scope,
        kind: refused.kind,
        limit: refused.per_minute,
        // The statement caps the cost it computes with; the client is told the estimate itself.
        requested: if refused.kind == LimitKind::Tokens { estimated } else { refused.cost },
        // A bucket that fits as the statement last saw it lost a race for its last share: soon, then.
        retry_after: refused.wait().map(|wait| wait.max(Duration::from_secs(1))),
        at: checked.now,
        standings: seen(),
    };
    Decision::Refused(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket of the statement's answer: scope, kind, limit, cost, and its state before and after (µs from now).
    type Row = (&'static str, &'static str, i64, i64, Option<i64>, Option<i64>);

    fn checked(running: i64, buckets: &[Row]) -> store::Checked {
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let at = |micros: Option<i64>| micros.map(|micros| now + chrono::Duration::microseconds(micros));
        store::Checked {
            now,
            running,
            buckets: buckets
                .iter()
                .map(|&(scope, kind, per_minute, cost, seen, taken)| CheckedBucket {
                    scope: scope.to_owned(),
                    subject: String::new(),
                    kind: kind.to_owned(),
                    per_minute,
                    cost,
                    step_us: cost * WINDOW_MICROS / per_minute,
                    seen_tat: at(seen),
                    taken_tat: at(taken),
                })
                .collect(),
        }
    }

    #[test]
    fn an_admission_reports_the_tightest_limit_of_each_kind_after_the_request() {
        // Two requests a minute (30 s each), untouched: one left after this one, whole again in 30 s.
        // Tokens: this request took 100 of the key's 1,000 a minute, and of the tenant's 100,000, whose
        // bucket was 50 s from full.
        let answer = checked(
            0,
            &[
                ("tenant", "requests", 2, 1, None, Some(30_000_000)),
                ("api_key", "tokens", 1000, 100, Some(-5_000_000), Some(6_000_000)),
                ("tenant", "tokens", 100_000, 100, Some(50_000_000), Some(50_060_000)),
            ],
        );
        let Decision::Admitted(admission) = decide(&answer, TenantId::new(), 100, 50) else { panic!("refused") };
        let requests = admission.standings.requests.unwrap();
        assert_eq!((requests.limit, requests.remaining, requests.reset), (2, 1, Duration::from_secs(30)));
        let tokens = admission.standings.tokens.unwrap();
        // The key's 900 left are fewer than the tenant's 16,566: the key's limit is the one to tell.
        assert_eq!((tokens.scope, tokens.limit, tokens.remaining), (LimitScope::ApiKey, 1000, 900));
        assert_eq!(tokens.reset, Duration::from_secs(6));
        assert_eq!(admission.reservation.buckets.len(), 2);
        assert_eq!(admission.reservation.estimated, 100);
    }

    #[test]
    fn a_refusal_names_the_limit_to_wait_for_and_a_lost_race_asks_for_a_second() {
        // The key's requests are used up (60 s ahead, 30 s a request): 30 s to wait. The tenant's tokens
        // would fit, but the statement takes from all buckets or none.
        let answer = checked(
            3,
            &[("api_key", "requests", 2, 1, Some(60_000_000), None), ("tenant", "tokens", 1000, 10, None, None)],
        );
        let Decision::Refused(refusal) = decide(&answer, TenantId::new(), 10, 50) else { panic!("admitted") };
        assert_eq!((refusal.scope, refusal.kind, refusal.limit), (LimitScope::ApiKey, LimitKind::Requests, 2));
        assert_eq!(refusal.retry_after, Some(Duration::from_secs(30)));
        assert_eq!(refusal.retry_after_seconds(), 30);
        assert_eq!(refusal.standings.requests.unwrap().remaining, 0);
        assert!(refusal.to_string().contains("this API key's limit of 2 requests per minute"), "{refusal}");

        // Every bucket fits as last seen, yet none was taken: another admission took the last share first.
        let raced = checked(0, &[("tenant", "requests", 2, 1, Some(20_000_000), None)]);
        let Decision::Refused(refusal) = decide(&raced, TenantId::new(), 1, 50) else { panic!("admitted") };
        assert_eq!(refusal.retry_after_seconds(), 1);
    }

    #[test]
    fn a_request_larger_than_a_limit_never_fits_and_the_run_cap_comes_first() {
        let answer = checked(0, &[("end_user", "tokens", 1000, 1500, None, None)]);
        let Decision::Refused(refusal) = decide(&answer, TenantId::new(), 1500, 50) else { panic!() };
        assert_eq!((refusal.retry_after, refusal.retry_after_seconds()), (None, 60));
        assert!(refusal.to_string().contains("1500 tokens are more than this end user's limit"), "{refusal}");

        let full = checked(50, &[("tenant", "requests", 10, 1, None, None)]);
        assert!(matches!(
            decide(&full, TenantId::new(), 1, 50),
            Decision::TooManyRuns(RunsRefusal { running: 50, cap: 50, .. })
        ));
    }

    #[test]
    fn settling_moves_every_reserved_bucket_by_the_difference() {
        let reservation = TokenReservation {
            tenant_id: TenantId::new(),
            estimated: 1100,
            buckets: vec![ReservedBucket {
                scope: LimitScope::Tenant,
                subject: String::new(),
                tokens_per_minute: 2000,
            }],
        };
        let back = settlement(&reservation, 100);
        assert_eq!(back[0].micros, -30_000_000, "1,000 tokens of 2,000 a minute are 30 s");
        assert_eq!(settlement(&reservation, 1500)[0].micros, 12_000_000);
        assert!(settlement(&reservation, 1100).is_empty());
    }
}
