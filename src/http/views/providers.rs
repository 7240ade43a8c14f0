//! A tenant's own provider credential as the API shows it: never the key, only that one is configured.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::providers::ProviderKind;
use crate::providers::credentials::CredentialInfo;

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// The provider, as the path spells it.
    pub provider: ProviderKind,
    pub base_url: Option<String>,
    pub default_model: Option<String>,
    /// Always true: a key is stored (it is never shown).
    pub key_configured: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&CredentialInfo> for CredentialView {
    fn from(info: &CredentialInfo) -> Self {
        Self {
            provider: info.provider,
            base_url: info.base_url.clone(),
            default_model: info.default_model.clone(),
            key_configured: info.key_configured,
            created_at: info.created_at,
            updated_at: info.updated_at,
        }
    }
}
