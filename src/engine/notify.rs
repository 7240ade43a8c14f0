//! Wake-ups across the processes sharing one database, by PostgreSQL's LISTEN/NOTIFY: a run's new
//! events (followers here read them from `run_events`), a cancel of a run executing here, and agent runs
//! queued elsewhere. A notice only wakes: the stored event log stays the truth, so a lost notice costs a
//! slow poll, never an event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;

use super::Inner;
use crate::ids::RunId;
use crate::runs::store::{CANCEL_CHANNEL, EVENTS_CHANNEL, QUEUED_CHANNEL};

/// How often a follower reads `run_events` while notices arrive: only in case one was lost.
const POLL_WHILE_LISTENING: Duration = Duration::from_secs(2);
/// How often it reads while nothing listens (not started yet, or the connection is being taken again).
const POLL_WITHOUT_NOTICES: Duration = Duration::from_millis(250);
/// The wait before listening again after the listener could not reconnect.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The runs followed here from `run_events`, each with the switch its followers wait on.
#[derive(Debug, Default)]
pub struct Notices {
    runs: Mutex<HashMap<RunId, watch::Sender<u64>>>,
    listening: AtomicBool,
}

impl Notices {
    /// A follower's wake-up for the run's new events; it leaves the map with the run's last follower.
    pub fn watch(self: &Arc<Self>, run_id: RunId) -> RunWatch {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = runs.entry(run_id).or_insert_with(|| watch::Sender::new(0)).subscribe();
        RunWatch { notices: Arc::clone(self), run_id, receiver: Some(receiver) }
    }

    fn wake(&self, run_id: RunId) {
        if let Some(sender) = self.runs.lock().unwrap_or_else(PoisonError::into_inner).get(&run_id) {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// After a lost connection: notices sent meanwhile are gone, so every follower reads again.
    fn wake_all(&self) {
        for sender in self.runs.lock().unwrap_or_else(PoisonError::into_inner).values() {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    fn poll_every(&self) -> Duration {
        if self.listening.load(Ordering::SeqCst) { POLL_WHILE_LISTENING } else { POLL_WITHOUT_NOTICES }
    }
}

/// One follower's wake-up for one run.
#[derive(Debug)]
pub struct RunWatch {
    notices: Arc<Notices>,
    run_id: RunId,
    receiver: Option<watch::Receiver<u64>>,
}

impl RunWatch {
    /// Marks every notice so far as seen. Called *before* reading, so a notice in between wakes the next
    /// [`Self::wait`].
    pub fn mark_seen(&mut self) {
        if let Some(receiver) = self.receiver.as_mut() {
            receiver.borrow_and_update();
        }
    }

    /// Until a notice for the run arrives, or the fallback poll's interval passes.
    pub async fn wait(&mut self) {
        let every = self.notices.poll_every();
        if let Some(receiver) = self.receiver.as_mut() {
            let _ = tokio::time::timeout(every, receiver.changed()).await;
        }
    }
}

impl Drop for RunWatch {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut runs = self.notices.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if runs.get(&self.run_id).is_some_and(|sender| sender.receiver_count() == 0) {
            runs.remove(&self.run_id);
        }
    }
}

/// A listener on a connection of its own, made from `options`: a direct connection to PostgreSQL (a
/// pooler in transaction mode cannot keep a LISTEN). sqlx takes the connection again when it is lost.
pub async fn connect(options: PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    // Two: the lost connection may still be closing when the listener takes a new one.
    let pool = PgPoolOptions::new().max_connections(2).min_connections(0).connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen_all([EVENTS_CHANNEL, CANCEL_CHANNEL, QUEUED_CHANNEL]).await?;
    Ok(listener)
}

/// Delivers notices until shutdown.
pub(super) async fn listen(inner: Arc<Inner>, mut listener: PgListener) {
    let stopping = inner.background.stopping().clone();
    inner.notices.listening.store(true, Ordering::SeqCst);
    // After an error, until the first notice: meanwhile followers poll quickly, and that notice proves the
    // listener is back, so every follower reads once more what may have been missed in between.
    let mut failed = false;
    loop {
        let received = tokio::select! {
            () = stopping.cancelled() => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notice)) => {
                if std::mem::take(&mut failed) {
                    inner.notices.listening.store(true, Ordering::SeqCst);
                    inner.notices.wake_all();
                }
                deliver(&inner, notice.channel(), notice.payload());
            }
            Ok(None) => {
                tracing::warn!("the connection listening for other processes' notices was lost; listening again");
                failed = false;
                inner.notices.listening.store(true, Ordering::SeqCst);
                inner.notices.wake_all();
                inner.work_queued.notify_one();
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other processes' notices yet");
                failed = true;
                inner.notices.listening.store(false, Ordering::SeqCst);
                inner.notices.wake_all();
                tokio::select! {
                    () = stopping.cancelled() => return,
                    () = tokio::time::sleep(RECONNECT_AFTER) => {}
                }
            }
        }
    }
}

fn deliver(inner: &Inner, channel: &str, payload: &str) {
    if channel == QUEUED_CHANNEL {
        inner.work_queued.notify_one();
        return;
    }
    let Ok(run_id) = payload.parse::<uuid::Uuid>().map(RunId) else {
        tracing::warn!(channel, payload, "a notice that names no run");
        return;
    };
    if channel == EVENTS_CHANNEL {
        inner.notices.wake(run_id);
    } else if channel == CANCEL_CHANNEL {
        inner.hub.cancel_if_here(run_id);
    }
}
