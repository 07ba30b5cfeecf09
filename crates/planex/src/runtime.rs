//! Wires a loaded config into a running engine: starts the simulator for `simulated` tiers, builds
//! the tier clients, the store (`[store] backend = "memory" | "redis"`) and in-process workers.

use anyhow::{Context, Result, bail};
use planex_engine::config::{RawStore, Settings};
use planex_engine::{Engine, Models};
use planex_llm::{Endpoint, TierSet};
use planex_sim::{SimConfig, SimServer};
use planex_store::{MemoryStore, PlanCache, RedisStore, SpendLedger, Store};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running engine with its workers and any simulators it started.
pub struct Runtime {
    pub engine: Arc<Engine>,
    pub simulated: bool,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    sims: Vec<SimServer>,
    /// Periodic endpoint checks (reachability, model pin); stop when dropped.
    _health: planex_llm::HealthChecks,
}

/// The configured store, and the budget ledger and plan cache that a shared backend provides
/// (`None` for memory: `attach_service` then keeps them in this process).
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub shared: Option<SharedService>,
}

/// A backend's budget ledger and plan cache, shared by every process using it.
pub struct SharedService {
    pub ledger: Arc<dyn SpendLedger>,
    pub plan_cache: Arc<dyn PlanCache>,
}

/// Opens the configured store: in memory, or Redis at `url` (shared by every process, together
/// with its ledger and plan cache).
pub async fn open_backend(store: &RawStore) -> Result<Backend> {
    match (store.backend.as_str(), store.url.as_deref()) {
        ("memory", None) => Ok(Backend {
            store: Arc::new(MemoryStore::new()),
            shared: None,
        }),
        ("memory", Some(_)) => bail!(
            "store.url is set but store.backend is \"memory\"; set backend = \"redis\" to use the URL"
        ),
        ("redis", Some(url)) => {
            let redis = Arc::new(
                RedisStore::connect(url)
                    .await
                    .context("opening the Redis store ([store] url)")?,
            );
            Ok(Backend {
                store: redis.clone(),
                shared: Some(SharedService {
                    ledger: redis.clone(),
                    plan_cache: redis,
                }),
            })
        }
        ("redis", None) => {
            bail!("store.backend = \"redis\" needs url = \"redis://host:6379\" in [store]")
        }
        (other, _) => bail!("unknown store backend {other:?}; use \"memory\" or \"redis\""),
    }
}

/// Applies a `--store` flag: `memory` or a `redis://` URL.
pub fn apply_store_flag(settings: &mut Settings, flag: &str) -> Result<()> {
    if flag == "memory" {
        settings.store = RawStore::default();
    } else if flag.starts_with("redis://") || flag.starts_with("rediss://") {
        settings.store = RawStore {
            backend: "redis".into(),
            url: Some(flag.to_owned()),
        };
    } else {
        bail!("--store {flag:?}: use \"memory\" or a Redis URL like redis://127.0.0.1:6379");
    }
    Ok(())
}

impl Runtime {
    /// Starts the engine with in-process workers for every tier.
    pub async fn start(settings: Settings) -> Result<Runtime> {
        Self::start_with(settings, true).await
    }

    /// Starts the engine; `workers` says whether this process runs workers for every tier
    /// (`planex worker` runs its own single-tier worker instead).
    pub async fn start_with(mut settings: Settings, workers: bool) -> Result<Runtime> {
        let mut sims = Vec::new();
        for tier in &mut settings.tiers {
            if let Some(sim) = settings.simulated.get(&tier.name) {
                let server = SimServer::start(SimConfig {
                    port: 0,
                    model: tier.model.clone(),
                    ttft_ms: sim.ttft_ms,
                    tokens_per_second: sim.tokens_per_second,
                    max_concurrency: tier.max_concurrency.max(1),
                    ..SimConfig::default()
                })
                .await
                .with_context(|| format!("starting the simulator for tier {}", tier.name))?;
                tier.endpoints = vec![Endpoint::new(server.base_url())];
                sims.push(server);
            }
        }
        let Backend { store, shared } = open_backend(&settings.store).await?;
        let client = planex_llm::default_client()?;
        let tiers = TierSet::from_configs(settings.tiers.clone(), &client)?;
        // Start-up check: a tier whose every endpoint serves another model fails here, clearly.
        for problem in tiers.verify_endpoints().await? {
            eprintln!("planex: warning: {problem}");
        }
        let health = tiers.spawn_health_checks();
        let catalog = Arc::new(settings.catalog()?);
        let engine = Engine::new(
            store,
            catalog,
            Models::from_tier_set(&tiers),
            settings.engine.clone(),
        )?;
        let engine = Arc::new(crate::serve::attach_service(engine, &settings, shared));
        let shutdown = CancellationToken::new();
        let workers = if workers {
            engine.spawn_workers(settings.worker_concurrency, "local", shutdown.clone())
        } else {
            Vec::new()
        };
        Ok(Runtime {
            engine,
            simulated: settings.is_simulated(),
            shutdown,
            workers,
            sims,
            _health: health,
        })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        for sim in self.sims {
            sim.shutdown().await;
        }
    }
}
