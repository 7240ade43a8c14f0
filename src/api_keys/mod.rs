//! Tenant API keys: `sb_<prefix>_<secret>`. The prefix finds the row; the whole token is stored only as
//! a SHA-256 digest (the secret has 256 bits of entropy, so a slow hash would add latency and no safety).
//! A key is shown once, at creation. A key may have a monthly budget of its own, which replaces the
//! tenant's budget for every key (`budgets`). A key may name a policy profile of its own, which replaces
//! the profile its runs would otherwise inherit (`policy::store::effective`).

pub mod store;

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString as _};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::PgConnection;

use crate::audit::{self, AuditEntry};
use crate::auth::context::{Scope, TenantContext};
use crate::ids::{ApiKeyId, PolicyProfileId};

const TOKEN_PREFIX: &str = "sb_";
const PREFIX_LEN: usize = 12;
const SECRET_LEN: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such API key")]
    NotFound,
    /// The key would reach a collection that does not exist, or one its maker may not search.
    #[error(transparent)]
    Collection(#[from] crate::collections::CollectionError),
    /// The key was given a policy profile id the tenant has no profile of.
    #[error("no policy profile of this tenant has the id {0}")]
    UnknownProfile(PolicyProfileId),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A foreign key violation on the key's profile means the tenant has no such profile.
fn unknown_profile_if_missing<T>(
    result: Result<T, sqlx::Error>,
    id: Option<PolicyProfileId>,
) -> Result<T, ApiKeyError> {
    result.map_err(|error| match (&error, id) {
        (sqlx::Error::Database(database), Some(id)) if database.is_foreign_key_violation() => {
            ApiKeyError::UnknownProfile(id)
        }
        _ => ApiKeyError::Database(error),
    })
}

/// What may be shown about a key: everything but its secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    #[sqlx(try_from = "Vec<String>")]
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key's own monthly budget in US dollars; `None`: the tenant's budget for every key applies.
    pub monthly_budget_usd: Option<Decimal>,
    /// The collections the key may search (`None`: every one), by id and by name.
    pub collection_ids: Option<Vec<uuid::Uuid>>,
    pub collections: Vec<String>,
    /// The key's own policy profile; `None`: it inherits (its end user's group's, else the tenant's).
    pub policy_profile_id: Option<PolicyProfileId>,
}

/// A non-empty set of scopes, as stored in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scopes(pub Vec<Scope>);

impl TryFrom<Vec<String>> for Scopes {
    type Error = ApiKeyError;

    fn try_from(values: Vec<String>) -> Result<Self, Self::Error> {
        let scopes = values
            .iter()
            .map(|value| Scope::parse(value).ok_or_else(|| ApiKeyError::Invalid(format!("unknown scope `{value}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(scopes))
    }
}

/// A validated request for a new key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub monthly_budget_usd: Option<Decimal>,
    /// The collections (by name) it may search, within its creator's; `None`: all its creator may.
    pub collections: Option<Vec<String>>,
}

impl NewApiKey {
    pub fn parse(name: &str, scopes: &[String], expires_at: Option<DateTime<Utc>>) -> Result<Self, ApiKeyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiKeyError::Invalid("name must be 1 to 200 characters".to_owned()));
        }
        if scopes.is_empty() {
            return Err(ApiKeyError::Invalid("scopes must name at least one of admin, chat, runs".to_owned()));
        }
        let mut parsed = Scopes::try_from(scopes.to_vec())?.0;
        parsed.sort_by_key(|scope| scope.as_str());
        parsed.dedup();
        if expires_at.is_some_and(|expires_at| expires_at <= Utc::now()) {
            return Err(ApiKeyError::Invalid("expires_at must be in the future".to_owned()));
        }
        Ok(Self { name: name.to_owned(), scopes: parsed, expires_at, monthly_budget_usd: None, collections: None })
    }

    /// Limits the key to these collections (by name).
    #[must_use]
    pub fn in_collections(mut self, names: Option<Vec<String>>) -> Self {
        self.collections = names;
        self
    }

    /// Gives the key a monthly budget of its own, as the API sends it (see [`parse_budget`]).
    pub fn with_budget(mut self, monthly_budget_usd: &serde_json::Value) -> Result<Self, ApiKeyError> {
        self.monthly_budget_usd = parse_budget(monthly_budget_usd)?;
        Ok(self)
    }
}

