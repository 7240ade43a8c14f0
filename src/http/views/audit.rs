//! The audit trail as the API shows it, a page at a time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::ids::AuditEventId;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    #[schema(value_type = uuid::Uuid)]
    pub id: AuditEventId,
    /// Who acted: `operator`, `api_key`, `user` (an end user) or `system`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// What happened, e.g. `api_key.created`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// What the action needs to be understood; its fields depend on the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub request_id: Option<String>,
    /// The OpenTelemetry trace the entry was made in, when the service exports traces.
    pub trace_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(event: &AuditEvent) -> Self {
        Self {
            id: event.id,
            actor_type: event.actor_type.clone(),
            actor_id: event.actor_id.clone(),
            action: event.action.clone(),
            target_type: event.target_type.clone(),
            target_id: event.target_id.clone(),
            details: event.details.clone(),
            request_id: event.request_id.clone(),
            trace_id: event.trace_id.clone(),
            created_at: event.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventList {
    pub audit_events: Vec<AuditEventView>,
    /// Where the next page starts; `null` on the last page.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub next_before: Option<AuditEventId>,
}

impl AuditEventList {
    pub fn new(events: &[AuditEvent], next_before: Option<AuditEventId>) -> Self {
        Self { audit_events: events.iter().map(AuditEventView::from).collect(), next_before }
    }
}
