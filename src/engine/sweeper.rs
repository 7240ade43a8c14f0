//! Runs nobody executes any more: closing one (a cancel of a run whose process died), and the sweeper
//! that finds runs whose executor stopped proving it is alive and closes them as failed.

use std::time::Duration;

use super::{Engine, EngineError};
use crate::db;
use crate::ids::TenantId;
use crate::runs::events::{EventKind, RunEvent};
use crate::runs::store::RunOutcome;
use crate::runs::{self, Run, RunStatus};
use crate::tools::calls;

impl Engine {
    /// Closes a run nobody executes any more, with `closing` as its last event.
    pub(super) async fn close_abandoned(
        &self,
        tenant_id: TenantId,
        run: &Run,
        closing: EventKind,
    ) -> Result<(), EngineError> {
        let (status, error) = match &closing {
            EventKind::RunFailed { code, message, .. } => (RunStatus::Failed, Some((code.as_str(), message.as_str()))),
            _ => (RunStatus::Cancelled, None),
        };
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        // Locked: a decision resuming the run and this closing it are ordered, never both.
        let Some(run) = runs::store::get_for_update(&mut transaction, run.id).await? else { return Ok(()) };
        let run = &run;
        let seq = runs::store::last_seq(&mut transaction, run.id).await? + 1;
        calls::close_open(&mut transaction, run.id).await?;
        let outcome = RunOutcome {
            status,
            error,
            provider: run.provider.as_deref().unwrap_or_default(),
            model: run.model.as_deref().unwrap_or_default(),
            finish_reason: None,
            first_token_ms: run.first_token_ms,
            latency_ms: run.latency_ms.unwrap_or_default(),
        };
        if runs::store::finish(&mut transaction, run.id, &outcome).await? {
            let event = RunEvent { run_id: run.id, seq, kind: closing };
            runs::store::insert_events(&mut transaction, tenant_id, &[event]).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Closes, as failed with `interrupted`, the runs whose executor stopped proving it is alive (its
    /// process died); returns how many. Safe to run from every process sharing the database.
    pub async fn sweep_stale_runs(&self, stale_after: Duration) -> Result<usize, EngineError> {
        let mut transaction = self.inner.db.begin().await?;
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
            self.close_abandoned(tenant_id, &run, closing).await?;
            tracing::warn!(%run_id, %tenant_id, "closed a run whose process stopped");
            closed += 1;
        }
        Ok(closed)
    }

    /// Sweeps stale runs now and then every `every`, until shutdown.
    pub fn start_sweeper(&self, every: Duration, stale_after: Duration) {
        let engine = self.clone();
        self.inner.background.spawn(async move {
            loop {
                if let Err(error) = engine.sweep_stale_runs(stale_after).await {
                    tracing::warn!(%error, "could not sweep stale runs");
                }
                tokio::select! {
                    () = engine.inner.background.stopping().cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }
}
