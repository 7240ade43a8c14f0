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

use super::store::{self, Shift};
use super::{LimitKind, LimitScope, TokenReservation, settlement};
use crate::db;
use crate::ids::TenantId;

/// A bucket's key within its tenant.
type Bucket = (&'static str, String, &'static str);

#[derive(Debug, Default)]
pub struct Corrections {
    owed: Mutex<BTreeMap<TenantId, BTreeMap<Bucket, Owed>>>,
}

/// What one bucket is owed, summed.
#[derive(Debug, Clone, Copy)]
struct Owed {
    scope: LimitScope,
    kind: LimitKind,
    micros: i64,
}

impl Corrections {
    /// Queues the correction of `reservation` to `actual_tokens`, for the next [`Self::write`].
    pub fn queue(&self, reservation: &TokenReservation, actual_tokens: u64) {
        let shifts = settlement(reservation, actual_tokens);
        if shifts.is_empty() {
            return;
        }
        let mut owed = self.owed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tenant = owed.entry(reservation.tenant_id).or_default();
        for shift in shifts {
            let key = (shift.scope.as_str(), shift.subject, shift.kind.as_str());
            let entry = tenant.entry(key).or_insert(Owed { scope: shift.scope, kind: shift.kind, micros: 0 });
            entry.micros = entry.micros.saturating_add(shift.micros);
        }
    }

    /// Writes every correction queued so far. A tenant's that cannot be written are queued again (added to
    /// any queued meanwhile) and the first error is returned: the next write tries them again.
    pub async fn write(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let owed = std::mem::take(&mut *self.owed.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut first_error = None;
        for (tenant_id, buckets) in owed {
            let shifts: Vec<Shift> = buckets
                .iter()
                .filter(|(_, owed)| owed.micros != 0)
                .map(|((_, subject, _), owed)| Shift {
                    scope: owed.scope,
                    subject: subject.clone(),
                    kind: owed.kind,
                    micros: owed.micros,
                })
                .collect();
            if let Err(error) = write_tenant(pool, tenant_id, &shifts).await {
                self.requeue(tenant_id, buckets);
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn requeue(&self, tenant_id: TenantId, buckets: BTreeMap<Bucket, Owed>) {
        let mut owed = self.owed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tenant = owed.entry(tenant_id).or_default();
        for (key, unwritten) in buckets {
            let entry = tenant.entry(key).or_insert(Owed { micros: 0, ..unwritten });
            entry.micros = entry.micros.saturating_add(unwritten.micros);
        }
    }
}

async fn write_tenant(pool: &PgPool, tenant_id: TenantId, shifts: &[Shift]) -> Result<(), sqlx::Error> {
    if shifts.is_empty() {
        return Ok(());
    }
    let mut transaction = db::begin_tenant_without_waiting_for_disk(pool, tenant_id).await?;
    store::shift(&mut transaction, tenant_id, shifts).await?;
    transaction.commit().await
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
        owed.get(&tenant_id).map(|buckets| buckets.values().map(|owed| owed.micros).collect()).unwrap_or_default()
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
