//! Routing benchmark: the mixed 200-task workload (`workloads/mixed-200.jsonl`, pinned plans over the
//! default tools) run twice through the real engine, on simulated tiers priced like GPU pools:
//!
//! - **routed**: every tool on the `small` tier (a 7B on an L40S, $0.96/h at 6,000 tok/s), except
//!   multi-source reasoning — `compare` or `summarize` steps whose estimated input is at least
//!   500 tokens (two or more step results) — routed to the `medium` tier (a 14B on an H100, $2.49/h at 3,000 tok/s);
//! - **all-on-14B**: every step on `medium`.
//!
//! Both runs plan and synthesise on the same `planner` tier (a 70B on an H200, $4.54/h at
//! 2,500 tok/s). Token counts are real tokenizer counts of the simulators' synthetic answers, so the
//! costs are deterministic. Run: `cargo run --release -p planex-app --example routing_cost`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use futures::StreamExt;
use planex_app::{Config as Settings, DEFAULT_CONFIG};
use planex_core::{Catalog, Decimal, Price, Stage, ToolSpec};
use planex_engine::{Engine, EngineSettings, Models, RouteRule, RoutingSettings, TaskRequest};
use planex_llm::{Endpoint, Tier, TierConfig};
use planex_sim::{SimConfig, SimServer, Workload};
use planex_store::{MemoryStore, Store, TaskRecord, TaskStatus};
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WORKLOAD: &str = "workloads/mixed-200.jsonl";
const CONCURRENT_TASKS: usize = 16;

fn gpu(usd_per_hour: &str, tps: &str) -> Price {
    Price::GpuHour {
        usd_per_hour: Decimal::from_str(usd_per_hour).unwrap(),
        tokens_per_second: Decimal::from_str(tps).unwrap(),
    }
}

struct Run {
    name: &'static str,
    records: Vec<TaskRecord>,
    elapsed: Duration,
}

async fn run(
    name: &'static str,
    tool_tier: &str,
    routing: RoutingSettings,
    tasks: &[String],
    workload: &Workload,
) -> Run {
    let sim = |model: &str, workload: Workload| SimConfig {
        port: 0,
        model: model.into(),
        workload,
        max_concurrency: 256,
        ..SimConfig::default()
    };
    let planner = SimServer::start(sim("sim-70b", workload.clone()))
        .await
        .unwrap();
    let small = SimServer::start(sim("sim-7b", Workload::default()))
        .await
        .unwrap();
    let medium = SimServer::start(sim("sim-14b", Workload::default()))
        .await
        .unwrap();
    let client = planex_llm::default_client().unwrap();
    let mut models = Models::new();
    for (tier, server, model, price) in [
        ("planner", &planner, "sim-70b", gpu("4.54", "2500")),
        ("small", &small, "sim-7b", gpu("0.96", "6000")),
        ("medium", &medium, "sim-14b", gpu("2.49", "3000")),
    ] {
        let mut config =
            TierConfig::new(tier, model, vec![Endpoint::new(server.base_url())], price);
        config.max_concurrency = 256;
        config.stream = false;
        models.insert(Arc::new(Tier::new(config, client.clone()).unwrap()));
    }
    let defaults = Settings::from_toml(DEFAULT_CONFIG).unwrap();
    let tools: Vec<ToolSpec> = defaults
        .tools
        .into_iter()
        .map(|t| ToolSpec {
            tier: tool_tier.into(),
            ..t
        })
        .collect();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let settings = EngineSettings {
        routing,
        ..EngineSettings::default()
    };
    let engine = Arc::new(
        Engine::new(
            store,
            Arc::new(Catalog::new(tools).unwrap()),
            models,
            settings,
        )
        .unwrap(),
    );
    let shutdown = CancellationToken::new();
    let workers = engine.spawn_workers(64, "bench", shutdown.clone());
    let started = Instant::now();
    let records: Vec<TaskRecord> = futures::stream::iter(tasks.iter().cloned())
        .map(|task| {
            let engine = engine.clone();
            async move {
                // The workload's plans have up to 16 steps.
                let request = TaskRequest {
                    task,
                    max_subtasks: Some(16),
                    ..TaskRequest::default()
                };
                engine.run(request, Duration::from_secs(120)).await.unwrap()
            }
        })
        .buffer_unordered(CONCURRENT_TASKS)
        .collect()
        .await;
    let elapsed = started.elapsed();
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
    for server in [planner, small, medium] {
        server.shutdown().await;
    }
    Run {
        name,
        records,
        elapsed,
    }
}

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

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(WORKLOAD);
    let text = std::fs::read_to_string(&path).unwrap();
    let workload = Workload::from_jsonl(&text).unwrap();
    let tasks: Vec<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).unwrap();
            value["task"].as_str().unwrap().to_owned()
        })
        .collect();
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
    let routed = run(
        "routed (7B + 14B)",
        "small",
        routed_rules,
        &tasks,
        &workload,
    )
    .await;
    let all_14b = run(
        "all on 14B",
        "medium",
        RoutingSettings::default(),
        &tasks,
        &workload,
    )
    .await;
    let n = tasks.len();
    println!(
        "{n} tasks from {WORKLOAD}; tiers: small = 7B on L40S ($0.96/h, 6,000 tok/s), medium = 14B on H100 ($2.49/h, 3,000 tok/s), planner = 70B on H200 ($4.54/h, 2,500 tok/s)\n"
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
}
