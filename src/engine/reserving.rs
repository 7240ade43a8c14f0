//! A model call's budget reservation: the most the call can cost (every prompt token uncached, the whole
//! output ceiling written), reserved against every budget the run is under before the call is made.
//!
//! A pass-through turn's first request is the caller's, known when the turn is accepted: its reservation
//! is made then, on a second connection beside the statements that record the turn, so the turn waits for
//! the slower of the two instead of both. It is made only on a connection the pool has free at once, and
//! only when it fits; otherwise the call reserves just before it is made, as every other call does.

use rust_decimal::Decimal;

use super::resolve::Resolved;
use super::{Inner, TurnMode};
use crate::budgets::RunBudgets;
use crate::catalog::ModelInfo;
use crate::ids::{RunId, TenantId};
use crate::providers::ChatMessage;

/// The most a call with this prompt can cost `model` (nothing for a model nobody priced).
pub(super) fn worst_case(
    model: Option<&ModelInfo>,
    system: &str,
    messages: &[ChatMessage],
    max_output_tokens: Option<u32>,
) -> Decimal {
    model.map_or(Decimal::ZERO, |model| {
        let prompt = crate::tokens::count(system)
            + messages.iter().map(|message| crate::tokens::count(&message.content)).sum::<usize>();
        let ceiling = max_output_tokens.unwrap_or(model.max_output_tokens);
        model.prices.worst_case(prompt as u64, u64::from(ceiling))
    })
}

/// Reserves the first call of a pass-through turn, if a connection is free and its budgets have room;
/// returns what it reserved (`None`: nothing, and the call reserves for itself).
pub(super) async fn ahead(
    inner: &Inner,
    budgets: &RunBudgets,
    resolved: &Resolved,
    mode: &TurnMode,
    tenant_id: TenantId,
    run_id: RunId,
) -> Option<Decimal> {
    let TurnMode::PassThrough(given) = mode else { return None };
    if budgets.lines.is_empty() {
        return None;
    }
    let model = super::plan::known_model(
        &resolved.declared_models,
        resolved.provider_name,
        &inner.providers.catalog,
        &resolved.model,
    );
    let amount = worst_case(model.as_deref(), &given.system, &given.messages, given.max_output_tokens);
    match budgets.reserve_if_free(&inner.db, tenant_id, run_id, amount).await? {
        Ok(()) => Some(amount),
        Err(error) => {
            // Nothing was reserved: the call reserves for itself, and meets the error there if it lasts.
            tracing::debug!(%error, "could not reserve a pass-through turn's first call ahead");
            None
        }
    }
}
