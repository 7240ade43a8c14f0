//! SQL for runs and their events; every function runs inside a tenant-bound transaction.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{ExecutorId, Run, RunKind, RunStatus};
use crate::ids::{RunId, SessionId, TenantId};
use crate::providers::FinishReason;
use crate::rate_limits::TokenReservation;
use crate::runs::coalesce::{self, Deltas, Entry};
use crate::runs::events::{EventKind, RunEvent};

const RUN_COLUMNS: &str = "id, session_id, kind, status, provider, model, is_byok, error_code, error_message, \
     finish_reason, request_id, trace_id, collection_ids, prompt_template, prompt_version, first_token_ms, latency_ms, \
     created_at, finished_at";

#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub id: RunId,
    pub session_id: Option<SessionId>,
    pub kind: RunKind,
    pub provider: &'a str,
    pub model: &'a str,
    pub is_byok: bool,
    pub request_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub executor: ExecutorId,
    /// The collections the run may search (`None`: all of the tenant's).
    pub collection_ids: Option<Vec<uuid::Uuid>>,
    /// Event numbers reserved from the start (see [`reserve_seq`]), so that the start needs no statement
    /// of its own for them.
    pub reserved_seq: i64,
    /// The request a door keeps on the run (the Responses API's, which a later response continues).
    pub request: Option<&'a serde_json::Value>,
}

pub async fn insert(connection: &mut PgConnection, tenant_id: TenantId, run: &NewRun<'_>) -> Result<Run, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO runs (id, tenant_id, session_id, kind, status, provider, model, is_byok, request_id, trace_id, \
         executor, collection_ids, reserved_seq, request) ",
    );
    query.push_values([run], |mut row, run| {
        row.push_bind(run.id)
            .push_bind(tenant_id)
            .push_bind(run.session_id)
            .push_bind(run.kind)
            .push_bind(RunStatus::Running)
            .push_bind(run.provider)
            .push_bind(run.model)
            .push_bind(run.is_byok)
            .push_bind(run.request_id)
            .push_bind(run.trace_id)
            .push_bind(run.executor)
            .push_bind(&run.collection_ids)
            .push_bind(run.reserved_seq)
            .push_bind(run.request);
    });
    query.push(" RETURNING ").push(RUN_COLUMNS);
    query.build_query_as().fetch_one(connection).await
}

pub async fn get(connection: &mut PgConnection, id: RunId) -> Result<Option<Run>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query.push(RUN_COLUMNS).push(" FROM runs WHERE id = ").push_bind(id);
    query.build_query_as().fetch_optional(connection).await
}

/// Records the system prompt template a run's turn was built with (`prompts::tenant::for_turn`).
pub async fn set_prompt(
    connection: &mut PgConnection,
    id: RunId,
    template: &str,
    version: Option<i32>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET prompt_template = $2, prompt_version = $3 WHERE id = $1")
        .bind(id)
        .bind(template)
        .bind(version)
        .execute(connection)
        .await?;
    Ok(())
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome<'a> {
    pub status: RunStatus,
    pub error: Option<(&'a str, &'a str)>,
    pub finish_reason: Option<FinishReason>,
    pub provider: &'a str,
    pub model: &'a str,
    pub first_token_ms: Option<i32>,
    pub latency_ms: i32,
    /// The last sequence number its executor used, when it closes the run in order: what it reserved
    /// beyond is given back, so that an event appended after the end follows without a gap.
    pub last_seq: Option<i64>,
}

/// Records the end of a run, once, and returns it as it ended: a run already ended is left as it is (none).
pub async fn finish(
    connection: &mut PgConnection,
    id: RunId,
    outcome: &RunOutcome<'_>,
) -> Result<Option<Run>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "UPDATE runs SET status = $2, error_code = $3, error_message = $4, provider = $5, model = $6, \
         first_token_ms = $7, latency_ms = $8, finish_reason = $9, finished_at = now(), \
         reserved_seq = coalesce($10, reserved_seq) \
         WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled') RETURNING ",
    );
    query.push(RUN_COLUMNS);
    query
        .build_query_as()
        .bind(id)
        .bind(outcome.status)
        .bind(outcome.error.map(|(code, _)| code))
        .bind(outcome.error.map(|(_, message)| message))
        .bind(outcome.provider)
        .bind(outcome.model)
        .bind(outcome.first_token_ms)
        .bind(outcome.latency_ms)
        .bind(outcome.finish_reason)
        .bind(outcome.last_seq)
        .fetch_optional(connection)
        .await
}