/// A change to a key, given as a JSON object: its budget, its collections, its policy profile (`null`
/// removes each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyChange {
    /// `None`: left as it is; `Some(None)`: the tenant's budget for every key applies again.
    pub monthly_budget_usd: Option<Option<Decimal>>,
    /// `None`: left as it is; `Some(None)`: every collection its changer may search; else these names.
    pub collections: Option<Option<Vec<String>>>,
    /// `None`: left as it is; `Some(None)`: the key inherits its profile again; else this profile.
    pub policy_profile_id: Option<Option<PolicyProfileId>>,
}

impl ApiKeyChange {
    pub fn parse(fields: &serde_json::Map<String, serde_json::Value>) -> Result<Self, ApiKeyError> {
        let mut change = Self::default();
        for (name, value) in fields {
            match name.as_str() {
                "monthly_budget_usd" => change.monthly_budget_usd = Some(parse_budget(value)?),
                "collections" => change.collections = Some(parse_collections(value)?),
                "policy_profile_id" => change.policy_profile_id = Some(parse_profile(value)?),
                _ => {
                    return Err(ApiKeyError::Invalid(format!(
                        "unknown field `{name}`; only `monthly_budget_usd`, `collections` and `policy_profile_id` \
                         can be changed"
                    )));
                }
            }
        }
        Ok(change)
    }
}

/// A key's collections: null (all) or an array of names.
fn parse_collections(value: &serde_json::Value) -> Result<Option<Vec<String>>, ApiKeyError> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| ApiKeyError::Invalid("collections must be null or an array of names".to_owned())),
        _ => Err(ApiKeyError::Invalid("collections must be null or an array of names".to_owned())),
    }
}

/// A key's policy profile: null (inherit) or a profile's id.
fn parse_profile(value: &serde_json::Value) -> Result<Option<PolicyProfileId>, ApiKeyError> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) => uuid::Uuid::parse_str(text)
            .map(|id| Some(PolicyProfileId(id)))
            .map_err(|_| ApiKeyError::Invalid("policy_profile_id must be null or a policy profile's id".to_owned())),
        _ => Err(ApiKeyError::Invalid("policy_profile_id must be null or a policy profile's id".to_owned())),
    }
}

/// A key's budget: a decimal string or a number of US dollars, or null for none.
fn parse_budget(value: &serde_json::Value) -> Result<Option<Decimal>, ApiKeyError> {
    crate::budgets::parse_amount(value).map_err(|invalid| ApiKeyError::Invalid(format!("monthly_budget_usd {invalid}")))
}

/// A budget as the audit trail records it: a decimal string, or null.
fn audited_budget(budget: Option<Decimal>) -> serde_json::Value {
    budget.map_or(serde_json::Value::Null, |usd| usd.normalize().to_string().into())
}

/// A key just created: its secret token exists only in this value.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub token: SecretString,
}

/// Creates a key for the context's tenant, records the audit event, and returns the token once.
pub async fn create(
    connection: &mut PgConnection,
    context: &TenantContext,
    new_key: &NewApiKey,
) -> Result<CreatedApiKey, ApiKeyError> {
    create_with_profile(connection, context, new_key, None).await
}

/// [`create`], the key naming a policy profile of its own (`None`: it inherits).
pub async fn create_with_profile(
    connection: &mut PgConnection,
    context: &TenantContext,
    new_key: &NewApiKey,
    policy_profile_id: Option<PolicyProfileId>,
) -> Result<CreatedApiKey, ApiKeyError> {
    let prefix = Alphanumeric.sample_string(&mut rand::rng(), PREFIX_LEN);
    let secret = Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN);
    let token = format!("{TOKEN_PREFIX}{prefix}_{secret}");
    // A key never reaches further than the key that makes it.
    let collections =
        crate::collections::narrow(&mut *connection, context.collections(), new_key.collections.as_deref()).await?;
    let (tenant_id, hash) = (context.tenant_id(), hash_token(&token));
    let inserted =
        store::insert(&mut *connection, tenant_id, new_key, &prefix, &hash, &collections, policy_profile_id).await;
    let key = unknown_profile_if_missing(inserted, policy_profile_id)?;
    audit::record(
        &mut *connection,
        context,
        &AuditEntry::new("api_key.created", "api_key", key.id.to_string()).with_details(serde_json::json!({
            "name": key.name,
            "prefix": key.prefix,
            "scopes": key.scopes,
            "expires_at": key.expires_at,
            "monthly_budget_usd": audited_budget(key.monthly_budget_usd),
            "collections": key.collection_ids.as_ref().map(|_| &key.collections),
            "policy_profile_id": key.policy_profile_id,
        })),
    )
    .await?;
    Ok(CreatedApiKey { key, token: SecretString::from(token) })
}

