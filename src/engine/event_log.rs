//! A run's events as the turn produces them: numbered, published at once to followers in memory, and
//! written to `run_events` by the process's writer (`event_writer.rs`: every run's new events in one
//! transaction a tick; a write per token would make the database the bottleneck). The terminal events
//! are written in the same transaction as the run's outcome, with whatever the writer had not written
//! yet, before anyone sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use tokio::sync::OwnedMutexGuard;

use super::hub::LiveRun;
use crate::db;
use crate::ids::{RunId, TenantId};
use crate::runs;
use crate::runs::coalesce::Entry;
use crate::runs::events::{EventKind, RunEvent};

/// The wait before reserving again after a failed reservation, doubling up to the most.
const RESERVE_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const RESERVE_BACKOFF_MOST: Duration = Duration::from_secs(5);
/// Sequence numbers reserved at a time before publishing: a run's start reserves this many with it, so
/// that an ordinary answer never waits on the database between its tokens.
pub const RESERVE_AHEAD: i64 = 4096;

pub struct EventLog {
    run_id: RunId,
    tenant_id: TenantId,
    live: Arc<LiveRun>,
    db: PgPool,
    next_seq: i64,
    /// The highest sequence number reserved in the run's row; nothing past it is published unless the
    /// database cannot be reached.
    reserved_through: i64,
    /// After a failed reservation, no other is tried before this (the database is down: each attempt
    /// would hold the turn for the pool's whole acquire timeout, and its followers would see nothing).
    reserve_again_at: Option<Instant>,
    failed_reservations: u32,
    /// Held from [`Self::take_over_writing`] on: the number of the last event the writer stored.
    stored_through: Option<OwnedMutexGuard<i64>>,
}

impl EventLog {
    /// The log of a run whose events before `next_seq` are published, and numbers through
    /// `reserved_through` reserved.
    pub fn new(live: Arc<LiveRun>, db: PgPool, next_seq: i64, reserved_through: i64) -> Self {
        Self {
            run_id: live.run_id,
            tenant_id: live.tenant_id,
            live,
            db,
            next_seq,
            reserved_through,
            reserve_again_at: None,
            failed_reservations: 0,
            stored_through: None,
        }
    }

    /// The run as followers in this process see it.
    pub fn live(&self) -> &Arc<LiveRun> {
        &self.live
    }

    /// The run's cancellation switch.
    pub fn cancellation(&self) -> tokio_util::sync::CancellationToken {
        self.live.cancel.clone()
    }

    fn number(&mut self, kind: EventKind) -> RunEvent {
        let event = RunEvent { run_id: self.run_id, seq: self.next_seq, kind };
        self.next_seq += 1;
        event
    }

    /// Publishes a non-terminal event now; the process's writer persists it within a tick.
    pub async fn emit(&mut self, kind: EventKind) {
        debug_assert!(!kind.is_terminal());
        let event = self.number(kind);
        if event.seq > self.reserved_through && self.reserve_again_at.is_none_or(|at| Instant::now() >= at) {
            Box::pin(self.reserve(event.seq + RESERVE_AHEAD - 1)).await;
        }
        self.live.publish(event);
    }

    /// Reserves sequence numbers through `through`, so that a closer that finds this run abandoned
    /// numbers past them. If the database cannot be reached the event is published all the same: the
    /// turn goes on, and the next event tries again after a while.
    async fn reserve(&mut self, through: i64) {
        let reserved = async {
            let mut transaction = db::begin_tenant(&self.db, self.tenant_id).await?;
            runs::store::reserve_seq(&mut transaction, self.run_id, through).await?;
            transaction.commit().await
        }
        .await;
        match reserved {
            Ok(()) => {
                self.reserved_through = through;
                (self.reserve_again_at, self.failed_reservations) = (None, 0);
            }
            Err(error) => {
                self.failed_reservations += 1;
                let backoff = RESERVE_BACKOFF_FIRST
                    .saturating_mul(1 << self.failed_reservations.min(5))
                    .min(RESERVE_BACKOFF_MOST);
                self.reserve_again_at = Some(Instant::now() + backoff);
                tracing::warn!(run_id = %self.run_id, %error, retry_in_ms = backoff.as_millis(), "could not reserve event numbers yet");
            }
        }
    }

    /// Takes the run's writing over from the process's writer, once a write of its under way has ended.
    /// Before the closing transaction begins, never inside it: that transaction locks the run's row, and
    /// the writer's, inserting the run's events, waits for that lock.
    pub async fn take_over_writing(&mut self) {
        self.live.end_writer();
        self.stored_through = Some(self.live.write_turn().await);
    }

    /// Writes what the writer has not written yet and the closing events inside the caller's
    /// transaction; returns the closing events, to publish once that transaction has committed.
    /// [`Self::take_over_writing`] must have been called before the transaction began.
    pub async fn write_closing(
        &mut self,
        transaction: &mut PgConnection,
        closing: Vec<EventKind>,
    ) -> Result<Vec<RunEvent>, sqlx::Error> {
        let stored_through = **self.stored_through.as_ref().expect("the writing was taken over before closing");
        // Numbered after the last published event, so that a try again after a failed transaction
        // numbers them the same (they were never seen).
        self.next_seq = self.live.last_seq() + 1;
        let closing: Vec<RunEvent> = closing.into_iter().map(|kind| self.number(kind)).collect();
        let mut entries = self.live.entries_after(stored_through);
        entries.extend(closing.iter().cloned().map(Entry::Event));
        runs::store::insert_entries(&mut *transaction, self.tenant_id, &entries).await?;
        runs::store::notify_events(&mut *transaction, &[self.run_id]).await?;
        Ok(closing)
    }

    /// The last sequence number written by [`Self::write_closing`]: what the run's row keeps as reserved
    /// when it ends or pauses in order (`runs::store::finish`, `runs::store::pause`).
    pub fn last_seq_closed(&self) -> i64 {
        self.next_seq - 1
    }

    /// After the closing transaction committed.
    pub fn publish_closing(&mut self, closing: Vec<RunEvent>) {
        for event in closing {
            self.live.publish(event);
        }
    }

    /// When the closing transaction failed: followers must still see the run end. It follows the last
    /// *published* event: the closing events numbered for the failed transaction were never seen.
    pub fn publish_failure_in_memory(&mut self, code: &str, message: &str) {
        let kind = EventKind::RunFailed { code: code.to_owned(), message: message.to_owned(), message_id: None };
        self.publish_in_memory(kind);
    }

    /// Ends the stream of followers in this process with `kind`, without writing it (it is written
    /// already, or cannot be).
    pub fn publish_in_memory(&mut self, kind: EventKind) {
        self.live.end_writer();
        self.live.publish(RunEvent { run_id: self.run_id, seq: self.live.last_seq() + 1, kind });
    }
}
