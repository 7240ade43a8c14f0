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
