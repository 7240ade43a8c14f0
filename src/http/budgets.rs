//! `GET /api/v1/budgets` (admin): each budget the tenant set, with this month's spend, reservations and
//! what remains.

use axum::extract::State;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::Tenant;
use crate::auth::context::Scope;
use crate::budgets::{self, BudgetStatus};

#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetsView {
    /// The month the spend counts in (its first day, UTC).
    pub period: NaiveDate,
    pub budgets: Vec<BudgetStatus>,
}

/// Each budget the tenant set, with this month's spend, what is reserved by running calls, and what remains.
#[utoipa::path(
    get, path = "/budgets", tag = "tenant",
    responses((status = 200, description = "The budgets this month.", body = BudgetsView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<BudgetsView>, ApiError> {
    context.require(Scope::Admin)?;
    let (period, budgets) = budgets::report(&state.db, &context).await?;
    Ok(axum::Json(BudgetsView { period, budgets }))
}
