//! planex-server: the HTTP face of planex (DESIGN.md §5 and §7).
//!
//! Tasks (`POST /v1/tasks`, `GET /v1/tasks/{id}`, SSE events), plan only (`/v1/plan`), one step
//! (`/v1/execute`), an OpenAI-compatible agent endpoint (`/v1/chat/completions`), spend per tenant
//! and cost center (`/v1/spend`), probes, Prometheus metrics and the OpenAPI document. API keys map
//! callers to tenants; budgets and the plan cache live in the engine, so every replica enforces
//! them identically.
//!
//! Key decisions: the server holds no task state (everything is in the `Store` behind the engine),
//! so replicas are interchangeable; [`app`] builds the whole router from a state value, so tests
//! drive it with `tower::ServiceExt::oneshot` and no socket; every route is listed in one function,
//! [`routes`], which is where new routes go.

mod auth;
mod error;
mod extract;
mod health;
pub mod metrics;
mod openai;
mod openapi;
mod plan_exec;
mod scaling;
mod settings;
mod spend;
mod tasks;
pub mod telemetry;
mod views;
pub mod worker_metrics;

pub use auth::{COST_CENTER, Caller};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use extract::{ApiJson, REQUEST_ID, RequestId};
pub use openapi::openapi_json;
pub use settings::{ApiKeyEntry, ServerSettings, parse_sha256};
pub use views::*;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use planex_engine::Engine;
use planex_llm::Endpoint;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    engine: Arc<Engine>,
    settings: ServerSettings,
    metrics: Option<PrometheusHandle>,
    planner_endpoints: Vec<Endpoint>,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl AppState {
    /// A state over a wired engine. `planner_endpoints` are probed by `/readyz`; `metrics` is the
    /// handle from [`metrics::install_recorder`] (`None`: `/metrics` answers 503).
    pub fn new(
        engine: Arc<Engine>,
        settings: ServerSettings,
        planner_endpoints: Vec<Endpoint>,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        AppState {
            inner: Arc::new(StateInner {
                engine,
                settings,
                metrics,
                planner_endpoints,
                http: reqwest::Client::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// The server settings.
    pub fn server_settings(&self) -> &ServerSettings {
        &self.inner.settings
    }

    pub(crate) fn metrics_handle(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    pub(crate) fn planner_endpoints(&self) -> &[Endpoint] {
        &self.inner.planner_endpoints
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Cancelled when the server shuts down: event streams end and long waits answer early, so a
    /// graceful shutdown is not held open by clients.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

/// Every route of the API. Add new routes here (one line each).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(tasks::submit))
        .route("/v1/tasks/{id}", get(tasks::get_task))
        .route("/v1/tasks/{id}/events", get(tasks::events))
        .route("/v1/plan", post(plan_exec::plan))
        .route("/v1/execute", post(plan_exec::execute))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/spend", get(spend::spend))
        .route("/v1/scaling", get(scaling::scaling))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve_openapi))
}

/// The whole application: [`routes`] plus body limit, request ids, tracing and HTTP metrics.
pub fn app(state: AppState) -> Router {
    let limit = state.server_settings().body_limit_bytes;
    routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(metrics::track_http))
        .layer(middleware::from_fn(move |request, next| {
            request_context(request, next, limit)
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json for the API")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Gives each request its id (echoed as `X-Request-ID`), its body limit, and a tracing span.
async fn request_context(mut request: Request, next: Next, limit: usize) -> Response {
    let id = RequestId::from_header(request.headers().get(REQUEST_ID));
    let span = tracing::info_span!(
        "http_request",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        request_id = %id.0,
        http.response.status_code = tracing::field::Empty,
    );
    request.extensions_mut().insert(id.clone());
    request.extensions_mut().insert(extract::BodyLimit(limit));
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes open requests (graceful).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown_token().clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            token.cancel();
        })
        .await
}
