//! Liveness and readiness.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::error::ApiError;
use super::views::health::Health;

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    crate::db::ping(&state.db).await.map_err(|error| {
        tracing::warn!(%error, "readiness check: the database does not answer");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database does not answer",
        )
    })?;
    Ok(Json(Health { status: "ready" }))
}
