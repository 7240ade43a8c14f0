//! Runs being executed by this process: their events so far (in memory, so followers never wait on the
//! database) and their cancellation switch. A run leaves the hub once its terminal event is persisted;
//! from then on followers read `run_events`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ids::{RunId, TenantId};
use crate::runs::events::RunEvent;

#[derive(Debug)]
pub struct LiveRun {
    pub tenant_id: TenantId,
    /// The first event this process publishes: 1, or where a resumed run continues. Earlier events are
    /// only in `run_events`.
    pub first_seq: i64,
    events: Mutex<Vec<RunEvent>>,
    /// The number of events published; followers wait for it to change.
    published: watch::Sender<usize>,
    pub cancel: CancellationToken,
}

impl LiveRun {
    fn new(tenant_id: TenantId, first_seq: i64) -> Self {
        Self {
            tenant_id,
            first_seq,
            events: Mutex::new(Vec::new()),
            published: watch::Sender::new(0),
            cancel: CancellationToken::new(),
        }
    }

    pub fn publish(&self, event: RunEvent) {
        let count = {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            events.push(event);
            events.len()
        };
        self.published.send_replace(count);
    }

    /// Events with `seq > after`. Events are published in increasing `seq`, so this is a binary search,
    /// not a scan: followers call it on every wake-up of a long stream.
    pub fn events_after(&self, after: i64) -> Vec<RunEvent> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let start = events.partition_point(|event| event.seq <= after);
        events[start..].to_vec()
    }

    /// The sequence number of the last published event (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).last().map_or(0, |event| event.seq)
    }

    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.published.subscribe()
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
    pub fn register(&self, run_id: RunId, tenant_id: TenantId, first_seq: i64) -> Arc<LiveRun> {
        let live = Arc::new(LiveRun::new(tenant_id, first_seq));
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).insert(run_id, Arc::clone(&live));
        live
    }

    /// The live run, if this process is executing it for this tenant.
    pub fn get(&self, run_id: RunId, tenant_id: TenantId) -> Option<Arc<LiveRun>> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.get(&run_id).filter(|live| live.tenant_id == tenant_id).cloned()
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
