//! Runs nobody executes any more: closing one (a cancel of a run whose process died), and the sweeper
//! that finds runs whose executor died (its lock is gone: at once) or stopped proving it is alive (its
//! heartbeat is old) and closes them as failed. Also keeps this process's own executor lock.

use std::time::Duration;

use sqlx::PgConnection;

use super::{Engine, EngineError};
use crate::audit::Recorder;
use crate::conversations::store::{self as conversation_store, NewMessage};
use crate::conversations::{MessageStatus, Role};
use crate::db;
use crate::ids::{MessageId, RunId, TenantId};
use crate::runs::events::{EventKind, RunEvent};
use crate::runs::store::RunOutcome;
use crate::runs::{self, Run, RunStatus};
use crate::tools::calls;

/// How soon a lost executor lock is taken again after the database comes back.
const PRESENCE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The answer a dead run had streamed, as far as its events were written, kept as an incomplete message
/// (as a run that fails in its own process keeps its partial answer).
async fn keep_partial_answer(
    transaction: &mut PgConnection,
    tenant_id: TenantId,
    run: &Run,
) -> Result<Option<MessageId>, sqlx::Error> {
    let Some(session_id) = run.session_id else { return Ok(None) };
    let text = runs::store::streamed_text(transaction, run.id).await?;
    if text.is_empty() {
        return Ok(None);
    }
    let message = NewMessage {
        role: Role::Assistant,
        status: MessageStatus::Incomplete,
        model_used: run.model.as_deref(),
        provider_used: run.provider.as_deref(),
        is_byok: Some(run.is_byok),
        ..NewMessage::user(session_id, run.id, &text)
    };
    let stored = conversation_store::insert_message(transaction, tenant_id, &message).await?;
    Ok(Some(stored.id))
}

impl Engine {
    /// Closes a run nobody executes any more, with `closing` as its last event (nothing if it has ended).
    pub(super) async fn close_abandoned(
        &self,
        tenant_id: TenantId,
        run_id: RunId,
        closing: EventKind,
    ) -> Result<(), EngineError> {
        let (status, error) = match &closing {
            EventKind::RunFailed { code, message, .. } => (RunStatus::Failed, Some((code.as_str(), message.as_str()))),
            _ => (RunStatus::Cancelled, None),
        };
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        // Locked: a decision resuming the run and this closing it are ordered, never both.
        let Some(run) = runs::store::get_for_update(&mut transaction, run_id).await? else { return Ok(()) };
        let run = &run;
        let seq = runs::store::last_seq(&mut transaction, run.id).await? + 1;
        calls::close_open(&mut transaction, run.id).await?;
        crate::budgets::release_abandoned(&mut transaction, tenant_id, run.id).await?;
        let outcome = RunOutcome {
            status,
            error,
            provider: run.provider.as_deref().unwrap_or_default(),
            model: run.model.as_deref().unwrap_or_default(),
            finish_reason: None,
            first_token_ms: run.first_token_ms,
            latency_ms: run.latency_ms.unwrap_or_default(),
            // What the dead executor reserved stays reserved: a follower may have seen those numbers.
            last_seq: None,
        };
        if runs::store::finish(&mut transaction, run.id, &outcome).await?.is_some() {
            let kept = keep_partial_answer(&mut transaction, tenant_id, run).await?;
            let closing = match closing {
                EventKind::RunFailed { code, message, .. } => EventKind::RunFailed { code, message, message_id: kept },
                EventKind::RunCancelled { .. } => EventKind::RunCancelled { message_id: kept },
                other => other,
            };
            // An agent run's changeset awaits review however the run ended; its event goes before the end.
            let by = Recorder { tenant_id, actor_type: "system", actor_id: None, request_id: None, trace_id: None };
            let submitted = super::turn::submit_changeset(&mut transaction, &by, run.id).await?;
            let events: Vec<RunEvent> = submitted
                .into_iter()
                .chain([closing])
                .zip(seq..)
                .map(|(kind, seq)| RunEvent { run_id: run.id, seq, kind })
                .collect();
            runs::store::insert_events(&mut transaction, tenant_id, &events).await?;
            let kinds: Vec<EventKind> = events.into_iter().map(|event| event.kind).collect();
            let run_webhooks = crate::webhooks::of_run(run.id, run.session_id, &kinds);
            crate::webhooks::store::enqueue(&mut transaction, tenant_id, &run_webhooks).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Closes, as failed with `interrupted`, the runs whose executor died or stopped proving it is alive
    /// for `stale_after`; returns how many. Safe to run from every process sharing the database.
    pub async fn sweep_stale_runs(&self, stale_after: Duration) -> Result<usize, EngineError> {
        let mut closed = 0;
        // In batches, until one closes nothing (what is left, if anything, is executing here).
        loop {
            let batch = self.sweep_batch(stale_after).await?;
            if batch == 0 {
                return Ok(closed);
            }
            closed += batch;
        }
    }

    async fn sweep_batch(&self, stale_after: Duration) -> Result<usize, EngineError> {
        let mut transaction = db::begin(&self.inner.db).await?;
        let stale = runs::store::stale(&mut transaction, stale_after).await?;
        transaction.commit().await?;
        let mut closed = 0;
        for (run_id, tenant_id) in stale {
            if self.inner.hub.get(run_id, tenant_id).is_some() {
                continue;
            }
            let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
            let run = runs::store::get(&mut transaction, run_id).await?;
            transaction.commit().await?;
            let Some(run) = run.filter(|run| !run.status.is_terminal()) else { continue };
            let closing = EventKind::RunFailed {
                code: "interrupted".to_owned(),
                message: "the process running this turn stopped before it finished".to_owned(),
                message_id: None,
            };
            self.close_abandoned(tenant_id, run.id, closing).await?;
            tracing::warn!(%run_id, %tenant_id, "closed a run whose process stopped");
            closed += 1;
        }
        Ok(closed)
    }

    /// Checks this process's executor lock every few seconds until shutdown, taking it again after the
    /// database restarted (the lock itself is released only at the end of [`Engine::shutdown`]).
    pub(super) fn keep_presence(&self) {
        let engine = self.clone();
        self.inner.background.spawn(async move {
            loop {
                tokio::select! {
                    () = engine.inner.background.stopping().cancelled() => return,
                    () = tokio::time::sleep(PRESENCE_CHECK_EVERY) => {}
                }
                if let Err(error) = engine.inner.presence.keep().await {
                    tracing::warn!(%error, "could not take this process's executor lock again");
                }
            }
        });
    }

    /// Sweeps stale runs every `every`, until shutdown (a process sweeps once before it listens:
    /// [`Engine::sweep_stale_runs`], so that a killed process's runs are closed when it restarts).
    pub fn start_sweeper(&self, every: Duration, stale_after: Duration) {
        let engine = self.clone();
        self.inner.background.spawn(async move {
            loop {
                tokio::select! {
                    () = engine.inner.background.stopping().cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(error) = engine.sweep_stale_runs(stale_after).await {
                    tracing::warn!(%error, "could not sweep stale runs");
                }
            }
        });
    }
}
