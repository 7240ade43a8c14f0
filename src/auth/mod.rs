//! Who is asking: the operator, or a tenant's API key. A [`TenantContext`] is produced only here, by
//! authentication, and is the only way to reach tenant data.

pub mod context;
pub mod widget;

use std::fmt;

use chrono::Utc;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq as _;

use crate::api_keys;
use crate::tenants::TenantStatus;
use context::{Actor, MissingScope, TenantContext};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid, expired or revoked token")]
    InvalidToken,
    #[error(transparent)]
    MissingScope(#[from] MissingScope),
    /// The token is good, but the operator has suspended its tenant.
    #[error("this tenant is suspended; its keys and widget tokens are refused until the operator resumes it")]
    TenantSuspended,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The context a bearer token stands for: a widget token or an API key, checked, of a tenant that is
/// not suspended. Every door authenticates tenants through here, so a suspension holds on all of them.
pub async fn authenticate(
    pool: &PgPool,
    keys: &crate::crypto::MasterKeys,
    token: &str,
    request_id: Option<String>,
) -> Result<TenantContext, AuthError> {
    if widget::is_widget_token(token) {
        authenticate_widget_token(pool, keys, token, request_id).await
    } else {
        authenticate_api_key(pool, token, request_id).await
    }
}

/// A widget token's context: its signature and expiry checked, its tenant not suspended, acting for its
/// end user only.
pub async fn authenticate_widget_token(
    pool: &PgPool,
    keys: &crate::crypto::MasterKeys,
    token: &str,
    request_id: Option<String>,
) -> Result<TenantContext, AuthError> {
    let claims = widget::verify(keys, token, Utc::now()).ok_or(AuthError::InvalidToken)?;
    // Tokens are not stored: a token outlives an erasure of its end user (or a deletion of its tenant)
    // until it expires, and must then stand for nobody.
    let mut transaction = crate::db::begin_tenant(pool, claims.tenant_id).await?;
    let status = crate::tenants::store::status(&mut transaction, claims.tenant_id).await?;
    let user_exists = crate::users::store::exists(&mut transaction, claims.user_id).await?;
    transaction.commit().await?;
    refuse_unless_active(status.filter(|_| user_exists))?;
    let collections = claims.collections();
    Ok(TenantContext::authenticated(
        claims.tenant_id,
        Actor::EndUser(claims.user_id),
        Vec::new(),
        collections,
        request_id,
    ))
}

/// A tenant deleted since its credential was made has no credentials left; a suspended one is refused.
fn refuse_unless_active(status: Option<TenantStatus>) -> Result<(), AuthError> {
    match status {
        Some(TenantStatus::Active) => Ok(()),
        Some(TenantStatus::Suspended) => Err(AuthError::TenantSuspended),
        None => Err(AuthError::InvalidToken),
    }
}

/// Finds the key a bearer token names and checks it; records its use.
pub async fn authenticate_api_key(
    pool: &PgPool,
    token: &str,
    request_id: Option<String>,
) -> Result<TenantContext, AuthError> {
    let Some(prefix) = api_keys::token_prefix(token) else {
        return Err(AuthError::InvalidToken);
    };
    let Some(stored) = api_keys::store::find_for_authentication(pool, prefix).await? else {
        return Err(AuthError::InvalidToken);
    };
    let presented = api_keys::hash_token(token);
    let hash_matches: bool = presented.as_slice().ct_eq(stored.secret_hash.as_slice()).into();
    let now = Utc::now();
    let usable = stored.revoked_at.is_none() && stored.expires_at.is_none_or(|expires_at| expires_at > now);
    if !hash_matches || !usable {
        return Err(AuthError::InvalidToken);
    }
    if stored.tenant_suspended {
        return Err(AuthError::TenantSuspended);
    }
    if stored.use_to_record {
        let mut transaction = crate::db::begin_tenant(pool, stored.tenant_id).await?;
        api_keys::store::record_use(&mut transaction, stored.id).await?;
        transaction.commit().await?;
    }
    Ok(TenantContext::authenticated(
        stored.tenant_id,
        Actor::ApiKey(stored.id),
        stored.scopes,
        stored.collections,
        request_id,
    ))
}

/// The operator's token, kept only as a digest so comparisons take constant time whatever its length.
#[derive(Clone)]
pub struct OperatorToken {
    digest: [u8; 32],
}

impl fmt::Debug for OperatorToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("OperatorToken(..)")
    }
}

impl OperatorToken {
    pub fn new(token: &SecretString) -> Self {
        Self { digest: Sha256::digest(token.expose_secret().as_bytes()).into() }
    }

    pub fn verify(&self, presented: &str) -> Result<(), AuthError> {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(presented.ct_eq(&self.digest)) { Ok(()) } else { Err(AuthError::InvalidToken) }
    }
}
