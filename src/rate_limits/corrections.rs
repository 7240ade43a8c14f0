//! The tokens' corrections a process owes the buckets, written a batch at a time. A run's tokens are
//! reserved from an estimate at the door and corrected to what it used once it has ended; that
//! correction is on nobody's path, so instead of a transaction a run, the engine's event writer writes
//! every correction queued since its last tick (`engine/event_writer.rs`, every 100 ms): per tenant, one
//! transaction that does not wait for the disk, one statement over all its buckets, each bucket's shifts
//! summed. A correction is at most a tick late; a crash of the process loses the last tick's, like a
//! PostgreSQL crash loses the last of the asynchronous commits (the buckets refill within the minute).

use std::collections::BTreeMap;
use std::sync::Mutex;

use sqlx::PgPool;

use super::store::Shift;
use super::{LimitKind, LimitScope, TokenReservation, settlement, shift_buckets};
use crate::ids::TenantId;

/// What each of a tenant's buckets is owed, in microseconds of its state, summed.
type Owed = BTreeMap<(LimitScope, String, LimitKind), i64>;

#[derive(Debug, Default)]
pub struct Corrections {
    owed: Mutex<BTreeMap<TenantId, Owed>>,
}

impl Corrections {
    /// Queues the correction of `reservation` to `actual_tokens`, for the next [`Self::write`].
    pub fn queue(&self, reservation: &TokenReservation, actual_tokens: u64) {
        let shifts = settlement(reservation, actual_tokens);
        if shifts.is_empty() {
            return;
        }
        let owed = shifts.into_iter().map(|shift| ((shift.scope, shift.subject, shift.kind), shift.micros));
        self.add(reservation.tenant_id, owed);
    }

    /// Writes every correction queued so far. A tenant's that cannot be written are queued again (added to
    /// any queued meanwhile) and the first error is returned: the next write tries them again.
    pub async fn write(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let owed = std::mem::take(&mut *self.lock());
        let mut first_error = None;
        for (tenant_id, buckets) in owed {
            let shifts: Vec<Shift> = buckets
                .iter()
                .filter(|(_, micros)| **micros != 0)
                .map(|((scope, subject, kind), micros)| Shift {
                    scope: *scope,
                    subject: subject.clone(),
                    kind: *kind,
                    micros: *micros,
                })
                .collect();
            if let Err(error) = shift_buckets(pool, tenant_id, &shifts).await {
                self.add(tenant_id, buckets);
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn add(&self, tenant_id: TenantId, owed: impl IntoIterator<Item = ((LimitScope, String, LimitKind), i64)>) {
        let mut queued = self.lock();
        let buckets = queued.entry(tenant_id).or_default();
        for (bucket, micros) in owed {
            let sum = buckets.entry(bucket).or_default();
            *sum = sum.saturating_add(micros);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TenantId, Owed>> {
        self.owed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::ReservedBucket;

    fn reservation(tenant_id: TenantId, estimated: u64) -> TokenReservation {
        let bucket = |scope| ReservedBucket { scope, subject: String::new(), tokens_per_minute: 60_000 };
        TokenReservation { tenant_id, estimated, buckets: vec![bucket(LimitScope::Tenant)] }
    }

    fn owed_micros(corrections: &Corrections, tenant_id: TenantId) -> Vec<i64> {
        let owed = corrections.owed.lock().unwrap();
        owed.get(&tenant_id).map(|buckets| buckets.values().copied().collect()).unwrap_or_default()
    }

    #[test]
    fn a_buckets_corrections_are_summed_until_written() {
        let corrections = Corrections::default();
        let tenant_id = TenantId(uuid::Uuid::new_v4());
        // 60,000 tokens a minute: a token is 1,000 µs of the bucket.
        corrections.queue(&reservation(tenant_id, 100), 40);
        corrections.queue(&reservation(tenant_id, 100), 130);
        corrections.queue(&reservation(tenant_id, 100), 100);
        assert_eq!(owed_micros(&corrections, tenant_id), vec![-60_000 + 30_000]);
    }

    #[tokio::test]
    async fn corrections_that_cannot_be_written_are_kept_for_the_next_write() {
        let corrections = Corrections::default();
        let tenant_id = TenantId(uuid::Uuid::new_v4());
        corrections.queue(&reservation(tenant_id, 100), 40);
        let nowhere = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_millis(200))
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        assert!(corrections.write(&nowhere).await.is_err());
        corrections.queue(&reservation(tenant_id, 100), 90);
        assert_eq!(owed_micros(&corrections, tenant_id), vec![-60_000 - 10_000]);
    }
}