pub async fn insert_events(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    events: &[RunEvent],
) -> Result<(), sqlx::Error> {
    let entries: Vec<Entry> = events.iter().cloned().map(Entry::Event).collect();
    insert_entries(connection, tenant_id, &entries).await?;
    let runs: std::collections::BTreeSet<RunId> = events.iter().map(|event| event.run_id).collect();
    notify_events(connection, &runs.into_iter().collect::<Vec<_>>()).await
}

/// Writes events and joined deltas (one row each), without notifying anyone: the caller does, once.
pub async fn insert_entries(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    entries: &[Entry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO run_events (tenant_id, run_id, seq, event_type, data, delta_pieces) ",
    );
    query.push_values(entries, |mut row, entry| {
        row.push_bind(tenant_id);
        match entry {
            Entry::Event(event) => row
                .push_bind(event.run_id)
                .push_bind(event.seq)
                .push_bind(event.kind.name())
                .push_bind(sqlx::types::Json(&event.kind))
                .push_bind(None::<Vec<i32>>),
            Entry::Deltas(deltas) => {
                let joined = EventKind::MessageDelta { text: deltas.text.clone() };
                row.push_bind(deltas.run_id)
                    .push_bind(deltas.last_seq())
                    .push_bind(joined.name())
                    .push_bind(sqlx::types::Json(joined))
                    .push_bind(Some(deltas.piece_lengths()))
            }
        };
    });
    // A batch whose commit was acknowledged nowhere (the connection broke at that moment) may be
    // written already: the same rows again are no conflict, and readers skip what overlaps.
    query.push(" ON CONFLICT (run_id, seq) DO NOTHING");
    query.build().execute(&mut *connection).await?;
    Ok(())
}

/// Tells the followers of each run, in every process, that it has new events (at commit).
pub async fn notify_events(connection: &mut PgConnection, runs: &[RunId]) -> Result<(), sqlx::Error> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = runs.iter().map(ToString::to_string).collect();
    sqlx::query("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id")
        .bind(EVENTS_CHANNEL)
        .bind(ids)
        .execute(connection)
        .await?;
    Ok(())
}

/// Followers in other processes learn of a run's new events on this channel (the payload: its id).
pub const EVENTS_CHANNEL: &str = "switchboard_run_events";
/// The process executing a run cancels it when its id arrives on this channel.
pub const CANCEL_CHANNEL: &str = "switchboard_run_cancel";
/// Every process's workers look for queued agent runs when this channel speaks.
pub const QUEUED_CHANNEL: &str = "switchboard_agent_queued";

/// Tells every listening process about `run_id` on `channel`, when the transaction commits (at once
/// outside one). PostgreSQL folds the same notice sent twice in a transaction into one.
pub async fn notify(connection: &mut PgConnection, channel: &str, run_id: RunId) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(run_id.to_string()).execute(connection).await?;
    Ok(())
}

/// Wakes the agent-run workers of every process, when the transaction commits.
pub async fn notify_queued(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')").bind(QUEUED_CHANNEL).execute(connection).await?;
    Ok(())
}

/// The process executing the run, if any, and whether it is alive (holds its executor lock).
pub async fn executor(connection: &mut PgConnection, id: RunId) -> Result<Option<(ExecutorId, bool)>, sqlx::Error> {
    let row: Option<(Option<ExecutorId>, bool)> =
        sqlx::query_as("SELECT executor, executor IS NOT NULL AND executor_alive(executor) FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(connection)
            .await?;
    Ok(row.and_then(|(executor, alive)| executor.map(|executor| (executor, alive))))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    run_id: RunId,
    seq: i64,
    data: sqlx::types::Json<EventKind>,
    delta_pieces: Option<Vec<i32>>,
}

impl EventRow {
    fn into_entry(self) -> Result<Entry, sqlx::Error> {
        match (self.data.0, self.delta_pieces) {
            (EventKind::MessageDelta { text }, Some(pieces)) => {
                let deltas = Deltas::from_stored(self.run_id, self.seq, text, &pieces)
                    .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
                Ok(Entry::Deltas(deltas))
            }
            (kind, _) => Ok(Entry::Event(RunEvent { run_id: self.run_id, seq: self.seq, kind })),
        }
    }
}

/// The run's events numbered after `after`, one by one (joined deltas given back piece by piece).
pub async fn events_after(
    connection: &mut PgConnection,
    run_id: RunId,
    after: i64,
) -> Result<Vec<RunEvent>, sqlx::Error> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT run_id, seq, data, delta_pieces FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(run_id)
    .bind(after)
    .fetch_all(connection)
    .await?;
    let entries = rows.into_iter().map(EventRow::into_entry).collect::<Result<Vec<_>, _>>()?;
    Ok(coalesce::expand(entries, after))
}

