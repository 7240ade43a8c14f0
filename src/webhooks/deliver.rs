//! The delivery workers: every process runs them on the same queue. A worker claims the oldest due delivery
//! of any tenant (`FOR UPDATE SKIP LOCKED`, then a lease, so no two workers send one delivery at once and a
//! dead worker's delivery is taken again when its lease ends), reads the destination and opens its secret
//! in a transaction bound to the delivery's tenant, POSTs the signed body with no database connection held,
//! then logs the attempt and settles the delivery in another.
//!
//! Retries: a failed attempt (no answer, or any status but 2xx) is tried again after an exponential backoff
//! with jitter (`retry_base` × 2ⁿ, capped at `retry_cap`, each wait drawn between half and all of it), for
//! `retry_for` (24 hours) from the round's first attempt; the last try is made at the end of the window.
//! Disabling: a destination whose every attempt failed since the start of a delivery's round, when that
//! round runs out, is disabled (`disabled_reason: failing`) and the audit trail records it; so a destination
//! is turned off only after failing everything for the whole retry window. Enabling it again (PATCH) starts
//! its count afresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng as _;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::sign;
use super::store::{self, Next};
use crate::audit::{AuditEntry, Recorder};
use crate::background::Background;
use crate::crypto::{MasterKeys, Sealed};
use crate::db;
use crate::ids::{DeliveryId, TenantId};
use crate::outbound::OutboundPolicy;

/// How deliveries are sent and retried (`SWITCHBOARD_WEBHOOK_RETRY_BASE_MS` sets the base; tests shorten the rest).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The first wait after a failed attempt; each later one doubles (default 30 s).
    pub retry_base: Duration,
    /// The longest wait between two attempts (default 4 hours).
    pub retry_cap: Duration,
    /// How long a delivery is retried, from its first attempt (default 24 hours).
    pub retry_for: Duration,
    /// How long one attempt may take, connecting included (default 10 s).
    pub timeout: Duration,
    /// How often an idle worker looks for due deliveries (default 1 s).
    pub poll_every: Duration,
    /// How many deliveries this process sends at once (default 8).
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(4 * 3600),
            retry_for: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            poll_every: Duration::from_secs(1),
            concurrency: 8,
        }
    }
}

impl WebhookSettings {
    /// The wait after the `failed`-th failed attempt of a round (1 for the first), before jitter.
    pub fn backoff(&self, failed: u32) -> Duration {
        let doubled = self.retry_base.saturating_mul(2u32.saturating_pow(failed.saturating_sub(1).min(30)));
        doubled.min(self.retry_cap)
    }

    /// A wait drawn between half and all of [`Self::backoff`], so destinations that failed together are not
    /// retried together.
    fn jittered(&self, failed: u32) -> Duration {
        let full = self.backoff(failed);
        full / 2 + full.mul_f64(rand::rng().random_range(0.0..=0.5))
    }

    /// Where a delivery goes after a failed attempt at `now`, its round having begun at `first`.
    pub fn after_failure(&self, failed: u32, first: DateTime<Utc>, now: DateTime<Utc>) -> Next {
        let window = chrono::Duration::from_std(self.retry_for).unwrap_or(chrono::Duration::MAX);
        let deadline = first.checked_add_signed(window).unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now >= deadline {
            return Next::Failed;
        }
        let wait = chrono::Duration::from_std(self.jittered(failed)).unwrap_or(chrono::Duration::MAX);
        Next::RetryAt(now.checked_add_signed(wait).unwrap_or(deadline).min(deadline))
    }

    /// How long a claim is held: one attempt, and a margin for the database work around it.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(60)
    }
}

/// What one process needs to send deliveries.
struct Sender {
    pool: PgPool,
    keys: Arc<MasterKeys>,
    outbound: OutboundPolicy,
    http: reqwest::Client,
    settings: WebhookSettings,
    worker: uuid::Uuid,
}

