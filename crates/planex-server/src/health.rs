//! Probes and metrics: `GET /healthz` (the process answers), `GET /readyz` (the store, the
//! planner tier and a live worker of every tier answer) and `GET /metrics` (Prometheus text).
//!
//! Key decision: readiness checks the dependencies a request needs first (the store, at least one
//! planner endpoint's `GET /models`, and at least one live worker heartbeat for every tier that
//! has work: with none, accepted tasks would wait forever), each under a short timeout, so a load
//! balancer stops sending tasks to a replica that could only fail or strand them; an idle worker
//! is fine. Liveness checks nothing external, so a slow dependency never gets a healthy process
//! restarted.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Object)))]
pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

/// Readiness: the store answers, every tier with work has a live worker, and a planner endpoint
/// lists its models.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = Object),
    (status = 503, description = "The store or the planner tier is unreachable, or a tier with work has no live worker", body = ErrorBody),
))]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let engine = state.engine();
    let planner = engine.settings().planner_tier.clone();
    match tokio::time::timeout(PROBE_TIMEOUT, engine.store().queue_depth(&planner)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            return Err(ApiError::unavailable(format!(
                "store: {}",
                planex_core::cause::ErrorChain(&error)
            )));
        }
        Err(_) => return Err(ApiError::unavailable("store: no answer within 2 s")),
    }
    let workers = live_workers(&state).await?;
    let missing: Vec<&String> = workers
        .iter()
        .filter(|(_, live)| **live == 0)
        .map(|(tier, _)| tier)
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|t| t.as_str()).collect();
        return Err(ApiError::unavailable(format!(
            "no live worker for tier {}: steps routed there would wait forever; start `planex worker --tier TIER` against this store (or `planex serve` with in-process workers); an idle worker is enough",
            names.join(", ")
        ))
        .with_details(json!({"tiers_without_workers": names, "workers": workers})));
    }
    let mut failures = Vec::new();
    let mut reachable = state.planner_endpoints().is_empty();
    for endpoint in state.planner_endpoints() {
        match tokio::time::timeout(
            PROBE_TIMEOUT,
            planex_llm::list_models(state.http(), endpoint),
        )
        .await
        {
            Ok(Ok(_)) => {
                reachable = true;
                break;
            }
            Ok(Err(error)) => failures.push(planex_core::cause::chain_text(&error)),
            Err(_) => failures.push(format!("{}: no answer within 2 s", endpoint.base_url)),
        }
    }
    if !reachable {
        return Err(ApiError::unavailable(format!(
            "planner tier {planner} is unreachable: {}",
            failures.join("; ")
        ))
        .with_details(json!({"tier": planner, "errors": failures})));
    }
    Ok(axum::Json(
        json!({"status": "ready", "store": "ok", "planner_tier": planner, "workers": workers}),
    ))
}

/// The live workers of every tier with work, by tier (a 503 when the store does not answer).
async fn live_workers(state: &AppState) -> Result<BTreeMap<String, usize>, ApiError> {
    let engine = state.engine();
    let mut workers = BTreeMap::new();
    for tier in engine.tiers_with_work() {
        let live =
            match tokio::time::timeout(PROBE_TIMEOUT, engine.store().live_workers(&tier)).await {
                Ok(Ok(live)) => live,
                Ok(Err(error)) => {
                    return Err(ApiError::unavailable(format!(
                        "store: {}",
                        planex_core::cause::ErrorChain(&error)
                    )));
                }
                Err(_) => return Err(ApiError::unavailable("store: no answer within 2 s")),
            };
        workers.insert(tier, live);
    }
    Ok(workers)
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
    (status = 503, body = ErrorBody),
))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = state.metrics_handle() else {
        return ApiError::unavailable("metrics are not enabled in this process").into_response();
    };
    let body = crate::metrics::render(&state, handle).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}
