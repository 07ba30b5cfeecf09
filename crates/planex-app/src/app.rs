//! [`App`]: a running planex (simulators for `simulated` tiers, store, tier clients with their
//! health checks, engine, and in-process workers when asked), built from a [`Config`].

use crate::AppError;
use crate::config::{Config, SimulatedTier};
use crate::store::Backend;
use planex_core::Catalog;
use planex_engine::mcp::McpServers;
use planex_engine::{
    BudgetGuard, DriftGuard, Engine, Models, PlanCacheLayer, WorkerExit, WorkerPool,
};
use planex_llm::{Endpoint, HealthChecks, RetryPolicy, TierConfig, TierSet};
use planex_sim::{SimConfig, SimServer};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Whether this process runs workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One worker per tier with work, in this process (`planex run`, `serve --with-workers`).
    EveryTier,
    /// None: steps are run by `planex worker` processes sharing the store.
    None,
}

/// An [`App`] being configured; [`AppBuilder::start`] starts it.
pub struct AppBuilder {
    config: Config,
    workers: Workers,
    backend: Option<Backend>,
    models: Option<Models>,
    http_retry: Option<RetryPolicy>,
}

impl AppBuilder {
    /// Whether this process runs workers (default: [`Workers::EveryTier`]).
    pub fn workers(mut self, workers: Workers) -> Self {
        self.workers = workers;
        self
    }

    /// Uses this store, ledger and plan cache instead of opening `[store]`.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Uses these models for the tiers instead of HTTP clients of the configured endpoints (no
    /// simulators are started and no endpoints are checked).
    pub fn models(mut self, models: Models) -> Self {
        self.models = Some(models);
        self
    }

    /// The retry policy of `http` tools (default: `RetryPolicy::default()`).
    pub fn http_retry(mut self, retry: RetryPolicy) -> Self {
        self.http_retry = Some(retry);
        self
    }

    /// Starts the app: simulators, store, tier clients (unless models were given), engine, workers.
    pub async fn start(self) -> Result<App, AppError> {
        let AppBuilder {
            mut config,
            workers,
            backend,
            models,
            http_retry,
        } = self;
        let (sims, models, health) = match models {
            Some(models) => (Vec::new(), models, None),
            None => {
                let simulated = config.simulated.clone();
                let sims = start_simulators(&mut config.tiers, &simulated).await?;
                let (models, health) = connect_tiers(&config.tiers).await?;
                (sims, models, Some(health))
            }
        };
        let backend = match backend {
            Some(backend) => backend,
            None => {
                Backend::open(
                    &config.store,
                    &config.retention,
                    config.service.cache.max_entries,
                )
                .await?
            }
        };
        let tools = crate::tools::connect_tools(&config).await?;
        let servers = tools.1.clone();
        let engine = Arc::new(build_engine(&config, tools, backend, models, http_retry)?);
        let shutdown = CancellationToken::new();
        let tool_updates = (!config.mcp_servers.is_empty()).then(|| {
            crate::tools::keep_tools_current(
                config.tools.clone(),
                servers,
                engine.executor().catalog.clone(),
                shutdown.clone(),
            )
        });
        let workers = match workers {
            Workers::EveryTier => {
                let pool = WorkerPool {
                    concurrency: config.worker_concurrency,
                    name_prefix: "local".into(),
                    drain_timeout: config.worker_drain,
                };
                engine.spawn_worker_pool(&pool, shutdown.clone()).await
            }
            Workers::None => Vec::new(),
        };
        Ok(App {
            engine,
            config,
            tool_updates,
            shutdown,
            workers,
            sims,
            _health: health,
        })
    }
}

/// HTTP clients for every tier, checked once (a tier whose every endpoint serves another model
/// is reported on stderr), with their periodic health checks.
async fn connect_tiers(tiers: &[TierConfig]) -> Result<(Models, HealthChecks), AppError> {
    let client = planex_llm::default_client().map_err(AppError::Client)?;
    let tiers = TierSet::from_configs(tiers.to_vec(), &client).map_err(AppError::Tiers)?;
    for problem in tiers.verify_endpoints().await.map_err(AppError::Tiers)? {
        eprintln!("planex: warning: {problem}");
    }
    let health = tiers.spawn_health_checks();
    Ok((Models::from_tier_set(&tiers), health))
}

