//! API keys as the API shows them: never the secret, except the token once, in the answer that creates it.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api_keys::{ApiKey, CreatedApiKey};
use crate::auth::context::Scope;
use crate::ids::{ApiKeyId, PolicyProfileId};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ApiKeyId,
    pub name: String,
    /// The token's lookup part (`sb_<prefix>_…`), to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key's own monthly budget, a decimal string (never a float); null: the tenant's budget for every
    /// key applies.
    pub monthly_budget_usd: Option<String>,
    /// The collections (by name) the key may search; null: every collection of the tenant.
    pub collections: Option<Vec<String>>,
    /// The key's own policy profile; null: it inherits (its end user's group's, else the tenant's active).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub policy_profile_id: Option<PolicyProfileId>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            scopes: key.scopes.0.clone(),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            monthly_budget_usd: key.monthly_budget_usd.map(|usd| usd.to_string()),
            collections: key.collection_ids.as_ref().map(|_| key.collections.clone()),
            policy_profile_id: key.policy_profile_id,
        }
    }
}

/// The answer to creating a key: the key and, this once, its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyView {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The token (`sb_…`), shown this once.
    pub key: String,
}

impl From<&CreatedApiKey> for CreatedApiKeyView {
    fn from(created: &CreatedApiKey) -> Self {
        Self { api_key: ApiKeyView::from(&created.key), key: created.token.expose_secret().to_owned() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

impl ApiKeyList {
    pub fn new(keys: &[ApiKey]) -> Self {
        Self { api_keys: keys.iter().map(ApiKeyView::from).collect() }
    }
}
