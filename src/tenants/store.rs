//! SQL for tenants and their settings rows.

use sqlx::PgConnection;

use super::{NewTenant, Tenant};
use crate::ids::TenantId;

pub async fn insert(connection: &mut PgConnection, new_tenant: &NewTenant) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) RETURNING id, name, slug, created_at")
        .bind(TenantId::new())
        .bind(&new_tenant.name)
        .bind(&new_tenant.slug)
        .fetch_one(connection)
        .await
}

pub async fn insert_default_config(connection: &mut PgConnection, tenant_id: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tenant_configs (tenant_id) VALUES ($1)").bind(tenant_id).execute(connection).await?;
    Ok(())
}
