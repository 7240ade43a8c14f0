//! SQL for end users: the people a tenant's systems and widget act for, known by the tenant's own id.

use sqlx::PgConnection;

use crate::ids::{TenantId, UserId};

/// The end user an external system calls `external_id`, made on first sight.
pub async fn end_user(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    external_id: &str,
) -> Result<UserId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (id, tenant_id, actor_type, external_id) VALUES ($1, $2, 'user', $3) \
         ON CONFLICT (tenant_id, external_id) DO UPDATE SET external_id = EXCLUDED.external_id RETURNING id",
    )
    .bind(UserId::new())
    .bind(tenant_id)
    .bind(external_id)
    .fetch_one(connection)
    .await
}

/// Whether the end user exists (a widget token may name one erased since it was signed).
pub async fn exists(connection: &mut PgConnection, id: UserId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)").bind(id).fetch_one(connection).await
}

/// The end user the tenant calls `external_id`, locked for their erasure; `None` if there is none (or
/// only the pseudonym of one already erased).
pub async fn lock_for_erasure(connection: &mut PgConnection, external_id: &str) -> Result<Option<UserId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE external_id = $1 AND actor_type = 'user' AND erased_at IS NULL FOR UPDATE",
    )
    .bind(external_id)
    .fetch_optional(connection)
    .await
}

/// The pseudonymous row an erased end user's usage records point to from now on.
pub async fn insert_erased(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
    pseudonym: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, actor_type, external_id, erased_at) VALUES ($1, $2, 'user', $3, now())",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(pseudonym)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn delete(connection: &mut PgConnection, id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(connection).await?;
    Ok(())
}

/// The tenant's own id and the display name of an end user, for the system prompt (`None`: no such user).
pub async fn identity(
    connection: &mut PgConnection,
    id: UserId,
) -> Result<Option<(Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT external_id, display_name FROM users WHERE id = $1 AND erased_at IS NULL")
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// An end user's policy group: `None` when there is no such end user, `Some(None)` when they are in none.
pub async fn group_of(connection: &mut PgConnection, external_id: &str) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT policy_group FROM users WHERE external_id = $1 AND actor_type = 'user' AND erased_at IS NULL",
    )
    .bind(external_id)
    .fetch_optional(connection)
    .await
}

/// Sets an end user's policy group (`None`: none); the group they had before.
pub async fn set_group(
    connection: &mut PgConnection,
    id: UserId,
    group: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    let before: Option<String> = sqlx::query_scalar("SELECT policy_group FROM users WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_one(&mut *connection)
        .await?;
    sqlx::query("UPDATE users SET policy_group = $2 WHERE id = $1").bind(id).bind(group).execute(connection).await?;
    Ok(before)
}
