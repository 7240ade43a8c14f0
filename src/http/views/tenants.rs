//! Tenants as the operator sees them: the answer to creating one (with its first admin key, the token
//! shown this once), and each tenant with its status and month-to-date usage.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api_keys::CreatedApiKey;
use crate::auth::context::Scope;
use crate::ids::{ApiKeyId, TenantId};
use crate::tenants::{Tenant, TenantStatus, TenantSummary};

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: TenantView,
    pub api_key: FirstApiKeyView,
}

impl TenantCreated {
    pub fn new(tenant: &Tenant, key: &CreatedApiKey) -> Self {
        Self { tenant: TenantView::from(tenant), api_key: FirstApiKeyView::from(key) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    #[schema(value_type = uuid::Uuid)]
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Tenant> for TenantView {
    fn from(tenant: &Tenant) -> Self {
        Self { id: tenant.id, name: tenant.name.clone(), slug: tenant.slug.clone(), created_at: tenant.created_at }
    }
}

/// Only what the operator needs to hand the key over; the key's dates are in `GET /api-keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirstApiKeyView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ApiKeyId,
    /// The API key's token (`sb_…`), shown this once.
    pub key: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
}

impl From<&CreatedApiKey> for FirstApiKeyView {
    fn from(created: &CreatedApiKey) -> Self {
        Self {
            id: created.key.id,
            key: created.token.expose_secret().to_owned(),
            name: created.key.name.clone(),
            prefix: created.key.prefix.clone(),
            scopes: created.key.scopes.0.clone(),
        }
    }
}

/// A tenant as the operator sees it: its row, its status, and what it used this month.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSummaryView {
    #[schema(value_type = uuid::Uuid)]
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    /// `active`, or `suspended`: its keys and widget tokens are refused and its queued runs wait.
    pub status: TenantStatus,
    /// Since when it is suspended; `null` while active.
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// What it used since the first day of this month (UTC).
    pub month_to_date: MonthUsageView,
}

impl From<&TenantSummary> for TenantSummaryView {
    fn from(summary: &TenantSummary) -> Self {
        let tenant = &summary.tenant;
        Self {
            id: tenant.id,
            name: tenant.name.clone(),
            slug: tenant.slug.clone(),
            status: tenant.status,
            suspended_at: tenant.suspended_at,
            created_at: tenant.created_at,
            month_to_date: MonthUsageView {
                from: summary.period_start,
                input_tokens: summary.usage.input_tokens,
                output_tokens: summary.usage.output_tokens,
                cost_usd: summary.usage.cost_usd.normalize(),
                unpriced_records: summary.usage.unpriced_records,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthUsageView {
    /// The first day counted (UTC).
    pub from: NaiveDate,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// US dollars, a decimal string: the priced records' cost.
    pub cost_usd: Decimal,
    /// Records the model catalog had no price for: not in `cost_usd`.
    pub unpriced_records: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantSummaryView>,
    /// Where the next page starts (`?before=`); `null` on the last page.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub next_before: Option<TenantId>,
}

impl TenantList {
    pub fn new(summaries: &[TenantSummary], next_before: Option<TenantId>) -> Self {
        Self { tenants: summaries.iter().map(TenantSummaryView::from).collect(), next_before }
    }
}
