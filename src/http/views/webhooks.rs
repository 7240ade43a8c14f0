//! Webhook destinations and their deliveries as the API shows them: never the signing secret, except once,
//! in the answer that creates the destination.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::webhooks::events::EventType;
use crate::webhooks::{Attempt, CreatedEndpoint, DeliveryLog, Endpoint, sign};

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: uuid::Uuid,
    pub url: String,
    /// The event types it receives.
    #[schema(value_type = Vec<EventType>)]
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// `failing` when Switchboard turned it off after every attempt failed for the whole retry window;
    /// null otherwise.
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row (any delivery), and since when; cleared by a delivered attempt.
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for WebhookView {
    fn from(endpoint: &Endpoint) -> Self {
        Self {
            id: endpoint.id.0,
            url: endpoint.url.clone(),
            events: endpoint.events.clone(),
            description: endpoint.description.clone(),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason.clone(),
            consecutive_failures: endpoint.consecutive_failures,
            failing_since: endpoint.failing_since,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// The answer to creating a destination: the destination and, this once, its signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and the base64 of 32 random bytes: verify each delivery's `webhook-signature` with it
    /// (Standard Webhooks). Shown this once.
    pub secret: String,
}

impl From<&CreatedEndpoint> for CreatedWebhookView {
    fn from(created: &CreatedEndpoint) -> Self {
        Self { webhook: WebhookView::from(&created.endpoint), secret: created.secret.expose_secret().to_owned() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

impl WebhookList {
    pub fn new(endpoints: &[Endpoint]) -> Self {
        Self { webhooks: endpoints.iter().map(WebhookView::from).collect() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status code; null when it did not answer.
    pub status_code: Option<i32>,
    /// Why there was no answer: `timeout`, `connect`, `refused` (the outbound policy), `request` or `secret`.
    pub error: Option<String>,
    pub latency_ms: i32,
}

impl From<&Attempt> for AttemptView {
    fn from(attempt: &Attempt) -> Self {
        Self {
            attempted_at: attempt.attempted_at,
            status_code: attempt.status_code,
            error: attempt.error.clone(),
            latency_ms: attempt.latency_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: uuid::Uuid,
    /// The `webhook-id` header of every attempt: the same across retries and redeliveries.
    pub message_id: String,
    #[schema(value_type = EventType)]
    pub event_type: String,
    /// `pending` (waiting for its next attempt), `delivered` or `failed` (given up).
    pub status: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
}

impl From<&DeliveryLog> for DeliveryView {
    fn from(log: &DeliveryLog) -> Self {
        let delivery = &log.delivery;
        Self {
            id: delivery.id.0,
            message_id: sign::message_id(delivery.id.0),
            event_type: delivery.event_type.clone(),
            status: delivery.status.clone(),
            next_attempt_at: (delivery.status == "pending").then_some(delivery.next_attempt_at),
            delivered_at: delivery.delivered_at,
            created_at: delivery.created_at,
            attempts: log.attempts.iter().map(AttemptView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

impl DeliveryList {
    pub fn new(logs: &[DeliveryLog]) -> Self {
        Self { deliveries: logs.iter().map(DeliveryView::from).collect() }
    }
}