/// Starts this process's delivery workers until shutdown: up to `settings.concurrency` deliveries at once.
pub fn spawn(
    background: &Background,
    pool: PgPool,
    keys: Arc<MasterKeys>,
    outbound: &OutboundPolicy,
    settings: WebhookSettings,
) {
    let http = reqwest::Client::builder()
        // Names resolve through the outbound policy at every connection (a host cannot be re-pointed inside).
        .dns_resolver(outbound.resolver())
        // A redirect could lead to an internal address; a receiver must answer at the URL it gave.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve the name itself, past the policy.
        .no_proxy()
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        .build()
        .expect("the HTTP client builds with rustls");
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let sender =
        Arc::new(Sender { pool, keys, outbound: outbound.clone(), http, settings, worker: uuid::Uuid::now_v7() });
    let tasks = background.clone();
    background.spawn(async move {
        let stopping = tasks.stopping().clone();
        loop {
            let permit = tokio::select! {
                () = stopping.cancelled() => return,
                permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            match claim(&sender).await {
                Ok(Some((delivery, tenant))) => {
                    let sender = Arc::clone(&sender);
                    tasks.spawn(async move {
                        if let Err(error) = attempt(&sender, delivery, tenant).await {
                            tracing::warn!(%delivery, %tenant, %error, "could not record a webhook attempt; retried");
                        }
                        drop(permit);
                    });
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not claim webhook deliveries"),
            }
            drop(permit);
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(sender.settings.poll_every) => {}
            }
        }
    });
}

async fn claim(sender: &Sender) -> Result<Option<(DeliveryId, TenantId)>, sqlx::Error> {
    let mut transaction = db::begin(&sender.pool).await?;
    let claimed = store::claim_due(&mut transaction, sender.worker, sender.settings.lease().as_secs_f64()).await?;
    transaction.commit().await?;
    Ok(claimed)
}

/// Why an attempt got no answer, as the log says it. A name the resolver refused (it resolves inside) is
/// the policy's refusal, not the receiver's failure to answer.
fn error_kind(error: &reqwest::Error) -> &'static str {
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if inner.downcast_ref::<crate::outbound::OutboundError>().is_some() {
            return "refused";
        }
        cause = inner.source();
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "request"
    }
}

/// One attempt of a claimed delivery, logged and settled.
async fn attempt(sender: &Sender, id: DeliveryId, tenant_id: TenantId) -> Result<(), sqlx::Error> {
    let mut transaction = db::begin_tenant(&sender.pool, tenant_id).await?;
    let work = store::work(&mut transaction, id).await?;
    transaction.commit().await?;
    let Some(work) = work.filter(|work| work.status == "pending" && work.claimed_by == Some(sender.worker)) else {
        return Ok(());
    };
    if !work.enabled {
        // Turned off while it waited: given up without an attempt (a redelivery queues it again).
        let mut transaction = db::begin_tenant(&sender.pool, tenant_id).await?;
        store::settle(&mut transaction, id, sender.worker, None, false, Next::Failed).await?;
        return transaction.commit().await;
    }
    let attempted_at = Utc::now();
    let started = Instant::now();
    let outcome = send(sender, tenant_id, &work, attempted_at).await;
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (status_code, error) = match outcome {
        Ok(status) => (Some(i32::from(status)), None),
        Err(kind) => (None, Some(kind)),
    };
    let delivered = status_code.is_some_and(|status| (200..300).contains(&status));
    let first = work.first_attempt_at.unwrap_or(attempted_at);
    let failed_in_round = u32::try_from(work.attempts).unwrap_or(0) + 1;
    let next =
        if delivered { Next::Delivered } else { sender.settings.after_failure(failed_in_round, first, Utc::now()) };

    let mut transaction = db::begin_tenant(&sender.pool, tenant_id).await?;
    let logged = store::NewAttempt { attempted_at, status_code, error, latency_ms };
    store::insert_attempt(&mut transaction, tenant_id, id, &logged).await?;
    let settled = store::settle(&mut transaction, id, sender.worker, Some(first), true, next).await?;
    if delivered {
        store::endpoint_succeeded(&mut transaction, work.endpoint_id).await?;
    } else if let Some((failures, failing_since)) =
        store::endpoint_failed(&mut transaction, work.endpoint_id, attempted_at).await?
        && settled
        && next == Next::Failed
        && failing_since <= first
        && store::disable_failing(&mut transaction, work.endpoint_id).await?
    {
        let by = Recorder { tenant_id, actor_type: "system", actor_id: None, request_id: None, trace_id: None };
        let entry = AuditEntry::new("webhook.disabled", "webhook", work.endpoint_id.to_string()).with_details(
            serde_json::json!({
                "reason": "failing", "consecutive_failures": failures, "failing_since": failing_since,
                "retry_window_secs": sender.settings.retry_for.as_secs(),
            }),
        );
        crate::audit::store::append(&mut transaction, &by, &entry).await?;
        tracing::warn!(%tenant_id, webhook = %work.endpoint_id, "disabled a failing webhook destination");
    }
    transaction.commit().await
}

