//! What the budget and rate-limit checks add to a turn. Two tenants on the fast mock: one with no budget
//! and no rate limit of its own, one under every budget a `/v1` call can be under (the tenant's, and its
//! key's own) and every rate limit (the tenant's and the key's, requests and tokens), all too high ever
//! to refuse. Measured two ways:
//!
//! - end to end: the same non-streamed `/v1/chat/completions`, one at a time, to each tenant in turn
//!   (interleaved, so drift in the machine falls on both alike); the difference of their percentiles;
//! - the checks alone: the library's own calls, as a turn makes them, on the bench's database as the
//!   application role: admission (one statement, its own transaction), the budgets read and checked at
//!   the start (inside the turn's first transaction), the reservation (one statement, its own
//!   transaction), the usage record (inside the record's transaction; under budgets, the settlement is
//!   in the same statement), the two tenants in turn, round by round. Statements inside a transaction
//!   the turn opens anyway are timed without that transaction's begin and commit. The token settlement
//!   (its own transaction, once the run's end is published: on nobody's path) is timed apart and not
//!   counted in a turn's checks. The rounds are summed two ways: all one after the other (a call that
//!   reserves just before it is made), and without the reservation (a pass-through turn's first call,
//!   reserved on a second connection beside the statements that record the turn's start: hidden when
//!   those take longer, which only the end-to-end figure shows).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use switchboard::audit::Recorder;
use switchboard::auth::context::TenantContext;
use switchboard::budgets::{Payer, RunBudgets};
use switchboard::db;
use switchboard::ids::RunId;
use switchboard::rate_limits::{self, Demand, MAX_PER_MINUTE};
use switchboard::tokens::TokenUsage;
use switchboard::usage::{self, TokenSource, UsageEntry};

use crate::env::{Mock, Service, Tenant};
use crate::load::{self, Outcome, Percentiles, Summary};

/// The prompt of every request, and what the direct checks estimate tokens from.
const SYSTEM: &str = "You are a terse assistant.";
const QUESTION: &str = "Say something about latency, please.";
/// Tokens the direct checks settle, fewer than the estimate (as a real answer's are), so the token
/// settlement has buckets to correct.
const USED_TOKENS: u64 = 40;

