//! Who acts, for which tenant, with which scopes: [`TenantContext`], made only by authentication and the
//! only way to reach tenant data. A leaf: every domain takes a context, so this file depends on nothing
//! but ids.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ApiKeyId, CollectionId, TenantId, UserId};

/// What an API key may do: `admin` (the tenant's settings, keys and records), `chat`, `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Admin,
    Chat,
    Runs,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Chat => "chat",
            Self::Runs => "runs",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Self::Admin),
            "chat" => Some(Self::Chat),
            "runs" => Some(Self::Runs),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The credentials lack a scope the action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this key lacks the `{0}` scope")]
pub struct MissingScope(pub Scope);

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

/// Which of its tenant's collections a caller, a conversation or a run may search. Scopes only narrow:
/// [`Self::within`] keeps what both allow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionScope {
    /// Every collection the tenant can read (its own, and the shared corpus once enabled).
    #[default]
    All,
    /// These only (none: nothing is searchable).
    Only(Vec<CollectionId>),
}

impl CollectionScope {
    /// As stored: `None` is every collection.
    pub fn from_stored(ids: Option<Vec<uuid::Uuid>>) -> Self {
        ids.map_or(Self::All, |ids| Self::Only(ids.into_iter().map(CollectionId).collect()))
    }

    pub fn to_stored(&self) -> Option<Vec<uuid::Uuid>> {
        match self {
            Self::All => None,
            Self::Only(ids) => Some(ids.iter().map(|id| id.0).collect()),
        }
    }

    pub fn allows(&self, id: CollectionId) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(&id),
        }
    }

    /// What both scopes allow.
    #[must_use]
    pub fn within(&self, outer: &Self) -> Self {
        match (self, outer) {
            (Self::All, other) | (other, Self::All) => other.clone(),
            (Self::Only(ids), outer) => Self::Only(ids.iter().copied().filter(|id| outer.allows(*id)).collect()),
        }
    }
}

/// An authenticated request acting for one tenant.
#[derive(Clone)]
pub struct TenantContext {
    tenant_id: TenantId,
    actor: Actor,
    scopes: Vec<Scope>,
    collections: CollectionScope,
    request_id: Option<String>,
}

impl fmt::Debug for TenantContext {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TenantContext")
            .field("tenant_id", &self.tenant_id)
            .field("actor", &self.actor)
            .field("scopes", &self.scopes)
            .field("collections", &self.collections)
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

    /// The collections these credentials may search.
    pub fn collections(&self) -> &CollectionScope {
        &self.collections
    }

    /// Succeeds when the credentials carry `scope`; `admin` does not imply the others. A widget token
    /// carries no scope: it passes only [`Self::require_conversations`].
    pub fn require(&self, scope: Scope) -> Result<(), MissingScope> {
        if self.scopes.contains(&scope) { Ok(()) } else { Err(MissingScope(scope)) }
    }

    /// For the conversation routes a widget user may use on their own conversations: `chat` scope, or
    /// a widget token (whose reach the domain then limits to that user's conversations).
    pub fn require_conversations(&self) -> Result<(), MissingScope> {
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
        Self {
            tenant_id,
            actor: Actor::Operator,
            scopes: vec![Scope::Admin],
            collections: CollectionScope::All,
            request_id,
        }
    }

    /// Made only by authentication (`auth`), once the credentials are verified.
    pub(super) fn authenticated(
        tenant_id: TenantId,
        actor: Actor,
        scopes: Vec<Scope>,
        collections: CollectionScope,
        request_id: Option<String>,
    ) -> Self {
        Self { tenant_id, actor, scopes, collections, request_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_within_another_keeps_only_what_both_allow() {
        let [a, b, c] = [CollectionId::new(), CollectionId::new(), CollectionId::new()];
        let only = |ids: &[CollectionId]| CollectionScope::Only(ids.to_vec());
        assert_eq!(CollectionScope::All.within(&CollectionScope::All), CollectionScope::All);
        assert_eq!(only(&[a]).within(&CollectionScope::All), only(&[a]));
        assert_eq!(CollectionScope::All.within(&only(&[a, b])), only(&[a, b]));
        assert_eq!(only(&[a, c]).within(&only(&[a, b])), only(&[a]));
        assert_eq!(only(&[c]).within(&only(&[a, b])), only(&[]), "nothing in common: nothing");
        assert!(!only(&[]).allows(a));
        assert_eq!(CollectionScope::from_stored(None), CollectionScope::All);
        assert_eq!(CollectionScope::from_stored(only(&[b]).to_stored()), only(&[b]));
    }
}
