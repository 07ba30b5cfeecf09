//! The two model tiers of an engine or API test: a planner and an executor, each a real tier
//! client talking HTTP to its own simulator on a loopback port, wrapped in a [`RecordingModel`].

use crate::llm::{RecordingModel, SIM_TIER_RETRIES, fast_retry, sim_tier_config};
use planex_engine::Models;
use planex_llm::{Tier, TierConfig};
use planex_sim::{SimConfig, SimServer, Workload};
use std::sync::Arc;

/// How to start a [`SimPair`].
pub struct SimPairOptions {
    /// Plans the planner simulator answers, per task text (JSON text, in order).
    pub workload: Vec<(String, Vec<String>)>,
    /// The executor simulator's time to first token, in milliseconds.
    pub executor_ttft_ms: u64,
    /// The planner simulator's time to first token, in milliseconds.
    pub planner_ttft_ms: u64,
    /// Fast retries of both tiers ([`fast_retry`]).
    pub retries: u32,
    /// Failed executor steps are retried once on the planner tier.
    pub executor_escalates: bool,
    /// The planner simulator's output rate in tokens per second (`None`: the simulator's
    /// default).
    pub planner_tps: Option<f64>,
}

impl Default for SimPairOptions {
    fn default() -> Self {
        SimPairOptions {
            workload: Vec::new(),
            executor_ttft_ms: 0,
            planner_ttft_ms: 0,
            retries: SIM_TIER_RETRIES,
            executor_escalates: false,
            planner_tps: None,
        }
    }
}

/// Tier `planner` (model `sim-planner`, $4.54 per GPU hour at 2,500 tokens/s) and tier `executor`
/// (model `sim-executor`, $0.96 per GPU hour at 6,000 tokens/s), each on its own simulator.
pub struct SimPair {
    /// The planner's simulator (its `stats()` count the requests it served).
    pub planner_sim: SimServer,
    /// The executor's simulator.
    pub executor_sim: SimServer,
    /// The planner tier, recording its calls.
    pub planner: Arc<RecordingModel>,
    /// The executor tier, recording its calls.
    pub executor: Arc<RecordingModel>,
}

/// A tier client for `config`. Panics when the settings are refused.
#[allow(clippy::panic)] // A test helper: panics with the reason.
fn tier(config: TierConfig, client: reqwest::Client) -> Arc<Tier> {
    let name = config.name.clone();
    match Tier::new(config, client) {
        Ok(tier) => Arc::new(tier),
        Err(e) => panic!("tier {name} must build: {e}"),
    }
}

impl SimPair {
    /// Starts both simulators and builds both tiers. Panics when either cannot start.
    pub async fn start(options: SimPairOptions) -> SimPair {
        let mut workload = Workload::default();
        for (task, plans) in &options.workload {
            workload.insert(task, plans.clone());
        }
        let defaults = crate::sim::config("sim-planner");
        let planner_sim = crate::sim::start(SimConfig {
            workload,
            ttft_ms: options.planner_ttft_ms,
            tokens_per_second: options.planner_tps.unwrap_or(defaults.tokens_per_second),
            ..defaults
        })
        .await;
        let executor_sim = crate::sim::start(SimConfig {
            ttft_ms: options.executor_ttft_ms,
            ..crate::sim::config("sim-executor")
        })
        .await;
        let mut planner_config =
            sim_tier_config("planner", &planner_sim, "sim-planner", "4.54", "2500");
        planner_config.retry = fast_retry(options.retries);
        let mut executor_config =
            sim_tier_config("executor", &executor_sim, "sim-executor", "0.96", "6000");
        executor_config.retry = fast_retry(options.retries);
        if options.executor_escalates {
            executor_config.escalate_to = Some("planner".into());
        }
        let client = reqwest::Client::new();
        SimPair {
            planner: RecordingModel::new(tier(planner_config, client.clone())),
            executor: RecordingModel::new(tier(executor_config, client)),
            planner_sim,
            executor_sim,
        }
    }

    /// Both tiers, as the engine takes them.
    pub fn models(&self) -> Models {
        let mut models = Models::new();
        models.insert(self.planner.clone());
        models.insert(self.executor.clone());
        models
    }
}