/// The next sequence number for a run whose events are only in the database.
/// The last sequence number the run may have used: its last stored event, or beyond that what its
/// executor reserved before publishing (events a follower may have seen that were never written).
pub async fn last_seq(connection: &mut PgConnection, run_id: RunId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT GREATEST((SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = $1), \
                         (SELECT coalesce(max(reserved_seq), 0) FROM runs WHERE id = $1))",
    )
    .bind(run_id)
    .fetch_one(connection)
    .await
}

/// Appends an event to a run that has ended (a reviewer's decision on its changeset), numbered after
/// everything the run used or reserved; a run still going is left alone (returns `None`: it numbers its own
/// events). The run's row is locked first, so appends queue and each statement after sees the one before.
pub async fn append_event_after_end(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
    kind: &EventKind,
) -> Result<Option<i64>, sqlx::Error> {
    let ended: Option<bool> =
        sqlx::query_scalar("SELECT status IN ('succeeded', 'failed', 'cancelled') FROM runs WHERE id = $1 FOR UPDATE")
            .bind(run_id)
            .fetch_optional(&mut *connection)
            .await?;
    if ended != Some(true) {
        return Ok(None);
    }
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO run_events (tenant_id, run_id, seq, event_type, data) \
         SELECT $1, $2, GREATEST((SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = $2), \
                                 (SELECT reserved_seq FROM runs WHERE id = $2)) + 1, $3, $4 \
         RETURNING seq",
    )
    .bind(tenant_id)
    .bind(run_id)
    .bind(kind.name())
    .bind(sqlx::types::Json(kind))
    .fetch_one(&mut *connection)
    .await?;
    notify(connection, EVENTS_CHANNEL, run_id).await?;
    Ok(Some(seq))
}

/// Reserves sequence numbers up to `through` before events numbered so are published.
pub async fn reserve_seq(connection: &mut PgConnection, run_id: RunId, through: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET reserved_seq = GREATEST(reserved_seq, $2) WHERE id = $1")
        .bind(run_id)
        .bind(through)
        .execute(connection)
        .await?;
    Ok(())
}

/// The text a run streamed, as far as its events were written (for the answer of a run whose process
/// died mid-way).
pub async fn streamed_text(connection: &mut PgConnection, run_id: RunId) -> Result<String, sqlx::Error> {
    let events = events_after(connection, run_id, 0).await?;
    Ok(events
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::MessageDelta { text } => Some(text),
            _ => None,
        })
        .collect())
}

/// Marks runs of the transaction's tenant as still being executed; returns those still open (a run
/// another process ended meanwhile is not, and its executor should stop).
pub async fn heartbeat_all(connection: &mut PgConnection, ids: &[RunId]) -> Result<Vec<RunId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE runs SET heartbeat_at = now() \
         WHERE id = ANY($1) AND status NOT IN ('succeeded', 'failed', 'cancelled') RETURNING id",
    )
    .bind(ids)
    .fetch_all(connection)
    .await
}

/// Unfinished runs, of any tenant, whose executor died (its lock is gone) or has not proved alive for
/// `stale_after`.
pub async fn stale(
    connection: &mut PgConnection,
    stale_after: std::time::Duration,
) -> Result<Vec<(RunId, TenantId)>, sqlx::Error> {
    sqlx::query("SELECT set_config('app.run_sweeper', 'on', true)").execute(&mut *connection).await?;
    let seconds = f64::from(u32::try_from(stale_after.as_secs()).unwrap_or(u32::MAX));
    let stale = sqlx::query_as(
        "SELECT id, tenant_id FROM runs WHERE (status = 'running' OR (status = 'queued' AND kind = 'chat')) \
         AND (heartbeat_at < now() - make_interval(secs => $1) \
              OR (status = 'running' AND executor IS NOT NULL AND executor <> ALL ((SELECT alive_executors())::bigint[]))) \
         LIMIT 100",
    )
    .bind(seconds)
    .fetch_all(&mut *connection)
    .await?;
    sqlx::query("SELECT set_config('app.run_sweeper', '', true)").execute(&mut *connection).await?;
    Ok(stale)
}

/// Takes the advisory lock that says the process with this executor number is alive, on a connection
/// kept for that alone (the lock lives as long as the connection).
pub async fn lock_executor(connection: &mut PgConnection, executor: ExecutorId) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock($1)").bind(executor).execute(connection).await?;
    Ok(())
}

