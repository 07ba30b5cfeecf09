//! The metrics endpoint of a `planex worker` process (`--metrics-addr`): the step metrics the
//! worker records (`step_duration_seconds`, `step_retries_total`, `dlq_total`, `ttft_seconds`,
//! `executor_token_total`…) exist only in the worker's own process, so in a distributed
//! deployment each worker must expose them itself; the API replica's `/metrics` cannot.
//!
//! Key decision: the same recorder and buckets as `planex serve` (`metrics::install_recorder`),
//! plus `queue_depth{tier}` / `queue_in_flight{tier}` of the worker's tier read from the store at
//! scrape time, so a worker alone is enough for a dashboard of its tier. Its errors (unknown
//! route, wrong method) are the API's JSON `{error: {type, message, details}}`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use planex_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a worker's metrics endpoint could not start; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum WorkerMetricsError {
    /// The Prometheus recorder could not be installed.
    #[error(transparent)]
    Recorder(#[from] crate::metrics::RecorderError),
    /// `--metrics-addr` could not be bound.
    #[error("cannot listen on --metrics-addr {addr}; pick a free HOST:PORT (port 0 picks one)")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The I/O error of the bind.
        #[source]
        source: std::io::Error,
    },
    /// The bound listener's address could not be read.
    #[error("cannot read the metrics listener's address")]
    LocalAddr(#[source] std::io::Error),
}

struct WorkerMetrics {
    store: Arc<dyn Store>,
    tier: String,
    handle: PrometheusHandle,
}

async fn render(
    State(state): State<Arc<WorkerMetrics>>,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    crate::metrics::record_queue_depth(state.store.as_ref(), &state.tier).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.handle.render(),
    )
}

async fn not_found() -> crate::ApiError {
    crate::ApiError::not_found("no such route; a worker serves GET /metrics and GET /healthz only")
}

/// The most body a request to a worker's port may declare: its routes take none.
const WORKER_BODY_LIMIT: usize = 4 * 1024;

/// `GET /metrics` (Prometheus text) and `GET /healthz` (`{"status": "ok"}`) of a worker serving
/// `tier`; anything else is a JSON 404 or 405. The API's head checks apply: a target over
/// [`crate::MAX_URI_BYTES`] is a JSON 414, a declared body over 4 KiB a JSON 413.
pub fn router(store: Arc<dyn Store>, tier: String, handle: PrometheusHandle) -> Router {
    let state = Arc::new(WorkerMetrics {
        store,
        tier,
        handle,
    });
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(crate::health::healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(crate::router::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(WORKER_BODY_LIMIT))
        .layer(axum::middleware::from_fn(|request, next| {
            crate::router::check_head(request, next, WORKER_BODY_LIMIT)
        }))
        .with_state(state)
}

/// Binds `addr` (`HOST:PORT`; port 0 picks a free one) and serves [`router`] until `stop`
/// completes; returns the bound address. Errors say what to change.
pub async fn spawn(
    addr: &str,
    store: Arc<dyn Store>,
    tier: String,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr, WorkerMetricsError> {
    let handle = crate::metrics::install_recorder()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WorkerMetricsError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(WorkerMetricsError::LocalAddr)?;
    let app = router(store, tier, handle);
    let options = planex_http::ListenOptions::default();
    tokio::spawn(async move {
        if let Err(error) = planex_http::serve_router(listener, app, options, stop).await {
            tracing::warn!(%error, "the worker metrics endpoint stopped");
        }
    });
    Ok(bound)
}
