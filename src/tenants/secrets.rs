//! Re-sealing every stored secret (tenants' provider keys, connector credentials and webhook secrets) under the current
//! master key, one tenant at a time, each in one transaction: one path for every kind of secret.

use sqlx::PgPool;

use crate::crypto::MasterKeys;
use crate::db;
use crate::providers::credentials::{self, CredentialError};
use crate::tools::{ToolError, connectors};
use crate::webhooks::{self, WebhookError};

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Connector(#[from] ToolError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Returns how many secrets were sealed again (none a second time: a secret the current key sealed stays).
pub async fn reseal_all(pool: &PgPool, keys: &MasterKeys) -> Result<usize, ResealError> {
    let mut resealed = 0;
    for tenant_id in super::store::all_ids(pool).await? {
        let mut transaction = db::begin_tenant(pool, tenant_id).await?;
        resealed += credentials::reseal(&mut transaction, keys, tenant_id).await?;
        resealed += connectors::reseal(&mut transaction, keys, tenant_id).await?;
        resealed += webhooks::reseal(&mut transaction, keys, tenant_id).await?;
        transaction.commit().await?;
    }
    Ok(resealed)
}
