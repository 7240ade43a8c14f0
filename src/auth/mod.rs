//! Who is asking: the operator, or a tenant's API key. A [`TenantContext`] is produced only here, by
//! authentication, and is the only way to reach tenant data.

pub mod widget;

use std::fmt;

use chrono::Utc;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq as _;

use crate::api_keys::{self, Scope};
use crate::ids::{ApiKeyId, TenantId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid, expired or revoked token")]
    InvalidToken,
    #[error("this key lacks the `{0}` scope")]
    MissingScope(Scope),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Who acted, as recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Operator,
    ApiKey(ApiKeyId),
    /// A person using the chat widget with a widget token: their own conversations only.
    EndUser(UserId),
}

impl Actor {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::ApiKey(_) => "api_key",
            Self::EndUser(_) => "user",
        }
    }

    pub fn id(self) -> Option<String> {
        match self {
            Self::Operator => None,
            Self::ApiKey(id) => Some(id.to_string()),
            Self::EndUser(id) => Some(id.to_string()),
        }
    }

    /// The key that acted, if a key did (usage and conversations record it).
    pub fn api_key_id(self) -> Option<ApiKeyId> {
        match self {
            Self::Operator | Self::EndUser(_) => None,
            Self::ApiKey(id) => Some(id),
        }
    }
}

/// An authenticated request acting for one tenant.
#[derive(Clone)]
pub struct TenantContext {
    tenant_id: TenantId,
    actor: Actor,
    scopes: Vec<Scope>,
    request_id: Option<String>,
}

impl fmt::Debug for TenantContext {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TenantContext")
            .field("tenant_id", &self.tenant_id)
            .field("actor", &self.actor)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TenantContext {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    pub fn actor(&self) -> Actor {
        self.actor
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// Succeeds when the credentials carry `scope`; `admin` does not imply the others. A widget token
    /// carries no scope: it passes only [`Self::require_conversations`].
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(&scope) { Ok(()) } else { Err(AuthError::MissingScope(scope)) }
    }

    /// For the conversation routes a widget user may use on their own conversations: `chat` scope, or
    /// a widget token (whose reach the domain then limits to that user's conversations).
    pub fn require_conversations(&self) -> Result<(), AuthError> {
        if self.end_user().is_some() { Ok(()) } else { self.require(Scope::Chat) }
    }

    /// The widget user this context acts for, if it comes from a widget token.
    pub fn end_user(&self) -> Option<UserId> {
        match self.actor {
            Actor::EndUser(user_id) => Some(user_id),
            _ => None,
        }
    }

    /// The operator acting inside a tenant it has just created.
    pub(crate) fn operator(tenant_id: TenantId, request_id: Option<String>) -> Self {
        Self { tenant_id, actor: Actor::Operator, scopes: vec![Scope::Admin], request_id }
    }
}

/// A widget token's context: its signature and expiry checked, acting for its end user only.
pub fn authenticate_widget_token(
    keys: &crate::crypto::MasterKeys,
    token: &str,
    request_id: Option<String>,
) -> Result<TenantContext, AuthError> {
    let claims = widget::verify(keys, token, Utc::now()).ok_or(AuthError::InvalidToken)?;
    Ok(TenantContext {
        tenant_id: claims.tenant_id,
        actor: Actor::EndUser(claims.user_id),
        scopes: Vec::new(),
        request_id,
    })
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
    let mut transaction = pool.begin().await?;
    let Some(stored) = api_keys::store::find_for_authentication(&mut transaction, prefix).await? else {
        return Err(AuthError::InvalidToken);
    };
    let presented = api_keys::hash_token(token);
    let hash_matches: bool = presented.as_slice().ct_eq(stored.secret_hash.as_slice()).into();
    let now = Utc::now();
    let usable = stored.revoked_at.is_none() && stored.expires_at.is_none_or(|expires_at| expires_at > now);
    if !hash_matches || !usable {
        return Err(AuthError::InvalidToken);
    }
    crate::db::set_tenant(&mut transaction, stored.tenant_id).await?;
    api_keys::store::record_use(&mut transaction, stored.id).await?;
    transaction.commit().await?;
    Ok(TenantContext {
        tenant_id: stored.tenant_id,
        actor: Actor::ApiKey(stored.id),
        scopes: stored.scopes,
        request_id,
    })
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
