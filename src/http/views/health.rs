//! The answer of the liveness and readiness probes.

use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (the database answers).
    #[schema(value_type = String)]
    pub status: &'static str,
}
