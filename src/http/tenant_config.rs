//! `/api/v1/tenant/config` (admin): the tenant's settings.

use axum::extract::State;
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use super::views::tenant_config::TenantConfigView;
use crate::auth::context::Scope;
use crate::tenants;

pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<TenantConfigView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(TenantConfigView::from(&tenants::config(&state.db, &context).await?)))
}

pub async fn patch(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<TenantConfigView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(TenantConfigView::from(&tenants::update_config(&state.db, &context, &fields).await?)))
}
