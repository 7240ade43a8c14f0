//! SQL for collections; every function runs inside a tenant-bound transaction, where row-level security
//! shows the tenant's own collections and the shared corpus's once the tenant has enabled it.

use sqlx::PgConnection;

use super::Collection;
use crate::ids::{CollectionId, TenantId};

const COLUMNS: &str = "c.id, c.name, c.description, c.tenant_id <> current_tenant_id() AS shared, \
     (SELECT count(*) FROM documents AS d WHERE d.collection_ids @> ARRAY[c.id]) AS document_count, \
     c.created_at, c.updated_at";

pub async fn list(connection: &mut PgConnection) -> Result<Vec<Collection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM collections AS c ORDER BY shared, c.name")))
        .fetch_all(connection)
        .await
}

pub async fn get(connection: &mut PgConnection, id: CollectionId) -> Result<Option<Collection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM collections AS c WHERE c.id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    name: &str,
    description: &str,
) -> Result<Collection, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH c AS (INSERT INTO collections (id, tenant_id, name, description) VALUES ($1, $2, $3, $4) RETURNING *) \
         SELECT {COLUMNS} FROM c"
    )))
    .bind(CollectionId::new())
    .bind(tenant_id)
    .bind(name)
    .bind(description)
    .fetch_one(connection)
    .await
}

/// The tenant's collection `name`, made when it does not exist (two callers at once make it once).
pub async fn ensure(connection: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO collections (id, tenant_id, name) VALUES ($1, current_tenant_id(), $2) \
         ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .bind(CollectionId::new())
    .bind(name)
    .execute(connection)
    .await?;
    Ok(())
}

/// The collections of `names` the tenant can read, by name; the tenant's own first when the shared
/// corpus has a collection of the same name.
pub async fn ids_by_name(
    connection: &mut PgConnection,
    names: &[String],
) -> Result<Vec<(String, CollectionId)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (name) name, id FROM collections WHERE name = ANY($1) \
         ORDER BY name, tenant_id <> current_tenant_id()",
    )
    .bind(names)
    .fetch_all(connection)
    .await
}

/// The names of the collections `ids` names that still exist, in order.
pub async fn names_by_id(connection: &mut PgConnection, ids: &[uuid::Uuid]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM collections WHERE id = ANY($1) ORDER BY name")
        .bind(ids)
        .fetch_all(connection)
        .await
}

pub async fn update(
    connection: &mut PgConnection,
    id: CollectionId,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Collection, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH c AS ( \
             UPDATE collections SET name = coalesce($2, name), description = coalesce($3, description), \
                 updated_at = now() \
             WHERE id = $1 AND tenant_id = current_tenant_id() RETURNING * \
         ) SELECT {COLUMNS} FROM c"
    )))
    .bind(id)
    .bind(name)
    .bind(description)
    .fetch_one(connection)
    .await
}

pub async fn delete(connection: &mut PgConnection, id: CollectionId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM collections WHERE id = $1 AND tenant_id = current_tenant_id()")
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Limits the rest of the transaction's reads of documents, chunks and vectors to `scope` (the
/// `within_searchable_collections` policies read the setting).
pub async fn limit_reads(
    connection: &mut PgConnection,
    scope: &crate::auth::context::CollectionScope,
) -> Result<(), sqlx::Error> {
    let setting = scope.to_stored().map_or_else(String::new, |ids| {
        let ids: Vec<String> = ids.iter().map(uuid::Uuid::to_string).collect();
        format!("{{{}}}", ids.join(","))
    });
    sqlx::query("SELECT set_config('app.collections', $1, true)").bind(setting).execute(connection).await?;
    Ok(())
}
