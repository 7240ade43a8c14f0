//! SQL for API keys. Every function runs on a connection whose transaction is bound to a tenant, except
//! [`find_for_authentication`], which may see exactly the one key it names by prefix.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use super::{ApiKey, NewApiKey, Scopes};
use crate::auth::context::{CollectionScope, Scope};
use crate::ids::{ApiKeyId, PolicyProfileId, TenantId};

pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    new_key: &NewApiKey,
    prefix: &str,
    secret_hash: &[u8; 32],
    collections: &CollectionScope,
    policy_profile_id: Option<PolicyProfileId>,
) -> Result<ApiKey, sqlx::Error> {
    let scopes: Vec<&str> = new_key.scopes.iter().map(|scope| scope.as_str()).collect();
    sqlx::query_as(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes, expires_at, monthly_budget_usd, \
         collection_ids, policy_profile_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at, monthly_budget_usd, \
         policy_profile_id, collection_ids, ARRAY(SELECT c.name FROM collections AS c WHERE c.id = ANY(collection_ids) ORDER BY c.name) \
         AS collections",
    )
    .bind(ApiKeyId::new())
    .bind(tenant_id)
    .bind(&new_key.name)
    .bind(prefix)
    .bind(secret_hash.as_slice())
    .bind(scopes)
    .bind(new_key.expires_at)
    .bind(new_key.monthly_budget_usd)
    .bind(collections.to_stored())
    .bind(policy_profile_id)
    .fetch_one(connection)
    .await
}

pub async fn list(connection: &mut PgConnection) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at, monthly_budget_usd, \
         policy_profile_id, collection_ids, ARRAY(SELECT c.name FROM collections AS c WHERE c.id = ANY(collection_ids) ORDER BY c.name) \
         AS collections FROM api_keys ORDER BY created_at, id",
    )
    .fetch_all(connection)
    .await
}

pub async fn find(connection: &mut PgConnection, id: ApiKeyId) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at, monthly_budget_usd, \
         policy_profile_id, collection_ids, ARRAY(SELECT c.name FROM collections AS c WHERE c.id = ANY(collection_ids) ORDER BY c.name) \
         AS collections FROM api_keys WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(connection)
    .await
}

#[derive(sqlx::FromRow)]
struct BudgetChange {
    #[sqlx(flatten)]
    key: ApiKey,
    previous_monthly_budget_usd: Option<Decimal>,
}

/// Sets a key's own budget (`None`: none); the key as it is now and its budget before, or `None` when
/// the key does not exist (for this tenant). The row lock taken by the update makes the value read
/// before it the one this change replaced, however many admins change it at once.
pub async fn set_budget(
    connection: &mut PgConnection,
    id: ApiKeyId,
    budget: Option<Decimal>,
) -> Result<Option<(ApiKey, Option<Decimal>)>, sqlx::Error> {
    let changed: Option<BudgetChange> = sqlx::query_as(
        "UPDATE api_keys AS key SET monthly_budget_usd = $2 \
         FROM (SELECT id, monthly_budget_usd FROM api_keys WHERE id = $1 FOR UPDATE) AS before \
         WHERE key.id = before.id \
         RETURNING key.id, key.name, key.prefix, key.scopes, key.created_at, key.last_used_at, key.expires_at, \
         key.revoked_at, key.monthly_budget_usd, key.policy_profile_id, key.collection_ids, \
         ARRAY(SELECT c.name FROM collections AS c WHERE c.id = ANY(key.collection_ids) ORDER BY c.name) AS collections, \
         before.monthly_budget_usd AS previous_monthly_budget_usd",
    )
    .bind(id)
    .bind(budget)
    .fetch_optional(connection)
    .await?;
    Ok(changed.map(|changed| (changed.key, changed.previous_monthly_budget_usd)))
}