/// Revokes a key at once: the next request with it is refused. Revoking a revoked key changes nothing.
pub async fn revoke(connection: &mut PgConnection, context: &TenantContext, id: ApiKeyId) -> Result<(), ApiKeyError> {
    let revoked = store::revoke(&mut *connection, id).await?.ok_or(ApiKeyError::NotFound)?;
    if revoked {
        audit::record(&mut *connection, context, &AuditEntry::new("api_key.revoked", "api_key", id.to_string()))
            .await?;
    }
    Ok(())
}

/// Changes a key (its collections, policy profile, budget), audited with the value before and after. A change that names nothing
/// leaves the key as it is and records nothing.
pub async fn update(
    connection: &mut PgConnection,
    context: &TenantContext,
    id: ApiKeyId,
    change: &ApiKeyChange,
) -> Result<ApiKey, ApiKeyError> {
    if let Some(names) = &change.collections {
        let scope = crate::collections::narrow(&mut *connection, context.collections(), names.as_deref()).await?;
        let (key, before) = store::set_collections(&mut *connection, id, &scope).await?.ok_or(ApiKeyError::NotFound)?;
        let before = crate::collections::names_of(&mut *connection, &before).await?;
        let entry = AuditEntry::new("api_key.updated", "api_key", id.to_string()).with_details(serde_json::json!({
            "collections": key.collection_ids.as_ref().map(|_| &key.collections),
            "previous_collections": before,
        }));
        audit::record(&mut *connection, context, &entry).await?;
    }
    if let Some(profile) = change.policy_profile_id {
        let set = store::set_policy_profile(&mut *connection, id, profile).await;
        let (key, before) = unknown_profile_if_missing(set, profile)?.ok_or(ApiKeyError::NotFound)?;
        let entry = AuditEntry::new("api_key.updated", "api_key", id.to_string()).with_details(serde_json::json!({
            "policy_profile_id": key.policy_profile_id,
            "previous_policy_profile_id": before,
        }));
        audit::record(&mut *connection, context, &entry).await?;
    }
    let Some(budget) = change.monthly_budget_usd else {
        return store::find(&mut *connection, id).await?.ok_or(ApiKeyError::NotFound);
    };
    let (key, before) = store::set_budget(&mut *connection, id, budget).await?.ok_or(ApiKeyError::NotFound)?;
    let entry = AuditEntry::new("api_key.updated", "api_key", id.to_string()).with_details(serde_json::json!({
        "monthly_budget_usd": audited_budget(key.monthly_budget_usd),
        "previous_monthly_budget_usd": audited_budget(before),
    }));
    audit::record(&mut *connection, context, &entry).await?;
    Ok(key)
}

/// Changes a key in its own transaction.
pub async fn update_for(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    id: ApiKeyId,
    change: &ApiKeyChange,
) -> Result<ApiKey, ApiKeyError> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let key = update(&mut transaction, context, id, change).await?;
    transaction.commit().await?;
    Ok(key)
}

/// Creates a key in its own transaction (the API's path; tenant creation uses [`create`] inside its own).
pub async fn create_for(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    new_key: &NewApiKey,
    policy_profile_id: Option<PolicyProfileId>,
) -> Result<CreatedApiKey, ApiKeyError> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let created = create_with_profile(&mut transaction, context, new_key, policy_profile_id).await?;
    transaction.commit().await?;
    Ok(created)
}

/// The tenant's keys, without their secrets.
pub async fn list(pool: &sqlx::PgPool, context: &TenantContext) -> Result<Vec<ApiKey>, ApiKeyError> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let keys = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(keys)
}

