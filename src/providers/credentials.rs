//! Tenants' own provider keys (BYOK), sealed at rest, and the choice of credentials for a turn: the
//! tenant's key wins over the platform's; without either, a provider cannot be used.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgConnection;

use super::store::{self, CredentialRow};
use super::{Credentials, ProviderKind};
use crate::crypto::{CryptoError, MasterKeys, Sealed};
use crate::ids::TenantId;

/// A platform-wide key from the service's configuration (`OPENAI_API_KEY`, …).
#[derive(Debug, Clone)]
pub struct PlatformCredentials {
    pub api_key: SecretString,
    pub base_url: String,
}

pub type PlatformProviders = HashMap<ProviderKind, PlatformCredentials>;

/// What may be shown about a stored credential: never the key.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialInfo {
    pub provider: ProviderKind,
    pub base_url: Option<String>,
    pub default_model: Option<String>,
    pub key_configured: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CredentialRow {
    fn info(&self) -> Option<CredentialInfo> {
        Some(CredentialInfo {
            provider: ProviderKind::parse(&self.provider)?,
            base_url: self.base_url.clone(),
            default_model: self.default_model.clone(),
            key_configured: true,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    fn sealed(&self) -> Sealed {
        Sealed { key_id: self.key_id.clone(), nonce: self.key_nonce.clone(), ciphertext: self.key_ciphertext.clone() }
    }
}

/// A tenant's stored credential, opened for use.
#[derive(Debug, Clone)]
pub struct TenantCredential {
    pub api_key: SecretString,
    pub base_url: Option<String>,
    pub default_model: Option<String>,
}

/// Binds a ciphertext to its row.
fn associated_data(tenant_id: TenantId, provider: ProviderKind) -> String {
    format!("provider_credentials/{tenant_id}/{}", provider.as_str())
}

pub async fn upsert(
    connection: &mut PgConnection,
    keys: &MasterKeys,
    tenant_id: TenantId,
    provider: ProviderKind,
    api_key: &SecretString,
    base_url: Option<&str>,
    default_model: Option<&str>,
) -> Result<CredentialInfo, sqlx::Error> {
    let sealed = keys.seal(api_key, &associated_data(tenant_id, provider));
    let row = store::upsert(connection, tenant_id, provider, base_url, default_model, &sealed).await?;
    Ok(row.info().expect("the provider was just written"))
}

pub async fn info(
    connection: &mut PgConnection,
    provider: ProviderKind,
) -> Result<Option<CredentialInfo>, sqlx::Error> {
    Ok(store::find(connection, provider).await?.and_then(|row| row.info()))
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The tenant's own credential for `provider`, opened.
pub async fn tenant_credential(
    connection: &mut PgConnection,
    keys: &MasterKeys,
    tenant_id: TenantId,
    provider: ProviderKind,
) -> Result<Option<TenantCredential>, CredentialError> {
    let Some(row) = store::find(connection, provider).await? else {
        return Ok(None);
    };
    Ok(Some(open(keys, tenant_id, provider, row)?))
}

fn open(
    keys: &MasterKeys,
    tenant_id: TenantId,
    provider: ProviderKind,
    row: store::CredentialRow,
) -> Result<TenantCredential, CryptoError> {
    let api_key = keys.open(&row.sealed(), &associated_data(tenant_id, provider))?;
    Ok(TenantCredential { api_key, base_url: row.base_url, default_model: row.default_model })
}

/// Every key the tenant stored, read in one statement and opened only when one is used: what a turn
/// that names its model needs twice (which providers it can reach, then the chosen one's key).
pub struct StoredCredentials(Vec<store::CredentialRow>);

impl std::fmt::Debug for StoredCredentials {
    /// The providers only: a sealed key stays out of logs even sealed.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(self.0.iter().map(|row| &row.provider)).finish()
    }
}

impl StoredCredentials {
    /// The read of every key the tenant stored, for [`crate::db::read_together`]; [`Self::of_rows`]
    /// decodes its rows.
    pub const READ: &'static str = store::ALL;

    /// The keys from the rows [`Self::READ`] answered.
    pub fn of_rows(rows: &[sqlx::postgres::PgRow]) -> Result<Self, sqlx::Error> {
        Ok(Self(store::credentials_of(rows)?))
    }

    /// The providers a turn of this tenant can reach: those it has a key for, and those the platform has.
    pub fn reachable(&self, platform: &PlatformProviders) -> Vec<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .filter(|kind| platform.contains_key(kind) || self.0.iter().any(|row| row.provider == kind.as_str()))
            .collect()
    }

    /// The tenant's own credential for `provider`, opened.
    pub fn open(
        self,
        keys: &MasterKeys,
        tenant_id: TenantId,
        provider: ProviderKind,
    ) -> Result<Option<TenantCredential>, CryptoError> {
        let row = self.0.into_iter().find(|row| row.provider == provider.as_str());
        row.map(|row| open(keys, tenant_id, provider, row)).transpose()
    }
}

/// Chooses the credentials for a turn: the tenant's key, else the platform's, else none.
pub fn choose(
    provider: ProviderKind,
    tenant: Option<&TenantCredential>,
    platform: &PlatformProviders,
) -> Option<Credentials> {
    let default_base = provider.default_base_url();
    if let Some(tenant) = tenant {
        let base_url = tenant.base_url.clone().or_else(|| default_base.map(str::to_owned))?;
        return Some(Credentials { api_key: tenant.api_key.clone(), base_url, is_byok: true });
    }
    platform.get(&provider).map(|platform| Credentials {
        api_key: platform.api_key.clone(),
        base_url: platform.base_url.clone(),
        is_byok: false,
    })
}

/// Re-seals every stored credential under the current master key; returns how many rows changed.
pub async fn reseal(
    connection: &mut PgConnection,
    keys: &MasterKeys,
    tenant_id: TenantId,
) -> Result<usize, CredentialError> {
    let mut resealed_rows = 0;
    for row in store::credentials_to_reseal(connection, keys.current_id()).await? {
        let Some(provider) = ProviderKind::parse(&row.provider) else { continue };
        let Some(resealed) = keys.reseal(&row.sealed(), &associated_data(tenant_id, provider))? else { continue };
        store::set_sealed_key(connection, provider, &resealed).await?;
        resealed_rows += 1;
    }
    Ok(resealed_rows)
}