/// POSTs the signed body; the status code, or the kind of failure when there was no answer.
async fn send(
    sender: &Sender,
    tenant_id: TenantId,
    work: &store::Work,
    at: DateTime<Utc>,
) -> Result<u16, &'static str> {
    let sealed = Sealed {
        key_id: work.secret_key_id.clone(),
        nonce: work.secret_nonce.clone(),
        ciphertext: work.secret_ciphertext.clone(),
    };
    let secret = sender.keys.open(&sealed, &super::associated_data(tenant_id, work.endpoint_id)).map_err(|error| {
        tracing::error!(%error, webhook = %work.endpoint_id, "a webhook secret did not open");
        "secret"
    })?;
    let message_id = sign::message_id(work.id.0);
    let timestamp = at.timestamp();
    let signature = sign::signature(&secret, &message_id, timestamp, &work.body).map_err(|_| "secret")?;
    let url = reqwest::Url::parse(&work.url).map_err(|_| "refused")?;
    // An IP literal never reaches the resolver: judged here, at every attempt.
    sender.outbound.check_when_connecting(&url).map_err(|_| "refused")?;
    let response = sender
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "Switchboard-Webhooks/1")
        .header("webhook-id", &message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(work.body.clone())
        .send()
        .await
        .map_err(|error| error_kind(&error))?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let settings = WebhookSettings::default();
        let waits: Vec<u64> = (1..=12).map(|failed| settings.backoff(failed).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400, 14400]);
        assert_eq!(settings.backoff(u32::MAX), settings.retry_cap);
    }

    #[test]
    fn retries_stay_within_the_window_and_end_at_it() {
        let settings = WebhookSettings::default();
        let first = Utc::now();
        let deadline = first + chrono::Duration::hours(24);
        for failed in 1..=20 {
            let Next::RetryAt(at) = settings.after_failure(failed, first, first) else { panic!("retried") };
            let wait = (at - first).to_std().unwrap();
            assert!(wait >= settings.backoff(failed) / 2 && wait <= settings.backoff(failed), "{failed}: {wait:?}");
        }
        let late = deadline - chrono::Duration::minutes(1);
        assert_eq!(settings.after_failure(12, first, late), Next::RetryAt(deadline));
        assert_eq!(settings.after_failure(13, first, deadline), Next::Failed);
    }

    #[test]
    fn a_whole_day_of_failures_is_a_bounded_number_of_attempts() {
        // With the default schedule and the longest waits, a day holds about fifteen attempts.
        let settings = WebhookSettings::default();
        let (mut elapsed, mut attempts) = (Duration::ZERO, 1);
        while elapsed < settings.retry_for {
            elapsed += settings.backoff(attempts);
            attempts += 1;
        }
        assert!((10..=20).contains(&attempts), "{attempts}");
    }
}
