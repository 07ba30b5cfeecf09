//! Serving the HTTP API from an [`App`]: the router over the engine, orphan recovery once a minute,
//! and a graceful shutdown that ends event streams, finishes open requests, then drains workers.

use crate::{App, AppError};
use planex_engine::{OrphanRecovery, Recovery, WorkerSettings};
use planex_server::AppState;
use planex_server::metrics::PrometheusHandle;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often a replica looks for reservations and planning tasks a stopped replica left behind.
const RECOVERY_EVERY: Duration = Duration::from_secs(60);
/// How long a reservation may stay without a task before recovery treats its holder as gone: far
/// longer than any single-step call.
const RECOVERY_GRACE: Duration = Duration::from_secs(15 * 60);

impl App {
    /// The HTTP API's state over this app's engine; `metrics` serves `/metrics` (`None`: 503).
    pub fn http_state(&self, metrics: Option<PrometheusHandle>) -> AppState {
        AppState::new(
            self.engine().clone(),
            self.config().service.server.clone(),
            self.planner_endpoints(),
            metrics,
        )
    }

    /// Serves the API on `listener` until `shutdown` resolves, running orphan recovery meanwhile;
    /// then stops the app (drains workers, stops simulators).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        metrics: Option<PrometheusHandle>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let state = self.http_state(metrics);
        let recovery = tokio::spawn(recover_orphans(self.engine().clone()));
        let served = planex_server::serve(listener, state, shutdown).await;
        recovery.abort();
        self.stop().await;
        served.map_err(AppError::Serve)
    }
}

/// Binds the API's listen address, with an error that names the setting to change.
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

/// Settles what replicas that died mid-task left behind ([`OrphanRecovery`]), once a minute, on
/// every replica (passes are safe to run concurrently).
async fn recover_orphans(engine: Arc<planex_engine::Engine>) {
    // A live replica fails a task at the planning deadline; one lease later it must be gone.
    let planning_bound = engine.settings().planner.deadline + WorkerSettings::DEFAULT_LEASE;
    let mut recovery = OrphanRecovery::new(RECOVERY_GRACE).with_planning_bound(planning_bound);
    let mut every = tokio::time::interval(RECOVERY_EVERY);
    loop {
        every.tick().await;
        match recovery.pass(&engine).await {
            Ok(report) if report != Recovery::default() => {
                tracing::info!(?report, "recovered what a stopped replica left behind");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "orphan recovery pass failed; retrying in a minute")
            }
        }
    }
}