/// Sets `revoked_at` once. `None` when the key does not exist (for this tenant), else whether this call
/// revoked it.
pub async fn revoke(connection: &mut PgConnection, id: ApiKeyId) -> Result<Option<bool>, sqlx::Error> {
    let revoked_now = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(&mut *connection)
        .await?
        .rows_affected()
        == 1;
    if revoked_now {
        return Ok(Some(true));
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)")
        .bind(id)
        .fetch_one(connection)
        .await?;
    Ok(exists.then_some(false))
}

/// What authentication needs to know about a key.
#[derive(Debug)]
pub struct StoredKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub secret_hash: Vec<u8>,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether the operator suspended its tenant, read with the key: one query authenticates.
    pub tenant_suspended: bool,
    pub collections: CollectionScope,
    /// Whether this use should be recorded ([`record_use`]): the key's last recorded use is a minute old
    /// or more (or none), by the database's clock.
    pub use_to_record: bool,
}

#[derive(sqlx::FromRow)]
struct StoredKeyRow {
    id: ApiKeyId,
    tenant_id: TenantId,
    secret_hash: Vec<u8>,
    #[sqlx(try_from = "Vec<String>")]
    scopes: Scopes,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    tenant_suspended: bool,
    collection_ids: Option<Vec<uuid::Uuid>>,
    use_to_record: bool,
}

/// Finds a key by prefix before any tenant is known, in one statement: `api_key_for_authentication`
/// (migration 0052) names the prefix to the `api_key_lookup` policy, which shows that key alone, and reads
/// it with its tenant's status.
pub async fn find_for_authentication(pool: &PgPool, prefix: &str) -> Result<Option<StoredKey>, sqlx::Error> {
    let row: Option<StoredKeyRow> = sqlx::query_as(
        "SELECT id, tenant_id, secret_hash, scopes, expires_at, revoked_at, collection_ids, tenant_suspended, \
                use_to_record \
         FROM api_key_for_authentication($1)",
    )
    .bind(prefix)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| StoredKey {
        id: row.id,
        tenant_id: row.tenant_id,
        secret_hash: row.secret_hash,
        scopes: row.scopes.0,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        tenant_suspended: row.tenant_suspended,
        collections: CollectionScope::from_stored(row.collection_ids),
        use_to_record: row.use_to_record,
    }))
}

/// Records that a key was used; at most one write a minute per key, so busy keys do not write per request.
pub async fn record_use(connection: &mut PgConnection, id: ApiKeyId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now() \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Limits a key to `collections`; the key as it is now and its scope before, or `None` when the key
/// does not exist (for this tenant).
pub async fn set_collections(
    connection: &mut PgConnection,
    id: ApiKeyId,
    collections: &CollectionScope,
) -> Result<Option<(ApiKey, CollectionScope)>, sqlx::Error> {
    let before: Option<Option<Vec<uuid::Uuid>>> =
        sqlx::query_scalar("SELECT collection_ids FROM api_keys WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
    let Some(before) = before else { return Ok(None) };
    sqlx::query("UPDATE api_keys SET collection_ids = $2 WHERE id = $1")
        .bind(id)
        .bind(collections.to_stored())
        .execute(&mut *connection)
        .await?;
    let key = find(connection, id).await?;
    Ok(key.map(|key| (key, CollectionScope::from_stored(before))))
}

/// Names the key's own policy profile (`None`: it inherits); the key as it is now and the profile it
/// named before, or `None` when the key does not exist (for this tenant). A profile id the tenant has no
/// profile of is a foreign key violation.
pub async fn set_policy_profile(
    connection: &mut PgConnection,
    id: ApiKeyId,
    profile: Option<PolicyProfileId>,
) -> Result<Option<(ApiKey, Option<PolicyProfileId>)>, sqlx::Error> {
    let before: Option<Option<PolicyProfileId>> =
        sqlx::query_scalar("SELECT policy_profile_id FROM api_keys WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
    let Some(before) = before else { return Ok(None) };
    sqlx::query("UPDATE api_keys SET policy_profile_id = $2 WHERE id = $1")
        .bind(id)
        .bind(profile)
        .execute(&mut *connection)
        .await?;
    let key = find(connection, id).await?;
    Ok(key.map(|key| (key, before)))
}
