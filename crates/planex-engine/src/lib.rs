//! planex-engine: plan once on a big model, execute every step on small ones.
//!
//! `Engine::submit` runs the planner call (with one re-plan on an invalid plan), turns the plan into
//! step specs (a tier per step from its tool, the routing rules or an allowed planner hint, plus an
//! optional synthesis step on the planner tier; see `routing`) and hands them to
//! the `Store`, which enqueues the ready ones. Per-tier workers (`run_worker`) claim, execute and
//! complete steps; each completion atomically enqueues newly ready dependents, so scheduling is event
//! driven and independent steps run in parallel. The engine holds no task state of its own: any
//! process with the same store, catalog and tiers can serve any task.

mod admission;
pub mod budget;
mod builder;
mod direct;
mod escalation;
mod executor;
mod held;
mod http_tool;
mod models;
mod plan_cache;
mod planner;
mod recovery;
mod replan;
mod routing;
pub mod scaling;
mod settlement;
mod submit;
mod worker;

pub use budget::{BudgetExceeded, BudgetGuard, BudgetKind, BudgetSettings};
pub use builder::EngineBuilder;
pub use direct::{PlanPreview, PreviewError, StepRejected, StepRun};
pub use escalation::{Escalation, escalations};
pub use executor::{Executor, SYNTHESIS_TOOL, ToolCallOutcome};
pub use models::Models;
pub use plan_cache::{CacheSettings, PlanCacheLayer, plan_cache_key};
pub use planner::{Planned, PlannerSettings, PlanningFailed, plan_task, system_prompt};
pub use recovery::{OrphanRecovery, Recovery};
pub use routing::{
    RouteDecision, RouteRule, RouteSource, Router, RoutingSettings, TierHints, explain_plan,
    split_tier_hints,
};
pub use worker::{WorkerExit, WorkerPool, WorkerSettings, run_worker};

use planex_core::{Catalog, CatalogError, TaskId};
use planex_store::{Store, StoreError};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// An engine failure; each says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tool or config names a tier that does not exist.
    #[error("unknown tier {tier:?} (known tiers: {}); add it to [tiers] or fix the name", .known.join(", "))]
    UnknownTier {
        /// The name used.
        tier: String,
        /// The tiers that exist.
        known: Vec<String>,
    },
    /// The request's tool subset names unknown tools.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The task did not finish in time (it keeps running; read it later by id).
    #[error(
        "task {0} did not finish within the wait timeout; it is still running, read it later by id"
    )]
    Timeout(TaskId),
    /// The request is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A budget refused the task (HTTP 429).
    #[error(transparent)]
    Budget(#[from] Box<BudgetExceeded>),
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The tier that plans (and synthesises).
    pub planner_tier: String,
    /// Default `max_subtasks` when a request gives none.
    pub max_subtasks: usize,
    /// Hard ceiling on `max_subtasks` a request may ask for.
    pub max_subtasks_limit: usize,
    /// Append a synthesis step by default.
    pub synthesis: bool,
    /// Planner call settings.
    pub planner: PlannerSettings,
    /// Routing rules and planner tier hints (`routing.rs`).
    pub routing: RoutingSettings,
    /// Autoscaling thresholds (`scaling.rs`).
    pub scaling: scaling::ScalingSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            planner_tier: "planner".into(),
            max_subtasks: 10,
            max_subtasks_limit: 64,
            synthesis: true,
            planner: PlannerSettings::default(),
            routing: RoutingSettings::default(),
            scaling: scaling::ScalingSettings::default(),
        }
    }
}

/// One task to plan and run.
#[derive(Debug, Clone, Default)]
pub struct TaskRequest {
    /// The user's task.
    pub task: String,
    /// Id to use (a random one when absent).
    pub task_id: Option<TaskId>,
    /// Most plan steps (the engine default when absent).
    pub max_subtasks: Option<usize>,
    /// Append a synthesis step (the engine default when absent).
    pub synthesis: Option<bool>,
    /// Restrict the planner to these tools.
    pub tools: Option<Vec<String>>,
    /// Owning tenant.
    pub tenant: Option<String>,
    /// Cost center for attribution.
    pub cost_center: Option<String>,
    /// Propagated to model servers as `X-Request-ID`.
    pub request_id: Option<String>,
    /// Most the executor steps may cost, in USD (the budget guard re-plans or refuses above it).
    pub budget_usd: Option<planex_core::Decimal>,
    /// Skip the plan cache lookup for this request.
    pub bypass_cache: bool,
}

/// The engine: planner, catalog, tiers and store wired together.
pub struct Engine {
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    settings: EngineSettings,
    budget: Option<Arc<BudgetGuard>>,
    plan_cache: Option<PlanCacheLayer>,
    scaler: scaling::SharedScaler,
}

impl Engine {
    /// Starts wiring an engine over `store`, with the tool catalog, the model tiers and the
    /// settings; optional parts (budget, plan cache, `http` retries) are set on the builder.
    pub fn builder(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        models: Models,
        settings: EngineSettings,
    ) -> EngineBuilder {
        EngineBuilder::new(store, catalog, models, settings)
    }

    /// Wires an engine with no budget guard and no plan cache (`Engine::builder(..).build()`);
    /// fails when a tool or the planner names a tier that does not exist.
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        models: Models,
        settings: EngineSettings,
    ) -> Result<Self, EngineError> {
        Self::builder(store, catalog, models, settings).build()
    }

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

    /// The tier names that have tools or plan, i.e. that need workers.
    pub fn tiers_with_work(&self) -> Vec<String> {
        let mut tiers: Vec<String> = self
            .executor
            .catalog
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
    /// releases the steps it still holds.
    pub fn spawn_workers(
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
        self.spawn_worker_pool(&pool, shutdown)
    }

    /// Starts one worker per tier that has work, as `pool` says, until `shutdown` is cancelled.
    pub fn spawn_worker_pool(
        &self,
        pool: &WorkerPool,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<WorkerExit>> {
        self.tiers_with_work()
            .into_iter()
            .map(|tier| {
                let mut settings =
                    WorkerSettings::new(tier.clone(), format!("{}-{tier}", pool.name_prefix));
                settings.concurrency = pool.concurrency;
                settings.drain_timeout = pool.drain_timeout;
                tokio::spawn(run_worker(
                    self.store.clone(),
                    self.executor.clone(),
                    settings,
                    shutdown.clone(),
                ))
            })
            .collect()
    }
}