/// The engine over `backend` and `models` with the catalog and MCP servers of `tools`, and the
/// budget guard and plan cache of `config`.
fn build_engine(
    config: &Config,
    tools: (Catalog, Arc<McpServers>),
    backend: Backend,
    models: Models,
    http_retry: Option<RetryPolicy>,
) -> Result<Engine, AppError> {
    let (catalog, mcp) = tools;
    let service = &config.service;
    let mut builder = Engine::builder(
        backend.store,
        Arc::new(catalog),
        models,
        config.engine.clone(),
    )
    .mcp(mcp)
    .budget(Arc::new(BudgetGuard::new(
        backend.ledger,
        service.budget.clone(),
    )))
    .plan_cache(PlanCacheLayer::new(
        backend.plan_cache,
        service.cache.clone(),
    ))
    .drift(Arc::new(DriftGuard::new(
        backend.drift,
        config.drift.clone(),
    )));
    if let Some(retry) = http_retry {
        builder = builder.http_retry(retry);
    }
    builder.build().map_err(AppError::Engine)
}

/// A running system. Stop it with [`App::stop`], which drains workers (releasing the steps they
/// still hold) and stops the simulators it started.
pub struct App {
    engine: Arc<Engine>,
    config: Config,
    /// Counts the catalogs made current after MCP tool-list changes (none without MCP servers).
    tool_updates: Option<tokio::sync::watch::Receiver<u64>>,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<WorkerExit>>,
    sims: Vec<SimServer>,
    /// Periodic endpoint checks (reachability, model pin); they stop when dropped.
    _health: Option<HealthChecks>,
}

impl App {
    /// Starts everything `config` describes: a simulator for each `simulated` tier, the store with
    /// its ledger and plan cache, the tier clients (a tier whose every endpoint serves another
    /// model is reported on stderr), the engine, and workers as `workers` says.
    pub async fn from_config(config: Config, workers: Workers) -> Result<App, AppError> {
        App::builder(config).workers(workers).start().await
    }

    /// Starts building an app from `config`, to replace parts of it before it starts (tests,
    /// benchmarks: an in-process model, a store already open).
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            workers: Workers::EveryTier,
            backend: None,
            models: None,
            http_retry: None,
        }
    }

    /// The engine: submit tasks, read them, run steps.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The number of tool catalogs made current since start, moving each time an MCP server's
    /// new tool list is applied ([`crate::keep_tools_current`]); `None` without MCP servers.
    pub fn tool_updates(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.tool_updates.clone()
    }

    /// The config it runs, with simulated tiers' endpoints filled in.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// True when any tier is served by the built-in simulator (its output is synthetic).
    pub fn is_simulated(&self) -> bool {
        self.config.is_simulated()
    }

    /// Whether this process runs workers.
    pub fn runs_workers(&self) -> bool {
        !self.workers.is_empty()
    }

    /// The planner tier's endpoints (probed by `/readyz`).
    pub fn planner_endpoints(&self) -> Vec<Endpoint> {
        self.config
            .tier(&self.config.engine.planner_tier)
            .map(|t| t.endpoints.clone())
            .unwrap_or_default()
    }

    /// Stops the workers (each lets running steps finish for `[engine] drain_secs`, then releases
    /// what it still holds) while the tasks accepted and still being planned finish planning
    /// (for as long), then stops the simulators; returns how many steps were released.
    pub async fn stop(self) -> usize {
        self.shutdown.cancel();
        let planning = async {
            let left = self.engine.finish_planning(self.config.worker_drain).await;
            if left > 0 {
                tracing::warn!(
                    tasks = left,
                    drain_secs = self.config.worker_drain.as_secs_f64(),
                    "tasks were still being planned when the drain time ran out; they stay `planning` until orphan recovery on a replica sharing the store fails them (after the planning deadline plus a lease; with the memory store they are gone with this process)"
                );
            }
        };
        let workers = async {
            let mut released = 0;
            for worker in self.workers {
                match worker.await {
                    Ok(exit) => released += exit.released,
                    Err(error) => {
                        tracing::warn!(%error, "a worker task ended abnormally during shutdown")
                    }
                }
            }
            released
        };
        let ((), released) = tokio::join!(planning, workers);
        for sim in self.sims {
            sim.shutdown().await;
        }
        released
    }
}

/// Starts the built-in simulator for every `simulated` tier and points the tier at it.
async fn start_simulators(
    tiers: &mut [TierConfig],
    simulated: &BTreeMap<String, SimulatedTier>,
) -> Result<Vec<SimServer>, AppError> {
    let mut sims = Vec::new();
    for tier in tiers.iter_mut() {
        let Some(sim) = simulated.get(&tier.name) else {
            continue;
        };
        let server = SimServer::start(SimConfig {
            port: 0,
            model: tier.model.clone(),
            ttft_ms: sim.ttft_ms,
            tokens_per_second: sim.tokens_per_second,
            max_concurrency: tier.max_concurrency.max(1),
            ..SimConfig::default()
        })
        .await
        .map_err(|source| AppError::Simulator {
            tier: tier.name.clone(),
            source,
        })?;
        tier.endpoints = vec![Endpoint::new(server.base_url())];
        sims.push(server);
    }
    Ok(sims)
}
