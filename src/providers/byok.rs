//! The tenant's operations on its own provider keys: validate, seal and store, show (never the key),
//! delete; each change audited without the key.

use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use super::ProviderKind;
use super::credentials::{self, CredentialInfo};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::crypto::MasterKeys;
use crate::db;
use crate::outbound::{OutboundError, OutboundPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ByokError {
    #[error("unknown provider `{0}`; expected openai, anthropic, gemini or openai_compatible")]
    UnknownProvider(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no key is stored for this provider")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A provider a tenant may store a key for (everything but the local answerer).
pub fn parse_provider(name: &str) -> Result<ProviderKind, ByokError> {
    match ProviderKind::parse(name) {
        Some(ProviderKind::Local) | None => Err(ByokError::UnknownProvider(name.chars().take(50).collect())),
        Some(kind) => Ok(kind),
    }
}

/// A validated credential to store.
#[derive(Debug)]
pub struct NewCredential {
    pub api_key: SecretString,
    pub base_url: Option<String>,
    pub default_model: Option<String>,
}

impl NewCredential {
    pub async fn parse(
        provider: ProviderKind,
        api_key: SecretString,
        base_url: Option<String>,
        default_model: Option<String>,
        outbound: &OutboundPolicy,
    ) -> Result<Self, ByokError> {
        let key = api_key.expose_secret();
        if key.trim().is_empty() || key.len() > 1000 || key.chars().any(char::is_control) {
            return Err(ByokError::Invalid("api_key must be 1 to 1000 printable characters".to_owned()));
        }
        if provider == ProviderKind::OpenAiCompatible && base_url.is_none() {
            return Err(ByokError::Invalid("an OpenAI-compatible provider needs a base_url".to_owned()));
        }
        if let Some(url) = &base_url {
            if url.len() > 2000 {
                return Err(ByokError::Invalid("base_url must be at most 2000 characters".to_owned()));
            }
            outbound.check_before_saving(url).await.map_err(|error| match error {
                // The base URL is stored, shown and audited as written: a secret in it would be in the clear.
                OutboundError::Credential(found) => ByokError::Invalid(format!(
                    "base_url carries a credential ({found}); put the key in api_key, which is sealed at rest, \
                     not in the URL, which is stored and shown in the clear"
                )),
                error => ByokError::Invalid(format!("base_url: {error}")),
            })?;
        }
        if default_model.as_deref().is_some_and(|model| model.trim().is_empty() || model.len() > 200) {
            return Err(ByokError::Invalid("default_model must be 1 to 200 characters".to_owned()));
        }
        Ok(Self { api_key, base_url: base_url.map(|url| url.trim_end_matches('/').to_owned()), default_model })
    }
}

pub async fn save(
    pool: &PgPool,
    context: &TenantContext,
    keys: &MasterKeys,
    provider: ProviderKind,
    credential: &NewCredential,
) -> Result<CredentialInfo, ByokError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let info = credentials::upsert(
        &mut transaction,
        keys,
        context.tenant_id(),
        provider,
        &credential.api_key,
        credential.base_url.as_deref(),
        credential.default_model.as_deref(),
    )
    .await?;
    let entry = AuditEntry::new("provider_credentials.saved", "provider", provider.as_str().to_owned())
        .with_details(serde_json::json!({ "base_url": info.base_url, "default_model": info.default_model }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(info)
}

pub async fn show(pool: &PgPool, context: &TenantContext, provider: ProviderKind) -> Result<CredentialInfo, ByokError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let info = credentials::info(&mut transaction, provider).await?.ok_or(ByokError::NotFound)?;
    transaction.commit().await?;
    Ok(info)
}

pub async fn remove(pool: &PgPool, context: &TenantContext, provider: ProviderKind) -> Result<(), ByokError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !super::store::delete(&mut transaction, provider).await? {
        return Err(ByokError::NotFound);
    }
    let entry = AuditEntry::new("provider_credentials.deleted", "provider", provider.as_str().to_owned());
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(())
}
