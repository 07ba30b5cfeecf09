//! Prometheus metrics: the process-wide recorder, explicit histogram buckets, HTTP request
//! metrics labelled by matched route, and `queue_depth{tier}` read from the store at scrape time.
//!
//! Key decisions: every histogram gets explicit buckets (otherwise the exporter renders summaries
//! and `histogram_quantile` cannot work); HTTP metrics use the matched route template
//! (`/v1/tasks/{id}`), never the raw path, so label cardinality stays bounded; queue depth is read
//! when scraped, so there is no sampling loop to run or stop.

use crate::AppState;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
/// The handle that renders `/metrics`; returned by [`install_recorder`].
pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use planex_core::cause::SharedSource;
use std::sync::OnceLock;
use std::time::Instant;

/// The `Content-Type` of `/metrics`: the Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<Result<PrometheusHandle, RecorderError>> = OnceLock::new();

/// The process-wide Prometheus recorder could not be installed (another recorder came first, or
/// a bucket list was refused); `/metrics` then answers 503.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not install the Prometheus recorder; /metrics will answer 503")]
pub struct RecorderError {
    /// The exporter's error (shared: the outcome of the one installation is handed to every
    /// caller).
    #[source]
    pub source: SharedSource,
}

const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];
const USD: &[f64] = &[
    0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];
const COUNTS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0, 32.0, 64.0,
];

fn build() -> Result<PrometheusHandle, BuildError> {
    let full = |name: &str| Matcher::Full(name.to_owned());
    PrometheusBuilder::new()
        .set_buckets(SECONDS)?
        .set_buckets_for_metric(full("task_cost_usd"), USD)?
        .set_buckets_for_metric(full("subtasks_per_task"), COUNTS)?
        .set_buckets_for_metric(full("plan_replans"), &[0.0, 1.0, 2.0])?
        .install_recorder()
}

/// Installs the process-wide Prometheus recorder once and returns its handle (the same handle on
/// every later call). `Err` when another recorder was installed first.
pub fn install_recorder() -> Result<PrometheusHandle, RecorderError> {
    HANDLE
        .get_or_init(|| {
            let handle = build().map_err(|e| RecorderError {
                source: SharedSource::new(e),
            })?;
            describe();
            Ok(handle)
        })
        .clone()
}

