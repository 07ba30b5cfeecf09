//! `planex-bench routing-cost`: the mixed 200-task workload (`workloads/mixed-200.jsonl`, pinned plans over the
//! default tools) run twice through the real engine, on simulated tiers priced like GPU pools:
//!
//! - **routed**: every tool on the `small` tier (a 7B on an L40S, $0.96/h at 6,000 tok/s), except
//!   multi-source reasoning — `compare` or `summarize` steps whose estimated input is at least
//!   500 tokens (two or more step results) — routed to the `medium` tier (a 14B on an H100, $2.49/h at 3,000 tok/s);
//! - **all-on-14B**: every step on `medium`.
//!
//! Both runs plan and synthesise on the same `planner` tier (a 70B on an H200, $4.54/h at
//! 2,500 tok/s). Token counts are real tokenizer counts of the simulators' synthetic answers, so the
//! costs are deterministic. Run: `cargo run --release -p planex-bench -- routing-cost`.
//!
//! Each run starts planex through `planex_app::App` (the embedded default's tools, a memory
//! store, in-process workers with 64 slots per tier) with the budget guard and the plan cache off,
//! as the engine this benchmark measures has neither.

use anyhow::{Context, Result};
use futures::StreamExt;
use planex_app::{App, Backend, Config, DEFAULT_CONFIG, Workers};
use planex_core::{Decimal, Price, Stage, ToolSpec};
use planex_engine::{EngineSettings, Models, RouteRule, RoutingSettings, TaskRequest};
use planex_llm::{Endpoint, Tier, TierConfig};
use planex_sim::{SimConfig, SimServer, Workload};
use planex_store::{MemoryLedger, MemoryPlanCache, MemoryStore, TaskRecord, TaskStatus};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The workload file, relative to the repository root.
const WORKLOAD: &str = "workloads/mixed-200.jsonl";
/// Tasks in flight at once.
const CONCURRENT_TASKS: usize = 16;
/// In-process worker slots per tier.
const WORKER_SLOTS: usize = 64;

/// Arguments of `planex-bench routing-cost`.
#[derive(clap::Args)]
pub(crate) struct RoutingCostArgs {
    /// The workload (JSONL of tasks with pinned plans). Default: the repository's
    /// workloads/mixed-200.jsonl.
    #[arg(long)]
    workload: Option<PathBuf>,
}

/// A GPU-hour price in cents per hour at `tps` tokens per second.
fn gpu(cents_per_hour: i64, tps: i64) -> Price {
    Price::GpuHour {
        usd_per_hour: Decimal::new(cents_per_hour, 2),
        tokens_per_second: Decimal::from(tps),
    }
}

/// One run's task records.
struct Run {
    name: &'static str,
    records: Vec<TaskRecord>,
    elapsed: Duration,
}

/// The three simulators' tier clients, priced like their GPU pools.
fn tier_models(planner: &SimServer, small: &SimServer, medium: &SimServer) -> Result<Models> {
    let client = planex_llm::default_client()?;
    let mut models = Models::new();
    for (tier, server, model, price) in [
        ("planner", planner, "sim-70b", gpu(454, 2500)),
        ("small", small, "sim-7b", gpu(96, 6000)),
        ("medium", medium, "sim-14b", gpu(249, 3000)),
    ] {
        let mut config =
            TierConfig::new(tier, model, vec![Endpoint::new(server.base_url())], price);
        config.max_concurrency = 256;
        config.stream = false;
        models.insert(Arc::new(Tier::new(config, client.clone())?));
    }
    Ok(models)
}

/// planex over `models`: the default tools all on `tool_tier`, `routing`, a memory store, in-process
/// workers, no budget guard or plan cache in effect.
async fn start_planex(models: Models, tool_tier: &str, routing: RoutingSettings) -> Result<App> {
    let mut config = Config::from_toml(DEFAULT_CONFIG)?;
    config.tools = config
        .tools
        .into_iter()
        .map(|t| ToolSpec {
            tier: tool_tier.into(),
            ..t
        })
        .collect();
    config.engine = EngineSettings {
        routing,
        ..EngineSettings::default()
    };
    config.worker_concurrency = WORKER_SLOTS;
    config.service.budget.enabled = false;
    config.service.cache.enabled = false;
    let backend = Backend {
        store: Arc::new(MemoryStore::new()),
        ledger: Arc::new(MemoryLedger::new()),
        plan_cache: Arc::new(MemoryPlanCache::new(0)),
        drift: Arc::new(planex_store::MemoryDriftStore::new()),
    };
    Ok(App::builder(config)
        .models(models)
        .backend(backend)
        .workers(Workers::EveryTier)
        .start()
        .await?)
}

