//! [`AppState`]: everything a request handler needs (the engine, the server settings, the metrics
//! handle, the planner endpoints `/readyz` probes, an HTTP client and the shutdown token).

use crate::ServerSettings;
use metrics_exporter_prometheus::PrometheusHandle;
use planex_engine::Engine;
use planex_llm::Endpoint;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    rate_limits: Arc<crate::rate_limit::RateLimits>,
}

impl AppState {
    /// A state over a wired engine. `planner_endpoints` are probed by `/readyz`; `metrics` is the
    /// handle from [`metrics::install_recorder`](crate::metrics::install_recorder) (`None`:
    /// `/metrics` answers 503).
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
                rate_limits: Arc::default(),
            }),
        }
    }

    /// The rate limiters of this replica's API keys.
    pub fn rate_limits(&self) -> &Arc<crate::rate_limit::RateLimits> {
        &self.inner.rate_limits
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