/// The run, locked until the transaction ends.
pub async fn get_for_update(connection: &mut PgConnection, id: RunId) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// Pauses a run until a person decides its waiting tool calls; `state` is what resuming needs, and
/// `rate_reservation` the rate limits' buckets its steps after resuming are counted against.
pub async fn pause(
    connection: &mut PgConnection,
    id: RunId,
    state: &serde_json::Value,
    rate_reservation: Option<&TokenReservation>,
    last_seq: i64,
) -> Result<(), sqlx::Error> {
    // The sequence numbers reserved past the last event written are given back: the resumed run goes on
    // without a gap.
    sqlx::query(
        "UPDATE runs SET status = 'awaiting_approval', tool_state = $2, \
         rate_reservation = coalesce($3, rate_reservation), reserved_seq = $4 WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(state)
    .bind(rate_reservation.map(sqlx::types::Json))
    .bind(last_seq)
    .execute(connection)
    .await?;
    Ok(())
}

/// Takes a paused run back to `running` for the caller to resume, and returns its saved state. Exactly
/// one caller wins: another process deciding the same run at the same time gets `None`.
pub async fn claim_paused(
    connection: &mut PgConnection,
    id: RunId,
    executor: ExecutorId,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE runs SET status = 'running', heartbeat_at = now(), executor = $2 \
         WHERE id = $1 AND status = 'awaiting_approval' RETURNING tool_state",
    )
    .bind(id)
    .bind(executor)
    .fetch_optional(connection)
    .await
}

/// An agent run to queue on a workspace conversation.
#[derive(Debug, Clone)]
pub struct QueuedAgentRun<'a> {
    pub id: RunId,
    pub session_id: SessionId,
    pub workspace_id: crate::ids::WorkspaceId,
    pub instruction: &'a str,
    pub request_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    /// The collections it may search (`None`: all of the tenant's).
    pub collection_ids: Option<Vec<uuid::Uuid>>,
    /// The rate-limit reservation its request made, for its executor to correct.
    pub rate_reservation: Option<TokenReservation>,
}

/// Queues an agent run on a workspace conversation; a worker claims it.
pub async fn insert_queued_agent_run(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    run: &QueuedAgentRun<'_>,
) -> Result<Run, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO runs (id, tenant_id, session_id, kind, status, workspace_id, instruction, request_id, \
         trace_id, collection_ids, rate_reservation) VALUES ($1, $2, $3, 'agent', 'queued', $4, $5, $6, $7, $8, $9) \
         RETURNING {RUN_COLUMNS}"
    )))
    .bind(run.id)
    .bind(tenant_id)
    .bind(run.session_id)
    .bind(run.workspace_id)
    .bind(run.instruction)
    .bind(run.request_id)
    .bind(run.trace_id)
    .bind(&run.collection_ids)
    .bind(run.rate_reservation.as_ref().map(sqlx::types::Json))
    .fetch_one(connection)
    .await
}

/// The rate-limit reservation kept on the run (an agent run's request, or a run paused for an approval),
/// if any. One another version kept in a shape this one cannot read is `None`: its buckets refill by
/// themselves.
pub async fn rate_reservation(
    connection: &mut PgConnection,
    id: RunId,
) -> Result<Option<TokenReservation>, sqlx::Error> {
    let kept: Option<Option<serde_json::Value>> = sqlx::query_scalar("SELECT rate_reservation FROM runs WHERE id = $1")
        .bind(id)
        .fetch_optional(connection)
        .await?;
    Ok(kept.flatten().and_then(|kept| serde_json::from_value(kept).ok()))
}

