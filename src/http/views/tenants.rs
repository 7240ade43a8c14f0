//! The answer to creating a tenant: the tenant, and its first admin key with the token shown this once.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api_keys::CreatedApiKey;
use crate::auth::context::Scope;
use crate::ids::{ApiKeyId, TenantId};
use crate::tenants::Tenant;

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
