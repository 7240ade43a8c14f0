//! Tenants' own provider keys (BYOK), sealed at rest, and the choice of credentials for a turn: the
//! tenant's key wins over the platform's; without either, a provider cannot be used.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

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

#[derive(sqlx::FromRow)]
struct CredentialRow {
    provider: String,
    base_url: Option<String>,
    default_model: Option<String>,
    key_ciphertext: Vec<u8>,
    key_nonce: Vec<u8>,
    key_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
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
    let row: CredentialRow = sqlx::query_as(
        "INSERT INTO provider_credentials \
         (tenant_id, provider, base_url, default_model, key_ciphertext, key_nonce, key_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, provider) DO UPDATE SET base_url = excluded.base_url, \
         default_model = excluded.default_model, key_ciphertext = excluded.key_ciphertext, \
         key_nonce = excluded.key_nonce, key_id = excluded.key_id, updated_at = now() \
         RETURNING provider, base_url, default_model, key_ciphertext, key_nonce, key_id, created_at, updated_at",
    )
    .bind(tenant_id)
    .bind(provider.as_str())
    .bind(base_url)
    .bind(default_model)
    .bind(&sealed.ciphertext)
    .bind(&sealed.nonce)
    .bind(&sealed.key_id)
    .fetch_one(connection)
    .await?;
    Ok(row.info().expect("the provider was just written"))
}

async fn find(connection: &mut PgConnection, provider: ProviderKind) -> Result<Option<CredentialRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, base_url, default_model, key_ciphertext, key_nonce, key_id, created_at, updated_at \
         FROM provider_credentials WHERE provider = $1",
    )
    .bind(provider.as_str())
    .fetch_optional(connection)
    .await
}

pub async fn info(
    connection: &mut PgConnection,
    provider: ProviderKind,
) -> Result<Option<CredentialInfo>, sqlx::Error> {
    Ok(find(connection, provider).await?.and_then(|row| row.info()))
}

pub async fn delete(connection: &mut PgConnection, provider: ProviderKind) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM provider_credentials WHERE provider = $1")
        .bind(provider.as_str())
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected() == 1)
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
    let Some(row) = find(connection, provider).await? else {
        return Ok(None);
    };
    let api_key = keys.open(&row.sealed(), &associated_data(tenant_id, provider))?;
    Ok(Some(TenantCredential { api_key, base_url: row.base_url, default_model: row.default_model }))
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
pub async fn rotate(pool: &PgPool, keys: &MasterKeys) -> Result<usize, CredentialError> {
    let tenants: Vec<TenantId> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(pool).await?;
    let mut rotated = 0;
    for tenant_id in tenants {
        let mut transaction = crate::db::begin_tenant(pool, tenant_id).await?;
        let rows: Vec<CredentialRow> = sqlx::query_as(
            "SELECT provider, base_url, default_model, key_ciphertext, key_nonce, key_id, created_at, updated_at \
             FROM provider_credentials WHERE key_id <> $1 FOR UPDATE",
        )
        .bind(keys.current_id())
        .fetch_all(&mut *transaction)
        .await?;
        for row in rows {
            let Some(provider) = ProviderKind::parse(&row.provider) else { continue };
            let aad = associated_data(tenant_id, provider);
            let api_key = keys.open(&row.sealed(), &aad)?;
            let sealed = keys.seal(&api_key, &aad);
            sqlx::query(
                "UPDATE provider_credentials SET key_ciphertext = $2, key_nonce = $3, key_id = $4 WHERE provider = $1",
            )
            .bind(provider.as_str())
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(&sealed.key_id)
            .execute(&mut *transaction)
            .await?;
            rotated += 1;
        }
        transaction.commit().await?;
    }
    Ok(rotated)
}
