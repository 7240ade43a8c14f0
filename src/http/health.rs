//! Liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::error::ApiError;
use super::views::health::Health;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "Alive.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long readiness waits for the database: a probe must be answered promptly, and a database that takes
/// longer than this to say `SELECT 1` is not ready to serve requests.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Ready when the database answers, within [`PING_TIMEOUT`].
#[utoipa::path(
    get, path = "/readyz", tag = "service",
    responses((status = 200, description = "The database answers: ready to serve.", body = Health)),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match tokio::time::timeout(PING_TIMEOUT, crate::db::ping(&state.db)).await {
        Ok(Ok(())) => Ok(Json(Health { status: "ready" })),
        failed => {
            let error = match failed {
                Ok(Err(error)) => error.to_string(),
                _ => format!("no answer within {} ms", PING_TIMEOUT.as_millis()),
            };
            tracing::warn!(%error, "readiness check: the database does not answer");
            Err(ApiError::database_unavailable())
        }
    }
}