/// Registers help texts and the unlabelled series at zero, so dashboards see them before they move.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "planner_token_total",
        "Tokens used on the planner tier, by stage (plan, synthesis)."
    );
    describe_counter!(
        "executor_token_total",
        "Tokens used by plan steps, by tool (step_type)."
    );
    describe_histogram!("task_cost_usd", "Cost of finished tasks in USD.");
    describe_histogram!("subtasks_per_task", "Steps per finished task.");
    describe_gauge!("queue_depth", "Steps waiting in a tier's ready queue.");
    describe_gauge!("queue_in_flight", "Steps leased by a tier's workers.");
    describe_gauge!(
        "workers_live",
        "Workers of a tier whose heartbeat has not lapsed (0: nothing runs its steps)."
    );
    describe_histogram!("ttft_seconds", "Time to first token per tier.");
    describe_histogram!("step_duration_seconds", "Step duration by tier and tool.");
    describe_counter!(
        "tool_calls_total",
        "Calls of http and MCP tools, by tool and outcome (ok, error)."
    );
    describe_histogram!(
        "tool_call_seconds",
        "Duration of http and MCP tool calls (retries included), by tool."
    );
    describe_counter!("step_retries_total", "Retried attempts of steps.");
    describe_counter!("dlq_total", "Steps sent to the dead-letter queue, by tool.");
    describe_counter!("plan_cache_hits_total", "Plans served from the plan cache.");
    describe_counter!(
        "budget_replans_total",
        "Re-plans with fewer steps to fit a task budget."
    );
    describe_counter!(
        "budget_rejections_total",
        "Requests refused by a budget, by budget."
    );
    describe_counter!(
        "http_requests_total",
        "HTTP requests by method, matched route and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency by method and matched route."
    );
    describe_counter!(
        "plan_drift_total",
        "Tasks planned with a stricter max_subtasks because their type's p95 step count is over 2x its baseline, by task_type."
    );
    describe_gauge!(
        "task_type_baseline_steps",
        "Baseline (p95) plan steps per task of a task type: configured, else learned from its first finished tasks."
    );
    describe_gauge!(
        "task_type_steps_p95",
        "p95 plan steps per task over a task type's recent finished tasks."
    );
    describe_gauge!(
        "task_type_baseline_cost_usd",
        "Baseline cost per task of a task type in USD: configured, else learned."
    );
    describe_gauge!(
        "task_type_cost_usd_mean",
        "Mean cost per task over a task type's recent finished tasks, in USD."
    );
    describe_gauge!(
        "task_type_recent_tasks",
        "Finished tasks in a task type's recent window (the sample behind p95 and mean)."
    );
    describe_counter!(
        "step_escalations_total",
        "Failed steps retried on a dearer tier, by from and to tier."
    );
    describe_counter!(
        "budget_exhausted_total",
        "Model calls refused mid-task because a budget ran out, by budget."
    );
    describe_counter!(
        "budget_admission_waits_total",
        "Admissions that waited for reserved budget to be freed."
    );
    describe_histogram!("plan_replans", "Re-plans per admitted plan.");
    describe_gauge!(
        "scaling_queue_depth",
        "Ready steps per tier, as the scaling decision saw them."
    );
    describe_gauge!(
        "scaling_in_flight",
        "Steps leased plus model calls in flight per tier, as the scaling decision saw them."
    );
    describe_gauge!(
        "scaling_ttft_p95_seconds",
        "Rolling p95 time to first token per tier (0 without samples)."
    );
    describe_gauge!(
        "scaling_healthy_endpoints",
        "Endpoints taking calls per tier (the current node count)."
    );
    describe_gauge!(
        "scaling_desired_replicas",
        "Replicas each tier should have (GET /v1/scaling)."
    );
    for name in [
        "step_retries_total",
        "plan_cache_hits_total",
        "budget_replans_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// Middleware: counts and times every request by method, matched route and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Sets `queue_depth{tier}` and `queue_in_flight{tier}` from the store (a failed read is logged
/// and leaves the gauges as they were).
pub(crate) async fn record_queue_depth(store: &dyn planex_store::Store, tier: &str) {
    match store.queue_depth(tier).await {
        Ok(depth) => {
            metrics::gauge!("queue_depth", "tier" => tier.to_owned()).set(depth.ready as f64);
            metrics::gauge!("queue_in_flight", "tier" => tier.to_owned())
                .set(depth.in_flight as f64);
        }
        Err(error) => {
            tracing::warn!(%tier, error = %planex_core::cause::ErrorChain(&error), "could not read the queue depth")
        }
    }
}

/// Sets `queue_depth{tier}`, `queue_in_flight{tier}` and `workers_live{tier}` from the store, then
/// renders everything.
pub async fn render(state: &AppState, handle: &PrometheusHandle) -> String {
    let engine = state.engine();
    for tier in engine.tiers_with_work() {
        record_queue_depth(engine.store().as_ref(), &tier).await;
        match engine.store().live_workers(&tier).await {
            Ok(live) => metrics::gauge!("workers_live", "tier" => tier.clone()).set(live as f64),
            Err(error) => {
                tracing::warn!(%tier, error = %planex_core::cause::ErrorChain(&error), "could not count live workers")
            }
        }
    }
    // Refreshes the `task_type_*{task_type}` drift gauges from the drift store.
    if let Some(drift) = engine.drift() {
        drift.export_gauges().await;
    }
    // Refreshes the `scaling_*{tier}` gauges (desired replicas and the numbers behind them).
    if let Err(error) = engine.scaling_report().await {
        tracing::warn!(%error, "could not compute the scaling report");
    }
    handle.render()
}
