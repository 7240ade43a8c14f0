//! `GET /api/v1/budgets` (admin): each budget the tenant set, with this month's spend, reservations and
//! what remains.

use axum::extract::State;
use chrono::NaiveDate;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use super::extract::Tenant;
use crate::auth::context::Scope;
use crate::budgets::{self, BudgetStatus};

#[derive(Debug, Serialize)]
pub struct BudgetsView {
    /// The month the spend counts in (its first day, UTC).
    pub period: NaiveDate,
    pub budgets: Vec<BudgetStatus>,
}

pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<BudgetsView>, ApiError> {
    context.require(Scope::Admin)?;
    let (period, budgets) = budgets::report(&state.db, &context).await?;
    Ok(axum::Json(BudgetsView { period, budgets }))
}
