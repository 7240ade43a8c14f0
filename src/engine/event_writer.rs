//! The process's writer of run events: every tick, the events every run here published since its last
//! write go to `run_events` in one transaction (deltas joined, a row per run at most), and one statement
//! tells other processes' followers. A thousand streaming runs cost one commit a tick, not a thousand.
//! It also keeps the runs' heartbeats, all in one statement, and writes the rate limits' token corrections
//! of the runs ended here (`rate_limits::corrections`). The turn's closing write takes over from it
//! (`EventLog::write_closing`), so a run's terminal events still commit with its outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::OwnedMutexGuard;

use super::Inner;
use super::hub::{Hub, LiveRun};
use crate::db;
use crate::ids::{RunId, TenantId};
use crate::runs;
use crate::runs::coalesce::Entry;

/// How often new events are written: the most a follower in another process lags behind this one.
const WRITE_EVERY: Duration = Duration::from_millis(100);
/// How often the runs here prove they are alive; the sweeper closes runs silent for a minute.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// After a failed write, the wait before the next, doubling up to the most.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MOST: Duration = Duration::from_secs(5);
/// Rows per statement: PostgreSQL binds at most 65,535 parameters, six a row.
const ROWS_PER_STATEMENT: usize = 4_000;

/// A run's events to write, with the right to write them held until the write ends.
struct Unwritten {
    live: Arc<LiveRun>,
    stored_through: OwnedMutexGuard<i64>,
    entries: Vec<Entry>,
}

/// Writes every tick until shutdown has begun and no run is left here.
pub(super) async fn run(inner: Arc<Inner>) {
    let (hub, db, stopping) = (&inner.hub, &inner.db, inner.background.stopping());
    let mut failures = 0u32;
    let mut last_heartbeat = Instant::now();
    loop {
        let wait = if failures == 0 {
            WRITE_EVERY
        } else {
            BACKOFF_FIRST.saturating_mul(1 << failures.min(5)).min(BACKOFF_MOST)
        };
        tokio::time::sleep(wait).await;
        // Judged before this tick's writes: a run leaves the hub only after its end is written and its
        // token correction queued, so what the last run left is written by this tick.
        let done = stopping.is_cancelled() && hub.is_empty();
        match write_once(hub, db).await {
            Ok(()) => failures = 0,
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, failures, "could not write run events yet");
            }
        }
        // Failures are kept and tried again at the next tick.
        if let Err(error) = inner.rate_corrections.write(db).await {
            tracing::warn!(%error, "could not write the rate limits' token corrections yet");
        }
        if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
            last_heartbeat = Instant::now();
            if let Err(error) = heartbeat(hub, db).await {
                tracing::warn!(%error, "could not record the runs' heartbeats");
            }
        }
        if done {
            return;
        }
    }
}

/// One tick: the new events of every run whose closing write has not begun.
async fn write_once(hub: &Hub, db: &PgPool) -> Result<(), sqlx::Error> {
    let mut batch: Vec<Unwritten> = Vec::new();
    for live in hub.live_runs() {
        if live.writer_done() {
            continue;
        }
        // A run whose closing write holds it is written by that write.
        let Some(stored_through) = live.try_write_turn() else { continue };
        let entries = live.entries_after(*stored_through);
        if !entries.is_empty() {
            batch.push(Unwritten { live, stored_through, entries });
        }
    }
    if batch.is_empty() {
        return Ok(());
    }
    match write_together(db, &batch).await {
        Ok(()) => {
            batch.iter_mut().for_each(Unwritten::written);
            Ok(())
        }
        Err(error) if db::is_unavailable(&error) => Err(error),
        // One run's rows refused (its run deleted meanwhile, say) must not hold back the others: each
        // on its own, and the writer gives up on a run refused alone (its closing write will say why).
        Err(error) => {
            tracing::warn!(%error, runs = batch.len(), "writing run events together failed; writing them one by one");
            for mut unwritten in batch {
                match write_alone(db, &unwritten).await {
                    Ok(()) => unwritten.written(),
                    Err(error) if db::is_unavailable(&error) => return Err(error),
                    Err(error) => {
                        tracing::error!(run_id = %unwritten.live.run_id, %error, "the run's events were refused; leaving them to its closing write");
                        unwritten.live.end_writer();
                    }
                }
            }
            Ok(())
        }
    }
}

impl Unwritten {
    fn written(&mut self) {
        if let Some(last) = self.entries.last() {
            *self.stored_through = last.last_seq();
        }
    }
}

/// Every run's rows in one transaction, bound to each tenant in turn so that row-level security holds.
async fn write_together(db: &PgPool, batch: &[Unwritten]) -> Result<(), sqlx::Error> {
    let mut by_tenant: BTreeMap<TenantId, Vec<&Entry>> = BTreeMap::new();
    for unwritten in batch {
        by_tenant.entry(unwritten.live.tenant_id).or_default().extend(&unwritten.entries);
    }
    let mut transaction = db::begin(db).await?;
    for (tenant_id, entries) in by_tenant {
        db::set_tenant(&mut transaction, tenant_id).await?;
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let chunk: Vec<Entry> = chunk.iter().map(|entry| (*entry).clone()).collect();
            runs::store::insert_entries(&mut transaction, tenant_id, &chunk).await?;
        }
    }
    let run_ids: Vec<RunId> = batch.iter().map(|unwritten| unwritten.live.run_id).collect();
    runs::store::notify_events(&mut transaction, &run_ids).await?;
    transaction.commit().await
}

async fn write_alone(db: &PgPool, unwritten: &Unwritten) -> Result<(), sqlx::Error> {
    let mut transaction = db::begin_tenant(db, unwritten.live.tenant_id).await?;
    runs::store::insert_entries(&mut transaction, unwritten.live.tenant_id, &unwritten.entries).await?;
    runs::store::notify_events(&mut transaction, &[unwritten.live.run_id]).await?;
    transaction.commit().await
}

/// Marks every run here as alive, one statement per tenant; a run another process ended meanwhile (a
/// cancel that reached it there) is cancelled here too.
async fn heartbeat(hub: &Hub, db: &PgPool) -> Result<(), sqlx::Error> {
    let mut by_tenant: BTreeMap<TenantId, Vec<Arc<LiveRun>>> = BTreeMap::new();
    for live in hub.live_runs() {
        by_tenant.entry(live.tenant_id).or_default().push(live);
    }
    if by_tenant.is_empty() {
        return Ok(());
    }
    let mut transaction = db::begin(db).await?;
    let mut ended = Vec::new();
    for (tenant_id, runs) in &by_tenant {
        db::set_tenant(&mut transaction, *tenant_id).await?;
        let ids: Vec<RunId> = runs.iter().map(|live| live.run_id).collect();
        let open = runs::store::heartbeat_all(&mut transaction, &ids).await?;
        ended.extend(runs.iter().filter(|live| !open.contains(&live.run_id)).cloned());
    }
    transaction.commit().await?;
    for live in ended {
        live.cancel.cancel();
    }
    Ok(())
}
