//! `GET /v1/scaling`: the autoscaling decision per tier (docs/ARCHITECTURE.md §7), computed by the engine.
//!
//! Key decision: the handler only forwards `Engine::scaling_report`, so the API, `planex scale
//! status` and the `scaling_*` Prometheus gauges report the same numbers. Like `/metrics`, it needs
//! no API key: autoscalers and dashboards read it.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use planex_engine::scaling::ScalingReport;

/// Per tier: queue depth, in-flight, p95 TTFT, healthy endpoints, desired count and the reason.
#[utoipa::path(get, path = "/v1/scaling", tag = "ops", responses(
    (status = 200, description = "The decision per tier with work, and the thresholds in force", body = ScalingReport),
    (status = 503, description = "The store is unavailable", body = ErrorBody),
))]
pub async fn scaling(State(state): State<AppState>) -> Result<axum::Json<ScalingReport>, ApiError> {
    Ok(axum::Json(state.engine().scaling_report().await?))
}
