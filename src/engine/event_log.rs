//! A run's events as the turn produces them: numbered, published at once to followers in memory, and
//! written to `run_events` in batches (a write per token would make the database the bottleneck). The
//! terminal events are written in the same transaction as the run's outcome, before anyone sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};

use super::hub::LiveRun;
use crate::db;
use crate::ids::{RunId, TenantId};
use crate::runs;
use crate::runs::events::{EventKind, RunEvent};

/// The wait before writing again after a failed write, doubling up to the most.
const WRITE_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const WRITE_BACKOFF_MOST: Duration = Duration::from_secs(5);
const FLUSH_EVERY_EVENTS: usize = 64;
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Sequence numbers reserved at a time before publishing: one write per this many events.
const RESERVE_AHEAD: i64 = 64;

pub struct EventLog {
    run_id: RunId,
    tenant_id: TenantId,
    live: Arc<LiveRun>,
    db: PgPool,
    next_seq: i64,
    /// The highest sequence number reserved in the run's row; nothing past it is published.
    reserved_through: i64,
    pending: Vec<RunEvent>,
    last_flush: Instant,
    /// After a failed write, no other is tried before this (the database is down: each attempt would
    /// hold the turn for the pool's whole acquire timeout, and its followers would see nothing).
    write_again_at: Option<Instant>,
    failed_writes: u32,
}

impl EventLog {
    pub fn new(run_id: RunId, tenant_id: TenantId, live: Arc<LiveRun>, db: PgPool, next_seq: i64) -> Self {
        Self {
            run_id,
            tenant_id,
            live,
            db,
            next_seq,
            reserved_through: next_seq - 1,
            pending: Vec::new(),
            last_flush: Instant::now(),
            write_again_at: None,
            failed_writes: 0,
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

    /// Publishes a non-terminal event now and persists it with the next batch.
    pub async fn emit(&mut self, kind: EventKind) {
        debug_assert!(!kind.is_terminal());
        let event = self.number(kind);
        let may_write = self.write_again_at.is_none_or(|at| Instant::now() >= at);
        if event.seq > self.reserved_through && may_write {
            self.reserve_and_flush(event.seq + RESERVE_AHEAD - 1).await;
        }
        self.live.publish(event.clone());
        self.pending.push(event);
        let due = self.pending.len() >= FLUSH_EVERY_EVENTS || self.last_flush.elapsed() >= FLUSH_EVERY;
        if due && may_write {
            self.flush().await;
        }
    }

    /// Writes the pending events; on failure they stay pending for the next attempt.
    pub async fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.write_pending(None).await;
        }
    }

    /// Reserves sequence numbers through `through` (and writes what is pending on the way), so that a
    /// closer that finds this run abandoned numbers past them. If the database cannot be reached the
    /// event is published all the same: the turn goes on, and the next reservation tries again.
    async fn reserve_and_flush(&mut self, through: i64) {
        self.write_pending(Some(through)).await;
    }

    /// The pending events in one transaction, with a reservation of numbers through `reserve` if given.
    async fn write_pending(&mut self, reserve: Option<i64>) {
        let written = async {
            let mut transaction = db::begin_tenant(&self.db, self.tenant_id).await?;
            runs::store::insert_events(&mut transaction, self.tenant_id, &self.pending).await?;
            if let Some(through) = reserve {
                runs::store::reserve_seq(&mut transaction, self.run_id, through).await?;
            }
            transaction.commit().await
        }
        .await;
        match written {
            Ok(()) => {
                self.pending.clear();
                self.last_flush = Instant::now();
                self.reserved_through = reserve.unwrap_or(self.reserved_through);
                (self.write_again_at, self.failed_writes) = (None, 0);
            }
            Err(error) => {
                self.failed_writes += 1;
                let backoff =
                    WRITE_BACKOFF_FIRST.saturating_mul(1 << self.failed_writes.min(5)).min(WRITE_BACKOFF_MOST);
                self.write_again_at = Some(Instant::now() + backoff);
                tracing::warn!(run_id = %self.run_id, %error, retry_in_ms = backoff.as_millis(), "could not write run events yet");
            }
        }
    }

    /// Writes the pending events and the closing ones inside the caller's transaction; returns the closing
    /// events, to publish once that transaction has committed.
    pub async fn write_closing(
        &mut self,
        transaction: &mut PgConnection,
        closing: Vec<EventKind>,
    ) -> Result<Vec<RunEvent>, sqlx::Error> {
        let closing: Vec<RunEvent> = closing.into_iter().map(|kind| self.number(kind)).collect();
        runs::store::insert_events(&mut *transaction, self.tenant_id, &self.pending).await?;
        runs::store::insert_events(&mut *transaction, self.tenant_id, &closing).await?;
        runs::store::settle_reserved_seq(&mut *transaction, self.run_id, self.next_seq - 1).await?;
        Ok(closing)
    }

    /// After the closing transaction committed.
    pub fn publish_closing(&mut self, closing: Vec<RunEvent>) {
        self.pending.clear();
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
        self.pending.clear();
        self.live.publish(RunEvent { run_id: self.run_id, seq: self.live.last_seq() + 1, kind });
    }
}
