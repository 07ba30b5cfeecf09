//! The engine benchmarks' workload: two llm tools on the executor tier, a fixed 10-step plan in
//! three levels (4 + 4 + 2) and a 10-step chain, and the models that answer them (an in-process
//! null model, or a real tier client of a simulator).

use anyhow::Result;
use planex_core::{Catalog, Decimal, Price, ToolSpec, Usage};
use planex_llm::{ChatModel, Endpoint, InstantModel, Tier, TierConfig};
use planex_sim::SimServer;
use std::sync::Arc;

/// Dependency levels of the benchmark plan.
pub(crate) const LEVELS: u32 = 3;
/// Steps of the benchmark plan (and of the chain).
pub(crate) const STEPS: usize = 10;

/// A GPU-hour price: `cents_per_hour` at `tokens_per_second`.
pub(crate) fn gpu_price(cents_per_hour: i64, tokens_per_second: i64) -> Price {
    Price::GpuHour {
        usd_per_hour: Decimal::new(cents_per_hour, 2),
        tokens_per_second: Decimal::from(tokens_per_second),
    }
}

/// The two tools, `lookup` and `summarize`, both on the `executor` tier.
pub(crate) fn catalog() -> Result<Arc<Catalog>> {
    Ok(Arc::new(Catalog::new(vec![
        ToolSpec::one_arg_llm("lookup", "topic", "executor", 128),
        ToolSpec::one_arg_llm("summarize", "text", "executor", 128),
    ])?))
}

/// A `summarize` step combining the results of `deps`.
fn summarize_step(id: u32, deps: &[u32]) -> serde_json::Value {
    let text: Vec<String> = deps
        .iter()
        .map(|d| format!("{{step_{d}_result}}"))
        .collect();
    serde_json::json!({
        "step_id": id, "tool_name": "summarize",
        "args": {"text": format!("Combine:\n{}", text.join("\n---\n"))},
        "depends_on": deps,
    })
}

/// 10 steps in three dependency levels: 1–4 independent, 5–8 each need two of them, 9–10 two of those.
pub(crate) fn dag_plan() -> String {
    let mut steps: Vec<serde_json::Value> = (1..=4)
        .map(|id| serde_json::json!({"step_id": id, "tool_name": "lookup", "args": {"topic": format!("topic {id}")}, "depends_on": []}))
        .collect();
    for (id, a, b) in [
        (5, 1, 2),
        (6, 2, 3),
        (7, 3, 4),
        (8, 4, 1),
        (9, 5, 6),
        (10, 7, 8),
    ] {
        steps.push(summarize_step(id, &[a, b]));
    }
    serde_json::json!({ "steps": steps }).to_string()
}

/// 10 steps, each depending on the previous one: what a sequential loop would run.
pub(crate) fn chain_plan() -> String {
    let mut steps = vec![
        serde_json::json!({"step_id": 1, "tool_name": "lookup", "args": {"topic": "topic 1"}, "depends_on": []}),
    ];
    steps.extend((2..=10).map(|id| summarize_step(id, &[id - 1])));
    serde_json::json!({ "steps": steps }).to_string()
}

/// An in-process model on `tier` that answers every call at once with `reply` and fixed usage.
pub(crate) fn null_model(
    tier: &str,
    reply: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    price: Price,
) -> Arc<dyn ChatModel> {
    Arc::new(InstantModel::new(tier, price).with_reply(
        &reply,
        Usage {
            prompt_tokens,
            completion_tokens,
            cached_tokens: 0,
        },
    ))
}

/// The null executor's fixed answer (about 120 tokens).
pub(crate) fn null_executor_reply() -> String {
    "[simulated] A fixed executor answer of about one hundred and twenty tokens. ".repeat(8)
}

/// A real tier client (`stream` or not) of the simulator `sim` serving `model`.
pub(crate) fn sim_tier(
    name: &str,
    sim: &SimServer,
    model: &str,
    price: Price,
    stream: bool,
) -> Result<Arc<dyn ChatModel>> {
    let mut config = TierConfig::new(name, model, vec![Endpoint::new(sim.base_url())], price);
    config.stream = stream;
    Ok(Arc::new(Tier::new(config, planex_llm::default_client()?)?))
}

/// The two simulators of the makespan benchmarks and their tier clients: a planner answering
/// `workload` after `planner_ttft_ms` at `planner_tps` tokens per second (`None`: the
/// simulator's default), and an executor whose every step takes `step_ms` (its TTFT, the whole
/// answer at once).
pub(crate) struct MakespanSims {
    pub(crate) planner: Arc<dyn ChatModel>,
    pub(crate) executor: Arc<dyn ChatModel>,
    pub(crate) sims: Vec<SimServer>,
}

impl MakespanSims {
    /// Starts both simulators on free loopback ports; the tiers stream when `stream`.
    pub(crate) async fn start(
        workload: planex_sim::Workload,
        planner_ttft_ms: u64,
        planner_tps: Option<f64>,
        step_ms: u64,
        stream: bool,
    ) -> Result<MakespanSims> {
        let defaults = planex_sim::SimConfig::default();
        let planner_sim = SimServer::start(planex_sim::SimConfig {
            port: 0,
            model: "sim-planner".into(),
            ttft_ms: planner_ttft_ms,
            tokens_per_second: planner_tps.unwrap_or(defaults.tokens_per_second),
            workload,
            ..planex_sim::SimConfig::default()
        })
        .await?;
        let executor_sim = SimServer::start(planex_sim::SimConfig {
            port: 0,
            model: "sim-executor".into(),
            ttft_ms: step_ms,
            tokens_per_second: 0.0,
            ..defaults
        })
        .await?;
        let planner = sim_tier(
            "planner",
            &planner_sim,
            "sim-planner",
            gpu_price(454, 2500),
            stream,
        )?;
        let executor = sim_tier(
            "executor",
            &executor_sim,
            "sim-executor",
            gpu_price(96, 6000),
            stream,
        )?;
        Ok(MakespanSims {
            planner,
            executor,
            sims: vec![planner_sim, executor_sim],
        })
    }
}
