//! Runs being executed by this process: their events so far (in memory, so followers never wait on the
//! database; deltas joined, so a long answer costs little more than its text) and their cancellation
//! switch. A run leaves the hub once its terminal event is persisted; from then on followers read
//! `run_events`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::{OwnedMutexGuard, watch};
use tokio_util::sync::CancellationToken;

use super::TurnOutcome;
use crate::ids::{RunId, TenantId};
use crate::runs::coalesce::{Coalesced, Entry};
use crate::runs::events::RunEvent;

#[derive(Debug)]
pub struct LiveRun {
    pub run_id: RunId,
    pub tenant_id: TenantId,
    /// The first event this process publishes: 1, or where a resumed run continues. Earlier events are
    /// only in `run_events`.
    pub first_seq: i64,
    events: Mutex<Coalesced>,
    /// The number of the last event published; followers wait for it to change.
    published: watch::Sender<i64>,
    pub cancel: CancellationToken,
    /// The number of the last event in `run_events`. Whoever writes the run's events holds it for the
    /// whole transaction: the process's writer, or the turn's closing write, which so waits for a write
    /// under way and starts where it ended.
    stored_through: Arc<tokio::sync::Mutex<i64>>,
    /// Set once the run's own closing write began (or the run ended elsewhere): the writer leaves it.
    writer_done: AtomicBool,
    /// Whether someone here waits for the run's whole outcome (`Engine::wait`): its closing write then
    /// reads the totals too.
    outcome_wanted: AtomicBool,
    /// The run as its closing write recorded it, set before its terminal event is published: whoever
    /// follows it here reads it instead of the database.
    kept: OnceLock<Kept>,
}

/// What a run's closing write recorded: the run, its answer, and its totals when a waiter asked for them.
#[derive(Debug, Clone)]
pub struct Kept {
    pub run: crate::runs::Run,
    pub message: Option<crate::conversations::Message>,
    pub totals: Option<crate::usage::RunTotals>,
}

impl LiveRun {
    fn new(run_id: RunId, tenant_id: TenantId, first_seq: i64, stored_through: i64) -> Self {
        Self {
            run_id,
            tenant_id,
            first_seq,
            events: Mutex::new(Coalesced::default()),
            published: watch::Sender::new(0),
            cancel: CancellationToken::new(),
            stored_through: Arc::new(tokio::sync::Mutex::new(stored_through)),
            writer_done: AtomicBool::new(false),
            outcome_wanted: AtomicBool::new(false),
            kept: OnceLock::new(),
        }
    }

    pub fn publish(&self, event: RunEvent) {
        let seq = event.seq;
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push(event);
        self.published.send_replace(seq);
    }

    /// Events with `seq > after`, one by one as they were published.
    pub fn events_after(&self, after: i64) -> Vec<RunEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).events_after(after)
    }

    /// The published events with `seq > after` as a write stores them (deltas joined).
    pub fn entries_after(&self, after: i64) -> Vec<Entry> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).entries_after(after)
    }

    /// The sequence number of the last published event (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).last_seq()
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.published.subscribe()
    }

    /// The right to write the run's events, once no write is under way; holds what is stored already.
    pub async fn write_turn(&self) -> OwnedMutexGuard<i64> {
        Arc::clone(&self.stored_through).lock_owned().await
    }

    /// The right to write, if nobody is writing now (the writer does not wait for a closing run).
    pub fn try_write_turn(&self) -> Option<OwnedMutexGuard<i64>> {
        Arc::clone(&self.stored_through).try_lock_owned().ok()
    }

    /// From now on the process's writer leaves this run alone: its closing write takes over.
    pub fn end_writer(&self) {
        self.writer_done.store(true, Ordering::SeqCst);
    }

    pub fn writer_done(&self) -> bool {
        self.writer_done.load(Ordering::SeqCst)
    }

    /// Asks the closing write to read the totals too, for [`Self::outcome`].
    pub fn want_outcome(&self) {
        self.outcome_wanted.store(true, Ordering::SeqCst);
    }

    pub fn outcome_wanted(&self) -> bool {
        self.outcome_wanted.load(Ordering::SeqCst)
    }

    /// Keeps what the closing write recorded; before the terminal event is published.
    pub fn keep(&self, kept: Kept) {
        let _ = self.kept.set(kept);
    }

    /// The whole outcome as recorded, once the terminal event is out, if a waiter asked for it in time
    /// (none when the run ended otherwise: elsewhere, or with its record failed).
    pub fn outcome(&self) -> Option<TurnOutcome> {
        let kept = self.kept.get()?;
        let totals = kept.totals.clone()?;
        Some(TurnOutcome { run: kept.run.clone(), message: kept.message.clone(), totals })
    }

    /// The answer `message_id` as the closing write recorded it, once the terminal event is out.
    pub fn answer(&self, message_id: crate::ids::MessageId) -> Option<crate::conversations::Message> {
        self.kept.get()?.message.as_ref().filter(|message| message.id == message_id).cloned()
    }
}

#[derive(Debug, Default)]
pub struct Hub {
    runs: Mutex<HashMap<RunId, Arc<LiveRun>>>,
    /// Set when shutdown stops the runs left after its grace period: they end as failed, not cancelled
    /// (nobody asked to cancel them; asking again is the way on).
    shutting_down: AtomicBool,
}

impl Hub {
    /// Registers a run executed here from `first_seq` on, its events through `stored_through` written.
    pub fn register(&self, run_id: RunId, tenant_id: TenantId, first_seq: i64, stored_through: i64) -> Arc<LiveRun> {
        let live = Arc::new(LiveRun::new(run_id, tenant_id, first_seq, stored_through));
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).insert(run_id, Arc::clone(&live));
        live
    }

    /// The live run, if this process is executing it for this tenant.
    pub fn get(&self, run_id: RunId, tenant_id: TenantId) -> Option<Arc<LiveRun>> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.get(&run_id).filter(|live| live.tenant_id == tenant_id).cloned()
    }

    /// Every run executing here now.
    pub fn live_runs(&self) -> Vec<Arc<LiveRun>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    /// Cancels the run if this process executes it (another process was asked to cancel it); true if so.
    pub fn cancel_if_here(&self, run_id: RunId) -> bool {
        let live = self.runs.lock().unwrap_or_else(PoisonError::into_inner).get(&run_id).cloned();
        live.inspect(|live| live.cancel.cancel()).is_some()
    }

    /// Removes the run if `live` is still its entry: a run that paused here may already be resumed
    /// (and registered anew) by the time the paused task lets go of it.
    pub fn remove(&self, run_id: RunId, live: &Arc<LiveRun>) {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if runs.get(&run_id).is_some_and(|current| Arc::ptr_eq(current, live)) {
            runs.remove(&run_id);
        }
    }

    /// Stops every run still executing here, because the process is shutting down.
    pub fn stop_all_for_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for live in self.runs.lock().unwrap_or_else(PoisonError::into_inner).values() {
            live.cancel.cancel();
        }
    }

    /// True once [`Self::stop_all_for_shutdown`] stopped the runs: a cancelled run was stopped by it.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