pub struct Plan {
    /// Requests to each tenant, end to end.
    pub requests: usize,
    /// Rounds of the checks alone, for each tenant.
    pub rounds: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// Without and with the checks, end to end.
    pub end_to_end: Vec<EndToEnd>,
    /// Total latency with the checks minus without, percentile by percentile.
    pub added_end_to_end_ms: Option<Percentiles>,
    /// Without and with the checks, the checks alone.
    pub direct: Vec<Direct>,
    /// All the checks of a turn with budgets and limits set minus without, percentile by percentile.
    pub added_direct_ms: Option<Percentiles>,
    /// The same, with the reservation beside the start.
    pub added_beside_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndToEnd {
    pub checks: &'static str,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Direct {
    pub checks: &'static str,
    pub rounds: usize,
    pub admission_ms: Option<Percentiles>,
    pub budgets_at_start_ms: Option<Percentiles>,
    pub reservation_ms: Option<Percentiles>,
    pub settlement_ms: Option<Percentiles>,
    /// Off the turn's path: after its end is published.
    pub token_settlement_ms: Option<Percentiles>,
    /// The four together, per round, one after the other: what a turn waits for when its reservation
    /// is made just before its model call (an assistant turn's, or a call after a tool step).
    pub all_ms: Option<Percentiles>,
    /// Admission, budgets at start and settlement, per round: what a pass-through turn waits for when
    /// its reservation is made beside the statements that record its start (on a second connection),
    /// and those take longer.
    pub beside_ms: Option<Percentiles>,
}

pub async fn run(
    client: &reqwest::Client,
    service: &Service,
    mock: &Mock,
    app: &sqlx::PgPool,
    owner: &sqlx::PgPool,
    plan: &Plan,
) -> anyhow::Result<Checks> {
    let off = Tenant::create(client, service, "checks-off", mock).await?;
    let on = Tenant::create(client, service, "checks-on", mock).await?;
    let on = put_checks(client, service, &on).await?;

    let url = format!("{}/v1/chat/completions", service.base);
    let body = json!({
        "model": "bench-model",
        "messages": [{ "role": "system", "content": SYSTEM }, { "role": "user", "content": QUESTION }],
    });
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let started = tokio::time::Instant::now();
    for i in 0..plan.requests * 2 {
        let (key, outcomes): (&str, &mut Vec<Outcome>) =
            if i % 2 == 0 { (&off.key, &mut without) } else { (&on.key, &mut with) };
        let request = client.post(&url).bearer_auth(key).json(&body);
        outcomes.push(load::send(request, tokio::time::Instant::now(), None).await);
    }
    let elapsed = started.elapsed();
    let end_to_end = vec![
        EndToEnd { checks: "none set", summary: Summary::of(&without, elapsed) },
        EndToEnd { checks: "all set", summary: Summary::of(&with, elapsed) },
    ];
    let added_end_to_end_ms =
        end_to_end[1].summary.total_ms.zip(end_to_end[0].summary.total_ms).map(|(a, b)| a.minus(b));
    for side in &end_to_end {
        eprintln!(
            "  checks {:<9} end to end: total p50 {:>6.2} ms, p99 {:>6.2} ms, errors {}",
            side.checks,
            side.summary.total_ms.map_or(f64::NAN, |p| p.p50),
            side.summary.total_ms.map_or(f64::NAN, |p| p.p99),
            side.summary.errors
        );
    }

    let direct =
        measure(app, owner, [("none set", &off, "checks-off"), ("all set", &on, "checks-on")], plan.rounds).await?;
    for measured in &direct {
        eprintln!(
            "  checks {:<9} alone: p50 {:>6.3} ms, p99 {:>6.3} ms",
            measured.checks,
            measured.all_ms.map_or(f64::NAN, |p| p.p50),
            measured.all_ms.map_or(f64::NAN, |p| p.p99)
        );
    }
    let added_direct_ms = direct[1].all_ms.zip(direct[0].all_ms).map(|(a, b)| a.minus(b));
    let added_beside_ms = direct[1].beside_ms.zip(direct[0].beside_ms).map(|(a, b)| a.minus(b));
    Ok(Checks { end_to_end, added_end_to_end_ms, direct, added_direct_ms, added_beside_ms })
}

/// Sets the tenant's budgets and rate limits, and makes the key that acts with a budget and limits of its
/// own; every one the largest the API takes.
async fn put_checks(client: &reqwest::Client, service: &Service, admin: &Tenant) -> anyhow::Result<Tenant> {
    let api = |path: &str| format!("{}/api/v1{path}", service.base);
    let most_usd = json!("99999999");
    let limits = json!({ "requests_per_minute": MAX_PER_MINUTE, "tokens_per_minute": MAX_PER_MINUTE });
    client
        .patch(api("/tenant/config"))
        .bearer_auth(&admin.key)
        .json(&json!({ "monthly_budget_usd": 99_999_999, "key_monthly_budget_usd": 99_999_999 }))
        .send()
        .await?
        .error_for_status()?;
    client
        .put(api("/rate-limits"))
        .bearer_auth(&admin.key)
        .json(&json!({ "tenant": limits, "end_user": limits }))
        .send()
        .await?
        .error_for_status()?;
    let key: Value = client
        .post(api("/api-keys"))
        .bearer_auth(&admin.key)
        .json(&json!({ "name": "budgeted", "scopes": ["admin", "chat", "runs"], "monthly_budget_usd": most_usd }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = key["id"].as_str().context("key id")?;
    client
        .put(api(&format!("/api-keys/{id}/rate-limits")))
        .bearer_auth(&admin.key)
        .json(&limits)
        .send()
        .await?
        .error_for_status()?;
    Ok(Tenant { key: key["key"].as_str().context("key token")?.to_owned() })
}

/// Times `rounds` turns' worth of checks for each tenant (whose key is `tenant.key`), each round against
/// a run of its own (a reservation names a run that exists); the tenants take turns, round by round, so
/// drift in the machine falls on both alike.
async fn measure(
    app: &sqlx::PgPool,
    owner: &sqlx::PgPool,
    tenants: [(&'static str, &Tenant, &str); 2],
    rounds: usize,
) -> anyhow::Result<Vec<Direct>> {
    let mut sides = Vec::new();
    for (checks, tenant, slug) in tenants {
        let context = switchboard::auth::authenticate_api_key(app, &tenant.key, None).await?;
        sides.push((checks, context, runs_of(owner, slug, rounds).await?, Times::default()));
    }
    for round in 0..rounds {
        for (_, context, runs, times) in &mut sides {
            one_turn(app, context, runs[round], times).await?;
        }
    }
    Ok(sides
        .into_iter()
        .map(|(checks, _, _, mut times)| Direct {
            checks,
            rounds,
            admission_ms: Percentiles::of(&mut times.admission),
            budgets_at_start_ms: Percentiles::of(&mut times.budgets_at_start),
            reservation_ms: Percentiles::of(&mut times.reservation),
            settlement_ms: Percentiles::of(&mut times.settlement),
            token_settlement_ms: Percentiles::of(&mut times.token_settlement),
            all_ms: Percentiles::of(&mut times.all),
            beside_ms: Percentiles::of(&mut times.beside),
        })
        .collect())
}

/// `count` runs of the tenant, one for each round, as every turn has its own: copies of one the
/// end-to-end requests made, ended as it is. Made before the rounds, and not timed. One run for every
/// round would pile the rounds' deleted reservations onto one key of the index that settlements look
/// reservations up by, which no real run does.
async fn runs_of(owner: &sqlx::PgPool, slug: &str, count: usize) -> anyhow::Result<Vec<RunId>> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "WITH one AS ( \
             SELECT to_jsonb(runs) AS run FROM runs JOIN tenants ON tenants.id = runs.tenant_id \
             WHERE tenants.slug = $1 LIMIT 1) \
         INSERT INTO runs \
         SELECT (jsonb_populate_record(NULL::runs, one.run || jsonb_build_object('id', uuidv7()))).* \
         FROM one, generate_series(1, $2) \
         RETURNING id",
    )
    .bind(slug)
    .bind(i32::try_from(count).context("rounds")?)
    .fetch_all(owner)
    .await
    .context("runs of the tenant (copies of one the end-to-end requests made)")?;
    anyhow::ensure!(ids.len() == count, "the tenant {slug} has no run to copy");
    Ok(ids.into_iter().map(RunId).collect())
}

#[derive(Default)]
struct Times {
    admission: Vec<Duration>,
    budgets_at_start: Vec<Duration>,
    reservation: Vec<Duration>,
    settlement: Vec<Duration>,
    token_settlement: Vec<Duration>,
    all: Vec<Duration>,
    beside: Vec<Duration>,
}

/// The checks of one turn, in the order and the transactions a turn makes them in. Amounts are zero:
/// the statements are the same whatever the amount, and no round moves a budget towards a threshold.
async fn one_turn(app: &sqlx::PgPool, context: &TenantContext, run_id: RunId, times: &mut Times) -> anyhow::Result<()> {
    let tenant_id = context.tenant_id();
    let prompt = [SYSTEM, QUESTION];
    let demand = Demand { prompt: &prompt, max_output_tokens: None, end_user: None };

    let started = Instant::now();
    let admission = rate_limits::admit(app, context, &demand).await?;
    let admission_took = started.elapsed();

    let mut transaction = db::begin_tenant(app, tenant_id).await?;
    let started = Instant::now();
    let payer = Payer { run_id, api_key_id: context.actor().api_key_id(), end_user: None, agent_run: false };
    let budgets = RunBudgets::of(&mut transaction, payer).await?;
    budgets.check_open()?;
    let at_start_took = started.elapsed();
    transaction.commit().await?;

    let started = Instant::now();
    budgets.reserve(app, tenant_id, run_id, Decimal::ZERO).await??;
    let reservation_took = started.elapsed();

    let by = Recorder {
        tenant_id,
        actor_type: context.actor().kind(),
        actor_id: context.actor().id(),
        request_id: None,
        trace_id: None,
    };
    let entry = UsageEntry {
        operation: usage::Operation::Chat,
        run_id: Some(run_id),
        api_key_id: context.actor().api_key_id(),
        end_user: None,
        provider: "openai",
        model: "bench-model",
        tokens: TokenUsage::new(USED_TOKENS / 2, USED_TOKENS / 2),
        cost_usd: Some(Decimal::ZERO),
        source: TokenSource::Provider,
        is_byok: false,
        trace_id: None,
    };
    let mut transaction = db::begin_tenant(app, tenant_id).await?;
    let started = Instant::now();
    // As a turn records its usage: with the settlement in the same statement when it is under budgets.
    usage::record_settling(&mut transaction, &entry, &budgets, &by, run_id).await?;
    let settlement_took = started.elapsed();
    transaction.commit().await?;
    let started = Instant::now();
    rate_limits::settle_tokens(app, &admission.reservation, USED_TOKENS).await?;
    let token_settlement_took = started.elapsed();

    times.admission.push(admission_took);
    times.budgets_at_start.push(at_start_took);
    times.reservation.push(reservation_took);
    times.settlement.push(settlement_took);
    times.token_settlement.push(token_settlement_took);
    times.all.push(admission_took + at_start_took + reservation_took + settlement_took);
    times.beside.push(admission_took + at_start_took + settlement_took);
    Ok(())
}
