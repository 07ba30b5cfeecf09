//! [`App`]: a running planex (simulators for `simulated` tiers, store, tier clients with their
//! health checks, engine, and in-process workers when asked), built from a [`Config`].

use crate::AppError;
use crate::config::{Config, SimulatedTier};
use crate::store::Backend;
use planex_engine::{BudgetGuard, Engine, Models, PlanCacheLayer, WorkerExit, WorkerPool};
use planex_llm::{Endpoint, HealthChecks, TierConfig, TierSet};
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

/// A running system. Stop it with [`App::stop`], which drains workers (releasing the steps they
/// still hold) and stops the simulators it started.
pub struct App {
    engine: Arc<Engine>,
    config: Config,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<WorkerExit>>,
    sims: Vec<SimServer>,
    /// Periodic endpoint checks (reachability, model pin); they stop when dropped.
    _health: HealthChecks,
}

impl App {
    /// Starts everything `config` describes: a simulator for each `simulated` tier, the store with
    /// its ledger and plan cache, the tier clients (a tier whose every endpoint serves another
    /// model is reported on stderr), the engine, and workers as `workers` says.
    pub async fn from_config(mut config: Config, workers: Workers) -> Result<App, AppError> {
        let simulated = config.simulated.clone();
        let sims = start_simulators(&mut config.tiers, &simulated).await?;
        let backend = Backend::open(&config.store, config.service.cache.max_entries).await?;
        let client = planex_llm::default_client().map_err(AppError::Client)?;
        let tiers =
            TierSet::from_configs(config.tiers.clone(), &client).map_err(AppError::Tiers)?;
        for problem in tiers.verify_endpoints().await.map_err(AppError::Tiers)? {
            eprintln!("planex: warning: {problem}");
        }
        let health = tiers.spawn_health_checks();
        let catalog = Arc::new(config.catalog()?);
        let service = &config.service;
        let engine = Engine::builder(
            backend.store,
            catalog,
            Models::from_tier_set(&tiers),
            config.engine.clone(),
        )
        .budget(Arc::new(BudgetGuard::new(
            backend.ledger,
            service.budget.clone(),
        )))
        .plan_cache(PlanCacheLayer::new(
            backend.plan_cache,
            service.cache.clone(),
        ))
        .build()
        .map_err(AppError::Engine)?;
        let engine = Arc::new(engine);
        let shutdown = CancellationToken::new();
        let workers = match workers {
            Workers::EveryTier => {
                let pool = WorkerPool {
                    concurrency: config.worker_concurrency,
                    name_prefix: "local".into(),
                    drain_timeout: config.worker_drain,
                };
                engine.spawn_worker_pool(&pool, shutdown.clone())
            }
            Workers::None => Vec::new(),
        };
        Ok(App {
            engine,
            config,
            shutdown,
            workers,
            sims,
            _health: health,
        })
    }

    /// The engine: submit tasks, read them, run steps.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
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
    /// what it still holds) and the simulators; returns how many steps were released.
    pub async fn stop(self) -> usize {
        self.shutdown.cancel();
        let mut released = 0;
        for worker in self.workers {
            match worker.await {
                Ok(exit) => released += exit.released,
                Err(error) => {
                    tracing::warn!(%error, "a worker task ended abnormally during shutdown")
                }
            }
        }
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