/// A queued agent run claimed for this worker: the oldest one nobody else is claiming (`SKIP LOCKED`),
/// moved to `running` in the same transaction, so that no two workers ever take the same run. A suspended
/// tenant's runs are passed over: they stay queued until the tenant is resumed.
pub async fn claim_queued(
    connection: &mut PgConnection,
    worker: &str,
    executor: ExecutorId,
) -> Result<Option<(RunId, TenantId)>, sqlx::Error> {
    sqlx::query("SELECT set_config('app.run_worker', 'on', true)").execute(&mut *connection).await?;
    let claimed: Option<(RunId, TenantId)> = sqlx::query_as(
        "SELECT id, tenant_id FROM runs WHERE kind = 'agent' AND status = 'queued' \
         AND NOT EXISTS (SELECT 1 FROM tenants WHERE tenants.id = runs.tenant_id AND tenants.status = 'suspended') \
         ORDER BY created_at LIMIT 1 FOR UPDATE OF runs SKIP LOCKED",
    )
    .fetch_optional(&mut *connection)
    .await?;
    if let Some((id, _)) = claimed {
        sqlx::query(
            "UPDATE runs SET status = 'running', attempts = attempts + 1, claimed_by = $2, executor = $3, \
             heartbeat_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(worker)
        .bind(executor)
        .execute(&mut *connection)
        .await?;
    }
    sqlx::query("SELECT set_config('app.run_worker', '', true)").execute(&mut *connection).await?;
    Ok(claimed)
}

/// What a worker needs to execute a claimed agent run.
pub async fn agent_work(
    connection: &mut PgConnection,
    id: RunId,
) -> Result<Option<(crate::ids::WorkspaceId, String)>, sqlx::Error> {
    sqlx::query_as("SELECT workspace_id, instruction FROM runs WHERE id = $1 AND workspace_id IS NOT NULL")
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// The provider and model a worker chose for an agent run when it claimed it.
pub async fn set_model(
    connection: &mut PgConnection,
    id: RunId,
    provider: &str,
    model: &str,
    is_byok: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE runs SET provider = $2, model = $3, is_byok = $4 WHERE id = $1")
        .bind(id)
        .bind(provider)
        .bind(model)
        .bind(is_byok)
        .execute(connection)
        .await?;
    Ok(())
}

/// The agent-run queue of every tenant: how many runs wait for a worker, and the oldest one's wait in
/// seconds (0 with none). Seen as the workers see it (`app.run_worker`), counts only.
pub async fn agent_queue(connection: &mut PgConnection) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query("SELECT set_config('app.run_worker', 'on', true)").execute(&mut *connection).await?;
    sqlx::query_as(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) \
         FROM runs WHERE kind = 'agent' AND status = 'queued'",
    )
    .fetch_one(&mut *connection)
    .await
}

/// Whether a run of these conversations has not ended (queued, running or waiting for an approval).
pub async fn any_unfinished_in(connection: &mut PgConnection, sessions: &[SessionId]) -> Result<bool, sqlx::Error> {
    let sessions: Vec<uuid::Uuid> = sessions.iter().map(|id| id.0).collect();
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE session_id = ANY($1) \
                        AND status IN ('queued', 'running', 'awaiting_approval'))",
    )
    .bind(&sessions)
    .fetch_one(connection)
    .await
}

/// Removes the text of these conversations' runs and detaches the runs from them, so the conversations can
/// go while the runs stay for the usage records that point at them (which run, of which kind, by which
/// model, when): their events (the streamed text), tool calls (arguments and results), proposed patches,
/// idempotency keys, request, instruction, paused state and error message. Returns how many runs.
pub async fn strip_runs_of_sessions(connection: &mut PgConnection, sessions: &[SessionId]) -> Result<u64, sqlx::Error> {
    let sessions: Vec<uuid::Uuid> = sessions.iter().map(|id| id.0).collect();
    let runs: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE runs SET session_id = NULL, request = NULL, instruction = NULL, tool_state = NULL, \
         error_message = NULL WHERE session_id = ANY($1) RETURNING id",
    )
    .bind(&sessions)
    .fetch_all(&mut *connection)
    .await?;
    sqlx::query("DELETE FROM run_events WHERE run_id = ANY($1)").bind(&runs).execute(&mut *connection).await?;
    sqlx::query("DELETE FROM tool_calls WHERE run_id = ANY($1)").bind(&runs).execute(&mut *connection).await?;
    // The changes they proposed (titled by their instruction), with their patches and check artifacts.
    sqlx::query("DELETE FROM changesets WHERE run_id = ANY($1)").bind(&runs).execute(&mut *connection).await?;
    // A retried request's key holds the hash of its text.
    sqlx::query("DELETE FROM idempotency_keys WHERE run_id = ANY($1)").bind(&runs).execute(&mut *connection).await?;
    Ok(runs.len() as u64)
}

/// Deletes up to `batch` runs stripped of their conversation (see [`strip_runs_of_sessions`]) that started
/// more than `days` ago: they outlived their usage records. Returns how many.
pub async fn delete_stripped(connection: &mut PgConnection, days: i32, batch: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM runs WHERE id IN ( \
             SELECT id FROM runs WHERE session_id IS NULL AND status IN ('succeeded', 'failed', 'cancelled') \
               AND created_at < now() - make_interval(days => $1) \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(days)
    .bind(batch)
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}
