//! [`Engine`]: the planner, catalog, tiers and store wired together, its accessors and its
//! in-process workers. What the engine does with a task lives in the modules that add `impl Engine`
//! blocks (`submit.rs`, `direct.rs`, `replan.rs`, `recovery.rs`, `step_specs.rs`, …).

use crate::scaling::SharedScaler;
use crate::{
    BudgetGuard, EngineSettings, Executor, PlanCacheLayer, WorkerExit, WorkerPool, WorkerSettings,
    run_worker,
};
use planex_store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The engine: planner, catalog, tiers and store wired together.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) executor: Arc<Executor>,
    pub(crate) settings: EngineSettings,
    pub(crate) budget: Option<Arc<BudgetGuard>>,
    pub(crate) plan_cache: Option<PlanCacheLayer>,
    pub(crate) scaler: SharedScaler,
    pub(crate) drift: Option<Arc<crate::DriftGuard>>,
    /// The background planning of accepted tasks ([`Engine::accept`]), so that a graceful stop
    /// can let it finish ([`Engine::finish_planning`]).
    pub(crate) planning: tokio_util::task::TaskTracker,
}

impl Engine {
    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The step executor (shared by workers and the single-step API).
    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Waits up to `within` for the tasks this engine accepted and is still planning to be
    /// planned and started (or refused, or failed), as a graceful stop does; returns how many were
    /// still planning when the time ran out. Those stay `planning` in the store, and orphan
    /// recovery on a live replica settles them (docs/ARCHITECTURE.md §5). Meant for shutdown:
    /// the tracker is closed, so planning accepted later is not waited for by a second call.
    pub async fn finish_planning(&self, within: std::time::Duration) -> usize {
        self.planning.close();
        match tokio::time::timeout(within, self.planning.wait()).await {
            Ok(()) => 0,
            Err(_) => self.planning.len(),
        }
    }

    /// The budget guard, if any.
    pub fn budget(&self) -> Option<&Arc<BudgetGuard>> {
        self.budget.as_ref()
    }

    /// The plan cache, if any.
    pub fn plan_cache(&self) -> Option<&PlanCacheLayer> {
        self.plan_cache.as_ref()
    }

    /// The tier names that have tools or plan, i.e. that need workers.
    pub fn tiers_with_work(&self) -> Vec<String> {
        let mut tiers: Vec<String> = self
            .executor
            .catalog
            .current()
            .specs()
            .map(|t| t.tier.clone())
            .collect();
        tiers.push(self.settings.planner_tier.clone());
        tiers.extend(self.settings.routing.target_tiers());
        tiers.sort();
        tiers.dedup();
        tiers
    }

    /// Starts one worker per tier that has work, in this process, until `shutdown` is cancelled,
    /// with the default drain timeout. Returns their join handles: on shutdown each drains and
    /// releases the steps it still holds. Each worker's first heartbeat is sent before this
    /// returns, so the store (and `/readyz`) counts them live at once.
    pub async fn spawn_workers(
        &self,
        concurrency: usize,
        worker_prefix: &str,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<WorkerExit>> {
        let pool = WorkerPool {
            concurrency,
            name_prefix: worker_prefix.to_owned(),
            ..WorkerPool::default()
        };
        self.spawn_worker_pool(&pool, shutdown).await
    }

    /// Starts one worker per tier that has work, as `pool` says, until `shutdown` is cancelled;
    /// each worker's first heartbeat is sent before this returns (a failed one is retried by the
    /// worker itself).
    pub async fn spawn_worker_pool(
        &self,
        pool: &WorkerPool,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<WorkerExit>> {
        let mut handles = Vec::new();
        for tier in self.tiers_with_work() {
            let mut settings =
                WorkerSettings::new(tier.clone(), format!("{}-{tier}", pool.name_prefix));
            settings.concurrency = pool.concurrency;
            settings.drain_timeout = pool.drain_timeout;
            let lapse = settings.heartbeat * crate::HEARTBEAT_LAPSES_AFTER;
            if let Err(error) = self
                .store
                .heartbeat(&tier, &settings.worker_id, lapse)
                .await
            {
                tracing::warn!(%tier, error = %planex_core::cause::ErrorChain(&error), "a worker's first heartbeat failed; it retries");
            }
            handles.push(tokio::spawn(run_worker(
                self.store.clone(),
                self.executor.clone(),
                settings,
                shutdown.clone(),
            )));
        }
        handles
    }
}