/// Runs every task of the workload, `CONCURRENT_TASKS` at a time, with the tools on `tool_tier`.
async fn run_workload(
    name: &'static str,
    tool_tier: &str,
    routing: RoutingSettings,
    tasks: &[String],
    workload: &Workload,
) -> Result<Run> {
    let sim = |model: &str, workload: Workload| SimConfig {
        port: 0,
        model: model.into(),
        workload,
        max_concurrency: 256,
        ..SimConfig::default()
    };
    let planner = SimServer::start(sim("sim-70b", workload.clone())).await?;
    let small = SimServer::start(sim("sim-7b", Workload::default())).await?;
    let medium = SimServer::start(sim("sim-14b", Workload::default())).await?;
    let models = tier_models(&planner, &small, &medium)?;
    let app = start_planex(models, tool_tier, routing).await?;
    let engine = app.engine().clone();
    let started = Instant::now();
    let records: Vec<Result<TaskRecord>> = futures::stream::iter(tasks.iter().cloned())
        .map(|task| {
            let engine = engine.clone();
            async move {
                // The workload's plans have up to 16 steps.
                let request = TaskRequest {
                    task,
                    max_subtasks: Some(16),
                    ..TaskRequest::default()
                };
                Ok(engine.run(request, Duration::from_secs(120)).await?)
            }
        })
        .buffer_unordered(CONCURRENT_TASKS)
        .collect()
        .await;
    let elapsed = started.elapsed();
    app.stop().await;
    for server in [planner, small, medium] {
        server.shutdown().await;
    }
    Ok(Run {
        name,
        records: records.into_iter().collect::<Result<_>>()?,
        elapsed,
    })
}

/// Counts and costs of one run.
struct Summary {
    complete: usize,
    steps: BTreeMap<String, usize>,
    step_cost: Decimal,
    total_cost: Decimal,
}

fn summarize(run: &Run) -> Summary {
    let mut steps = BTreeMap::new();
    let mut step_cost = Decimal::ZERO;
    let mut total_cost = Decimal::ZERO;
    for record in &run.records {
        for step in record.steps.values() {
            if step.spec.stage == Stage::Step {
                *steps.entry(step.spec.tier.clone()).or_insert(0) += 1;
            }
        }
        let cost = record.cost();
        step_cost += cost
            .by_stage
            .get("step")
            .map_or(Decimal::ZERO, |t| t.cost_usd);
        total_cost += cost.total.cost_usd;
    }
    Summary {
        complete: run
            .records
            .iter()
            .filter(|r| r.status == TaskStatus::Complete)
            .count(),
        steps,
        step_cost,
        total_cost,
    }
}

fn per_thousand(cost: Decimal, tasks: usize) -> String {
    format!(
        "${}",
        (cost * Decimal::from(1000) / Decimal::from(tasks as u64)).round_dp(4)
    )
}

/// The workload's task texts, in file order.
fn task_texts(jsonl: &str) -> Result<Vec<String>> {
    jsonl
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l)?;
            value["task"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("a workload line without a \"task\" string: {l}"))
        })
        .collect()
}

/// Runs the benchmark (routed, then all on the 14B) and prints the table.
pub(crate) async fn run(args: RoutingCostArgs) -> Result<ExitCode> {
    let (path, shown) = match args.workload {
        Some(path) => {
            let shown = path.display().to_string();
            (path, shown)
        }
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(WORKLOAD),
            WORKLOAD.to_owned(),
        ),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the workload {}", path.display()))?;
    let workload = Workload::from_jsonl(&text)?;
    let tasks = task_texts(&text)?;
    let routed_rules = RoutingSettings {
        categories: BTreeMap::from([(
            "reasoning".to_owned(),
            vec!["compare".to_owned(), "summarize".to_owned()],
        )]),
        rules: vec![RouteRule {
            category: Some("reasoning".into()),
            min_input_tokens: Some(500),
            tier: "medium".into(),
            ..RouteRule::default()
        }],
        ..RoutingSettings::default()
    };
    let routed = run_workload(
        "routed (7B + 14B)",
        "small",
        routed_rules,
        &tasks,
        &workload,
    )
    .await?;
    let all_14b = run_workload(
        "all on 14B",
        "medium",
        RoutingSettings::default(),
        &tasks,
        &workload,
    )
    .await?;
    let n = tasks.len();
    println!(
        "{n} tasks from {shown}; tiers: small = 7B on L40S ($0.96/h, 6,000 tok/s), medium = 14B on H100 ($2.49/h, 3,000 tok/s), planner = 70B on H200 ($4.54/h, 2,500 tok/s)\n"
    );
    println!(
        "| run | complete | steps on small | steps on medium | step cost / 1,000 tasks | total cost / 1,000 tasks (incl. plan + synthesis) | wall time |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut summaries = Vec::new();
    for run in [&routed, &all_14b] {
        let s = summarize(run);
        let total_steps: usize = s.steps.values().sum();
        let share = |tier: &str| {
            let k = s.steps.get(tier).copied().unwrap_or(0);
            format!(
                "{k} ({:.1} %)",
                100.0 * k as f64 / total_steps.max(1) as f64
            )
        };
        println!(
            "| {} | {}/{n} | {} | {} | {} | {} | {:.1} s |",
            run.name,
            s.complete,
            share("small"),
            share("medium"),
            per_thousand(s.step_cost, n),
            per_thousand(s.total_cost, n),
            run.elapsed.as_secs_f64()
        );
        summaries.push(s);
    }
    let saving = |a: Decimal, b: Decimal| {
        if b.is_zero() {
            Decimal::ZERO
        } else {
            ((b - a) / b * Decimal::from(100)).round_dp(1)
        }
    };
    println!(
        "\nrouting saves {} % of the step cost and {} % of the total cost versus all-on-14B",
        saving(summaries[0].step_cost, summaries[1].step_cost),
        saving(summaries[0].total_cost, summaries[1].total_cost)
    );
    Ok(ExitCode::SUCCESS)
}
