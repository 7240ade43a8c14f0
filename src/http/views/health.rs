//! The answer of the liveness and readiness probes.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` (alive) or `ready` (the database answers).
    pub status: &'static str,
}
