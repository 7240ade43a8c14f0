//! Retention: what a tenant keeps, and for how long. Conversations (with their runs' text) are deleted a
//! number of days after their last activity; usage records and audit events after their own, longer
//! settings (`tenant_configs`, set through `PATCH /api/v1/tenant/config`, checked in `tenants`). Webhook
//! deliveries that ended (delivered or given up) go with their attempt log after [`WEBHOOK_LOG_DAYS`].
//!
//! [`sweep`] is safe in every process at once: each batch is one short transaction that takes its rows
//! with `FOR UPDATE SKIP LOCKED`, so two sweepers share the work instead of waiting for each other, and a
//! conversation a turn is writing to (its row locked) is skipped until the next sweep, never waited for.
//! [`spawn`] runs it periodically in the background.

pub mod store;

use std::time::Duration;

use sqlx::PgPool;

use crate::background::Background;
use crate::db;
use crate::ids::TenantId;

/// How many rows one transaction deletes: small enough to hold its locks for milliseconds.
pub const BATCH: i64 = 500;

/// How long a finished webhook delivery and its attempts are kept, for every tenant.
pub const WEBHOOK_LOG_DAYS: i32 = 30;

/// A tenant's retention, in days; `None` keeps forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Settings {
    pub conversations: Option<i32>,
    pub usage: Option<i32>,
    pub audit: Option<i32>,
}

/// What a sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub conversations: u64,
    /// Runs whose text went with their conversation (the runs stay while usage records need them).
    pub runs_stripped: u64,
    pub usage_records: u64,
    /// Runs without a conversation deleted after the usage retention.
    pub runs_deleted: u64,
    pub audit_events: u64,
    /// Finished webhook deliveries (with their attempts) past [`WEBHOOK_LOG_DAYS`].
    pub webhook_deliveries: u64,
}

impl Swept {
    fn add(&mut self, other: Self) {
        self.conversations += other.conversations;
        self.runs_stripped += other.runs_stripped;
        self.usage_records += other.usage_records;
        self.runs_deleted += other.runs_deleted;
        self.audit_events += other.audit_events;
        self.webhook_deliveries += other.webhook_deliveries;
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Deletes, in every active tenant, what its retention settings no longer keep, `batch` rows per transaction
/// until none is left. Row-level security is forced, so it works tenant by tenant, in transactions bound
/// to each (the list of tenants is not tenant data). A tenant that fails is logged and the others go on;
/// the first error is returned at the end.
pub async fn sweep(pool: &PgPool, batch: i64) -> Result<Swept, sqlx::Error> {
    let mut swept = Swept::default();
    let mut failure = None;
    // A suspended tenant keeps what it has until it is resumed, or deleted: a sweep would only race the
    // deletion's locks.
    for tenant in crate::tenants::store::active_ids(pool).await? {
        match sweep_tenant(pool, tenant, batch).await {
            Ok(tenant_swept) => swept.add(tenant_swept),
            Err(error) => {
                tracing::warn!(%tenant, %error, "retention could not sweep a tenant; it will try again");
                failure.get_or_insert(error);
            }
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(swept),
    }
}

/// One tenant's sweep.
pub async fn sweep_tenant(pool: &PgPool, tenant: TenantId, batch: i64) -> Result<Swept, sqlx::Error> {
    let batch = batch.max(1);
    let mut transaction = db::begin_tenant(pool, tenant).await?;
    let settings = store::settings(&mut transaction).await?;
    transaction.commit().await?;
    let mut swept = Swept::default();
    if let Some(days) = settings.conversations {
        loop {
            let mut transaction = db::begin_tenant(pool, tenant).await?;
            let sessions = crate::conversations::store::lock_expired_sessions(&mut transaction, days, batch).await?;
            if sessions.is_empty() {
                break;
            }
            swept.runs_stripped += crate::runs::store::strip_runs_of_sessions(&mut transaction, &sessions).await?;
            swept.conversations += crate::conversations::store::delete_sessions(&mut transaction, &sessions).await?;
            transaction.commit().await?;
            if i64::try_from(sessions.len()).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
    }
    if let Some(days) = settings.usage {
        swept.usage_records += in_batches(pool, tenant, batch, |transaction| {
            Box::pin(crate::usage::store::delete_expired(transaction, days, batch))
        })
        .await?;
        swept.runs_deleted += in_batches(pool, tenant, batch, |transaction| {
            Box::pin(crate::runs::store::delete_stripped(transaction, days, batch))
        })
        .await?;
    }
    swept.webhook_deliveries += in_batches(pool, tenant, batch, |transaction| {
        Box::pin(crate::webhooks::store::delete_finished(transaction, WEBHOOK_LOG_DAYS, batch))
    })
    .await?;
    if settings.audit.is_some() {
        swept.audit_events +=
            in_batches(pool, tenant, batch, |transaction| Box::pin(crate::audit::store::expire(transaction, batch)))
                .await?;
    }
    Ok(swept)
}

type Deletion<'a> = std::pin::Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + 'a>>;

/// Runs `delete` (one batch) in its own transaction bound to `tenant` until a batch deletes fewer than
/// `batch` rows; returns how many in all.
async fn in_batches(
    pool: &PgPool,
    tenant: TenantId,
    batch: i64,
    delete: impl for<'a> Fn(&'a mut sqlx::PgConnection) -> Deletion<'a>,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut transaction = db::begin_tenant(pool, tenant).await?;
        let deleted = delete(&mut transaction).await?;
        transaction.commit().await?;
        total += deleted;
        if i64::try_from(deleted).unwrap_or(i64::MAX) < batch {
            return Ok(total);
        }
    }
}

/// Sweeps every `interval` (the first time one interval after the start) until shutdown. Every process
/// runs it; see the module's note on why they do not get in each other's way.
pub fn spawn(background: &Background, pool: PgPool, interval: Duration) {
    let stopping = background.stopping().clone();
    background.spawn(async move {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                swept = sweep(&pool, BATCH) => match swept {
                    Ok(swept) if swept.is_empty() => {}
                    Ok(swept) => tracing::info!(?swept, "retention deleted what tenants no longer keep"),
                    Err(error) => tracing::warn!(%error, "the retention sweep failed; it will try again"),
                },
            }
        }
    });
}
