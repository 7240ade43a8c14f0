//! Collections: named sets of a tenant's documents. A document belongs to one or more of them (`default`
//! unless it names others); API keys, widget tokens, conversations and single requests may be limited to
//! some of them ([`CollectionScope`]), and PostgreSQL hides every chunk outside a search's scope
//! (migration 0026). The shared corpus is one more collection, readable once the tenant enables it.

pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::audit::{self, AuditEntry};
use crate::auth::context::{CollectionScope, TenantContext};
use crate::db;
use crate::ids::CollectionId;

/// The collection a document joins when it names none.
pub const DEFAULT: &str = "default";

/// The shared corpus's collection, as named in migration 0026.
pub const SHARED_CORPUS: &str = "switchboard-docs";

/// The most collections one document, key or request may name.
pub const MAX_NAMED: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error("{0}")]
    Invalid(String),
    #[error("no collection named `{0}`")]
    Unknown(String),
    #[error("no such collection")]
    NotFound,
    #[error("a collection named `{0}` exists already")]
    NameTaken(String),
    #[error("the collection still holds {0} document(s); move or delete them first")]
    NotEmpty(i64),
    #[error("the shared corpus's collection belongs to the operator and cannot be changed")]
    Shared,
    /// A request asked for a collection its credentials or conversation may not search.
    #[error("these credentials may not search the collection `{0}`")]
    Forbidden(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A collection as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Collection {
    pub id: CollectionId,
    pub name: String,
    pub description: String,
    /// The shared corpus (the operator's, read-only), shown once the tenant has enabled it.
    pub shared: bool,
    pub document_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A collection's name: lowercase letters, digits, `-` and `_`, 1 to 63 characters.
pub fn parse_name(name: &str) -> Result<String, CollectionError> {
    let name = name.trim();
    let valid = (1..=63).contains(&name.len())
        && name.bytes().next().is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(CollectionError::Invalid(format!(
            "collection name `{name}` must be 1 to 63 lowercase letters, digits, `-` or `_`, starting with a letter or digit"
        )))
    }
}

/// The name of a new or renamed collection: valid, and not the shared corpus's.
fn parse_new_name(name: &str) -> Result<String, CollectionError> {
    let name = parse_name(name)?;
    if name == SHARED_CORPUS {
        return Err(CollectionError::Invalid(format!("the name `{SHARED_CORPUS}` is the shared corpus's")));
    }
    Ok(name)
}

/// Names as a request gives them: valid, at least one, at most [`MAX_NAMED`], duplicates dropped.
pub fn parse_names(names: &[String]) -> Result<Vec<String>, CollectionError> {
    if names.is_empty() || names.len() > MAX_NAMED {
        return Err(CollectionError::Invalid(format!("collections must name 1 to {MAX_NAMED} collections")));
    }
    let mut parsed = names.iter().map(|name| parse_name(name)).collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

fn parse_description(description: &str) -> Result<String, CollectionError> {
    if description.chars().count() > 1000 || description.contains('\0') {
        return Err(CollectionError::Invalid("description must be at most 1000 characters".to_owned()));
    }
    Ok(description.trim().to_owned())
}

/// The ids of the collections `names` name, among those the transaction's tenant can read; the first
/// unknown name is an error. `default` is made on first use.
pub async fn resolve(connection: &mut PgConnection, names: &[String]) -> Result<Vec<CollectionId>, CollectionError> {
    if names.iter().any(|name| name == DEFAULT) {
        store::ensure(&mut *connection, DEFAULT).await?;
    }
    let found = store::ids_by_name(&mut *connection, names).await?;
    if let Some(missing) = names.iter().find(|name| !found.iter().any(|(found, _)| found == *name)) {
        return Err(CollectionError::Unknown(missing.clone()));
    }
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

/// The scope a request asks for with `names` (`None`: all it may), within `outer`, the scope of its
/// credentials and conversation: asking for a collection outside it is refused, never widened.
pub async fn narrow(
    connection: &mut PgConnection,
    outer: &CollectionScope,
    names: Option<&[String]>,
) -> Result<CollectionScope, CollectionError> {
    let Some(names) = names else { return Ok(outer.clone()) };
    let names = parse_names(names)?;
    let ids = resolve(&mut *connection, &names).await?;
    if let Some((name, _)) = names.iter().zip(&ids).find(|(_, id)| !outer.allows(**id)) {
        return Err(CollectionError::Forbidden(name.clone()));
    }
    Ok(CollectionScope::Only(ids))
}

/// [`narrow`] in a transaction of its own.
pub async fn narrow_for(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    names: Option<&[String]>,
) -> Result<CollectionScope, CollectionError> {
    if names.is_none() {
        return Ok(context.collections().clone());
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let scope = narrow(&mut transaction, context.collections(), names).await?;
    transaction.commit().await?;
    Ok(scope)
}

/// The names of a scope's collections, as the API shows a scope (`None`: every collection).
pub async fn names_of(
    connection: &mut PgConnection,
    scope: &CollectionScope,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    match scope.to_stored() {
        None => Ok(None),
        Some(ids) => Ok(Some(store::names_by_id(connection, &ids).await?)),
    }
}

pub async fn list(pool: &sqlx::PgPool, context: &TenantContext) -> Result<Vec<Collection>, CollectionError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let collections = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(collections)
}

pub async fn get(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    id: CollectionId,
) -> Result<Collection, CollectionError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let collection = store::get(&mut transaction, id).await?.ok_or(CollectionError::NotFound)?;
    transaction.commit().await?;
    Ok(collection)
}

pub async fn create(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    name: &str,
    description: Option<&str>,
) -> Result<Collection, CollectionError> {
    let name = parse_new_name(name)?;
    let description = parse_description(description.unwrap_or_default())?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let created =
        db::none_if_unique_violation(store::insert(&mut transaction, context.tenant_id(), &name, &description).await)?
            .ok_or_else(|| CollectionError::NameTaken(name.clone()))?;
    let entry = AuditEntry::new("collection.created", "collection", created.id.to_string())
        .with_details(serde_json::json!({ "name": created.name }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(created)
}

/// Renames a collection or changes its description; scopes hold ids, so a rename narrows or widens nobody.
pub async fn update(
    pool: &sqlx::PgPool,
    context: &TenantContext,
    id: CollectionId,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Collection, CollectionError> {
    let name = name.map(parse_new_name).transpose()?;
    let description = description.map(parse_description).transpose()?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let before = store::get(&mut transaction, id).await?.ok_or(CollectionError::NotFound)?;
    if before.shared {
        return Err(CollectionError::Shared);
    }
    let taken = name.clone().unwrap_or_default();
    let updated = db::none_if_unique_violation(
        store::update(&mut transaction, id, name.as_deref(), description.as_deref()).await,
    )?
    .ok_or(CollectionError::NameTaken(taken))?;
    let entry = AuditEntry::new("collection.updated", "collection", id.to_string())
        .with_details(serde_json::json!({ "name": updated.name, "previous_name": before.name }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(updated)
}

/// Deletes an empty collection. Keys and conversations limited to it keep its id, which then matches no
/// document: deleting a collection narrows them, never widens them.
pub async fn delete(pool: &sqlx::PgPool, context: &TenantContext, id: CollectionId) -> Result<(), CollectionError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let collection = store::get(&mut transaction, id).await?.ok_or(CollectionError::NotFound)?;
    if collection.shared {
        return Err(CollectionError::Shared);
    }
    if collection.document_count > 0 {
        return Err(CollectionError::NotEmpty(collection.document_count));
    }
    store::delete(&mut transaction, id).await?;
    let entry = AuditEntry::new("collection.deleted", "collection", id.to_string())
        .with_details(serde_json::json!({ "name": collection.name }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["default", "public", "help-centre", "hr_2026", "9lives"] {
            assert_eq!(parse_name(good).unwrap(), good);
        }
        for bad in ["", "Public", "-x", "_x", "a b", "ü", &"x".repeat(64), "a/b"] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_names(&["b".to_owned(), "a".to_owned(), "b".to_owned()]).unwrap(), ["a", "b"]);
        assert!(parse_new_name(SHARED_CORPUS).is_err(), "a tenant's collection never shadows the shared one");
        assert!(parse_names(&[SHARED_CORPUS.to_owned()]).is_ok(), "while scopes may name it");
        assert!(parse_names(&[]).is_err());
    }
}
