//! The scaling report over a real store and real tiers: queue depth from `Store::queue_depth`,
//! TTFT and healthy endpoints from the tier clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::Catalog;
use planex_engine::scaling::{ScalingAction, ScalingRule, ScalingSettings};
use planex_engine::{Engine, EngineSettings, Models, TaskRequest};
use planex_llm::Tier;
use planex_sim::{SimConfig, Workload};
use planex_store::{MemoryStore, Store};
use planex_testkit::fixtures::llm_tool;
use planex_testkit::llm::sim_tier_config;
use planex_testkit::sim;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_no_workers_asks_for_more_executor_nodes() {
    let task = "four lookups";
    let steps: Vec<serde_json::Value> = (1..=4)
        .map(|i| json!({"step_id": i, "tool_name": "lookup", "args": {"topic": format!("t{i}")}, "depends_on": []}))
        .collect();
    let mut workload = Workload::default();
    workload.insert(task, vec![json!({ "steps": steps }).to_string()]);
    let planner = sim::start(SimConfig {
        workload,
        ttft_ms: 5,
        ..sim::config("sim-planner")
    })
    .await;
    let executor = sim::start(sim::config("sim-executor")).await;
    let client = reqwest::Client::new();
    let mut models = Models::new();
    for config in [
        sim_tier_config("planner", &planner, "sim-planner", "4.54", "2500"),
        sim_tier_config("executor", &executor, "sim-executor", "0.96", "6000"),
    ] {
        models.insert(Arc::new(Tier::new(config, client.clone()).unwrap()));
    }
    let catalog = Catalog::new(vec![llm_tool("lookup", "topic", "executor")]).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let settings = EngineSettings {
        synthesis: false,
        scaling: ScalingSettings {
            executor_queue_depth: 3,
            ..ScalingSettings::default()
        },
        ..EngineSettings::default()
    };
    let engine = Engine::new(store, Arc::new(catalog), models, settings).unwrap();
    // No workers: the four ready steps stay queued.
    engine
        .submit(TaskRequest {
            task: task.into(),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    let report = engine.scaling_report().await.unwrap();
    assert_eq!(report.thresholds.executor_queue_depth, 3);
    let by_tier = |name: &str| report.tiers.iter().find(|t| t.tier == name).unwrap();
    let executor_decision = by_tier("executor");
    assert_eq!(executor_decision.rule, ScalingRule::QueueDepth);
    assert_eq!(executor_decision.queue_depth, 4);
    assert_eq!(executor_decision.healthy_endpoints, 1);
    assert_eq!(executor_decision.desired_replicas, 2);
    assert_eq!(executor_decision.action, ScalingAction::ScaleOut);
    assert_eq!(executor_decision.reason, "queue depth 4 > 3: add a node");
    let planner_decision = by_tier("planner");
    assert_eq!(planner_decision.rule, ScalingRule::Ttft);
    // The planner call was streamed, so its TTFT (at least the simulator's 5 ms) is in the window.
    assert!(planner_decision.ttft_p95_seconds.unwrap() >= 0.005);
    assert_eq!(planner_decision.action, ScalingAction::Hold);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["tiers"][0]["action"], "scale_out");
    planner.shutdown().await;
    executor.shutdown().await;
}
