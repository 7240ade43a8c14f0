//! A usage report as the API shows it (JSON, and the same fields as CSV columns).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::usage::{GroupBy, UsageGroup};

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReportView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: GroupBy,
    pub groups: Vec<UsageGroupView>,
    /// Every group added up, its `group` `total`.
    pub total: UsageGroupView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageGroupView {
    /// The day (`YYYY-MM-DD`), `provider/model`, provider, API key id, end user's id, or run kind; empty
    /// for records without one (no API key, no end user).
    pub group: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    /// US dollars, a decimal string: the priced records' cost.
    pub cost_usd: Decimal,
    /// Records the model catalog had no price for: not in `cost_usd`.
    pub unpriced_records: i64,
    pub runs: i64,
}

impl From<&UsageGroup> for UsageGroupView {
    fn from(group: &UsageGroup) -> Self {
        Self {
            group: group.key.clone(),
            input_tokens: group.input_tokens,
            output_tokens: group.output_tokens,
            cached_tokens: group.cached_tokens,
            reasoning_tokens: group.reasoning_tokens,
            cost_usd: group.cost_usd.normalize(),
            unpriced_records: group.unpriced_records,
            runs: group.runs,
        }
    }
}

impl UsageReportView {
    pub fn new(from: NaiveDate, to: NaiveDate, group_by: GroupBy, groups: &[UsageGroup]) -> Self {
        let groups: Vec<UsageGroupView> = groups.iter().map(UsageGroupView::from).collect();
        let total = UsageGroupView {
            group: "total".to_owned(),
            input_tokens: groups.iter().map(|group| group.input_tokens).sum(),
            output_tokens: groups.iter().map(|group| group.output_tokens).sum(),
            cached_tokens: groups.iter().map(|group| group.cached_tokens).sum(),
            reasoning_tokens: groups.iter().map(|group| group.reasoning_tokens).sum(),
            cost_usd: groups.iter().map(|group| group.cost_usd).sum::<Decimal>().normalize(),
            unpriced_records: groups.iter().map(|group| group.unpriced_records).sum(),
            // A run split across groups (a day boundary) is counted in each: the total counts groups' runs.
            runs: groups.iter().map(|group| group.runs).sum(),
        };
        Self { from, to, group_by, groups, total }
    }
}