/// Revokes a key in its own transaction.
pub async fn revoke_for(pool: &sqlx::PgPool, context: &TenantContext, id: ApiKeyId) -> Result<(), ApiKeyError> {
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    revoke(&mut transaction, context, id).await?;
    transaction.commit().await?;
    Ok(())
}

/// The lookup prefix of a well-formed token, or `None` for anything else.
pub fn token_prefix(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let well_formed = prefix.len() == PREFIX_LEN
        && secret.len() == SECRET_LEN
        && prefix.bytes().chain(secret.bytes()).all(|byte| byte.is_ascii_alphanumeric());
    well_formed.then_some(prefix)
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_have_a_prefix() {
        let secret = "a".repeat(SECRET_LEN);
        assert_eq!(token_prefix(&format!("sb_ABCDEFGHIJ12_{secret}")), Some("ABCDEFGHIJ12"));
        for token in [
            String::new(),
            "sb_".to_owned(),
            format!("sk_ABCDEFGHIJ12_{secret}"),
            format!("sb_ABCDEFGHIJ1_{secret}"),
            format!("sb_ABCDEFGHIJ12_{secret}x"),
            format!("sb_ABCDEFGHIJ12_{}!", "a".repeat(SECRET_LEN - 1)),
        ] {
            assert_eq!(token_prefix(&token), None, "{token}");
        }
    }

    #[test]
    fn new_keys_need_a_name_and_known_scopes() {
        let scopes = |list: &[&str]| list.iter().map(|scope| (*scope).to_owned()).collect::<Vec<_>>();
        assert!(NewApiKey::parse("ci", &scopes(&["chat"]), None).is_ok());
        assert!(NewApiKey::parse("  ", &scopes(&["chat"]), None).is_err());
        assert!(NewApiKey::parse("ci", &[], None).is_err());
        assert!(NewApiKey::parse("ci", &scopes(&["root"]), None).is_err());
        assert!(NewApiKey::parse("ci", &scopes(&["chat"]), Some(Utc::now() - chrono::Duration::hours(1))).is_err());
        let parsed = NewApiKey::parse("ci", &scopes(&["runs", "chat", "runs"]), None).unwrap();
        assert_eq!(parsed.scopes, vec![Scope::Chat, Scope::Runs]);
        assert_eq!(parsed.monthly_budget_usd, None);
        let budgeted = parsed.clone().with_budget(&serde_json::json!("12.50")).unwrap();
        assert_eq!(budgeted.monthly_budget_usd, Some(Decimal::new(125, 1)));
        assert!(parsed.with_budget(&serde_json::json!(-1)).is_err());
    }

    #[test]
    fn a_change_names_the_budget_the_collections_or_the_policy_profile() {
        let fields = |value: serde_json::Value| value.as_object().unwrap().clone();
        let change = ApiKeyChange::parse(&fields(serde_json::json!({"monthly_budget_usd": "12.50"}))).unwrap();
        assert_eq!(change.monthly_budget_usd, Some(Some(Decimal::new(125, 1))));
        let cleared = ApiKeyChange::parse(&fields(serde_json::json!({"monthly_budget_usd": null}))).unwrap();
        assert_eq!(cleared.monthly_budget_usd, Some(None));
        assert_eq!(ApiKeyChange::parse(&fields(serde_json::json!({}))).unwrap(), ApiKeyChange::default());
        let id = uuid::Uuid::now_v7();
        let named = ApiKeyChange::parse(&fields(serde_json::json!({"policy_profile_id": id.to_string()}))).unwrap();
        assert_eq!(named.policy_profile_id, Some(Some(PolicyProfileId(id))));
        let inherits = ApiKeyChange::parse(&fields(serde_json::json!({"policy_profile_id": null}))).unwrap();
        assert_eq!(inherits.policy_profile_id, Some(None));
        for bad in [
            serde_json::json!({"policy_profile_id": "support"}),
            serde_json::json!({"policy_profile_id": 7}),
            serde_json::json!({"monthly_budget_usd": "ten"}),
            serde_json::json!({"monthly_budget_usd": -0.5}),
            serde_json::json!({"name": "renamed"}),
        ] {
            assert!(matches!(ApiKeyChange::parse(&fields(bad.clone())), Err(ApiKeyError::Invalid(_))), "{bad}");
        }
    }
}
