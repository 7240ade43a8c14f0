//! `GET /api/v1/usage` (admin): the tenant's tokens and cost over a period, grouped by day, model,
//! provider, API key, end user or kind of run; JSON, or CSV with `Accept: text/csv`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{self, Query, Tenant};
use super::views::usage::{UsageGroupView, UsageReportView};
use crate::auth::context::Scope;
use crate::usage::{self, GroupBy};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The first day (UTC) included; by default the first day of this month.
    from: Option<NaiveDate>,
    /// The last day (UTC) included; by default today. Not before `from`: a report covers at most 366 days.
    to: Option<NaiveDate>,
    /// What the groups are; by default `day`.
    #[param(inline)]
    group_by: Option<GroupBy>,
}

/// The tenant's tokens and cost over a period, in groups; JSON, or CSV with `Accept: text/csv`.
#[utoipa::path(
    get, path = "/usage", tag = "tenant",
    params(UsageQuery),
    responses((
        status = 200,
        description = "The report. As CSV (`Accept: text/csv`): a header line, then one line per group, with the \
                       JSON groups' field names and values; no total.",
        content((UsageReportView = "application/json"), (String = "text/csv")),
    )),
    security(("tenant_key" = ["admin"])),
)]
pub async fn report(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    headers: HeaderMap,
    Query(query): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    context.require(Scope::Admin)?;
    let from = query.from.unwrap_or_else(crate::budgets::current_period);
    let to = query.to.unwrap_or_else(|| Utc::now().date_naive());
    if to < from {
        return Err(ApiError::invalid("`to` must not be before `from`"));
    }
    if (to - from).num_days() >= usage::MOST_DAYS {
        return Err(ApiError::invalid(format!("a report covers at most {} days", usage::MOST_DAYS)));
    }
    let group_by = query.group_by.unwrap_or(GroupBy::Day);
    let groups = usage::report(&state.db, &context, from, to, group_by).await?;
    let view = UsageReportView::new(from, to, group_by, &groups);
    if extract::accepts(&headers, "text/csv") {
        return Ok(csv(&view.groups));
    }
    Ok(axum::Json(view).into_response())
}

/// The groups as CSV: a header line, then one line per group, with the JSON's field names and values.
fn csv(groups: &[UsageGroupView]) -> Response {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for group in groups {
        writer.serialize(group).expect("a usage group serialises to CSV");
    }
    let body = writer.into_inner().expect("writing to memory cannot fail");
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    response
}
