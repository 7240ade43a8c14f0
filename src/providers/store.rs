//! SQL for tenants' own provider keys (`provider_credentials`). Every function runs inside a tenant-bound
//! transaction, except [`tenant_ids`], which lists the tenants that key rotation visits.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::ProviderKind;
use crate::crypto::Sealed;
use crate::ids::TenantId;

/// A credential as stored. Its columns are visible inside `providers` only: the key leaves through
/// `credentials`, opened for a turn, never as stored.
#[derive(sqlx::FromRow)]
pub struct CredentialRow {
    pub(super) provider: String,
    pub(super) base_url: Option<String>,
    pub(super) default_model: Option<String>,
    pub(super) key_ciphertext: Vec<u8>,
    pub(super) key_nonce: Vec<u8>,
    pub(super) key_id: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

/// Stores the tenant's key for `provider`, replacing the one it had.
pub async fn upsert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    provider: ProviderKind,
    base_url: Option<&str>,
    default_model: Option<&str>,
    sealed: &Sealed,
) -> Result<CredentialRow, sqlx::Error> {
    sqlx::query_as(
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
    .await
}

/// Every key the tenant stored, one a provider at most, for [`db::read_together`](crate::db::read_together);
/// [`credentials_of`] decodes its rows.
pub const ALL: &str = "SELECT provider, base_url, default_model, key_ciphertext, key_nonce, key_id, created_at, \
     updated_at FROM provider_credentials ORDER BY provider";

/// The keys from the rows [`ALL`] answered.
pub fn credentials_of(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<CredentialRow>, sqlx::Error> {
    rows.iter().map(sqlx::FromRow::from_row).collect()
}

pub async fn find(connection: &mut PgConnection, provider: ProviderKind) -> Result<Option<CredentialRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, base_url, default_model, key_ciphertext, key_nonce, key_id, created_at, updated_at \
         FROM provider_credentials WHERE provider = $1",
    )
    .bind(provider.as_str())
    .fetch_optional(connection)
    .await
}

pub async fn delete(connection: &mut PgConnection, provider: ProviderKind) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM provider_credentials WHERE provider = $1")
        .bind(provider.as_str())
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// The credentials another key sealed, locked so that a concurrent upsert is not overwritten with the key
/// it replaced.
pub async fn credentials_to_reseal(
    connection: &mut PgConnection,
    current_key_id: &str,
) -> Result<Vec<CredentialRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, base_url, default_model, key_ciphertext, key_nonce, key_id, created_at, updated_at \
         FROM provider_credentials WHERE key_id <> $1 FOR UPDATE",
    )
    .bind(current_key_id)
    .fetch_all(connection)
    .await
}

pub async fn set_sealed_key(
    connection: &mut PgConnection,
    provider: ProviderKind,
    sealed: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE provider_credentials SET key_ciphertext = $2, key_nonce = $3, key_id = $4 WHERE provider = $1")
        .bind(provider.as_str())
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(&sealed.key_id)
        .execute(connection)
        .await?;
    Ok(())
}
