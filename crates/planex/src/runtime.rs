//! Wires a loaded config into a running engine: starts the simulator for `simulated` tiers, builds
//! the tier clients, the store and in-process workers.

use anyhow::{Context, Result, bail};
use planex_engine::config::Settings;
use planex_engine::{Engine, Models};
use planex_llm::{Endpoint, TierSet};
use planex_sim::{SimConfig, SimServer};
use planex_store::{MemoryStore, Store};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running engine with its workers and any simulators it started.
pub struct Runtime {
    pub engine: Arc<Engine>,
    pub simulated: bool,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    sims: Vec<SimServer>,
}

impl Runtime {
    pub async fn start(mut settings: Settings) -> Result<Runtime> {
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
        let store: Arc<dyn Store> = match settings.store.backend.as_str() {
            "memory" => Arc::new(MemoryStore::new()),
            other => bail!(
                "store backend {other:?} is not available in this build; use backend = \"memory\""
            ),
        };
        let client = planex_llm::default_client()?;
        let tiers = TierSet::from_configs(settings.tiers.clone(), &client)?;
        let catalog = Arc::new(settings.catalog()?);
        let engine = Arc::new(Engine::new(
            store,
            catalog,
            Models::from_tier_set(&tiers),
            settings.engine.clone(),
        )?);
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(settings.worker_concurrency, "local", shutdown.clone());
        Ok(Runtime {
            engine,
            simulated: settings.is_simulated(),
            shutdown,
            workers,
            sims,
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
