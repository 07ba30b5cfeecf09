//! Routing and escalation end to end: three simulated tiers (planner, small, medium) over loopback
//! HTTP, real tier clients, the memory store and in-process workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{Catalog, Decimal, StepId, ToolSpec};
use planex_engine::{
    Engine, EngineSettings, Escalation, Models, RouteRule, RoutingSettings, TaskRequest,
    escalations,
};
use planex_llm::Tier;
use planex_sim::{SimConfig, SimServer, Workload};
use planex_store::{MemoryStore, StepState, Store, TaskRecord, TaskStatus};
use planex_testkit::engine_harness::WAIT;
use planex_testkit::fixtures::llm_tool;
use planex_testkit::llm::sim_tier_config;
use planex_testkit::sim;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const TASK: &str = "compare two GPU clouds";

struct Stack {
    planner: SimServer,
    small: SimServer,
    medium: SimServer,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
}

struct Options {
    plan: serde_json::Value,
    small: SimConfig,
    routing: RoutingSettings,
}

impl Options {
    fn new(plan: serde_json::Value) -> Self {
        Options {
            plan,
            small: sim::config("sim-small"),
            routing: RoutingSettings::default(),
        }
    }
}

/// `label`: an llm tool whose answer must be JSON with a string `summary`.
fn label_tool() -> ToolSpec {
    ToolSpec {
        // Closed (`additionalProperties: false`), as the strict mode the engine asks for requires.
        output_schema: Some(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {"summary": {"type": "string"}},
            "required": ["summary"]
        })),
        ..llm_tool("label", "text", "small")
    }
}

impl Stack {
    async fn start(options: Options) -> Stack {
        let mut workload = Workload::default();
        workload.insert(TASK, vec![options.plan.to_string()]);
        let planner = sim::start(SimConfig {
            workload,
            ..sim::config("sim-planner")
        })
        .await;
        let small = sim::start(options.small).await;
        let medium = sim::start(sim::config("sim-medium")).await;
        let client = reqwest::Client::new();
        let mut small_tier = sim_tier_config("small", &small, "sim-small", "0.96", "6000");
        small_tier.escalate_to = Some("medium".into());
        small_tier.retry.max_retries = 1;
        let mut models = Models::new();
        for config in [
            sim_tier_config("planner", &planner, "sim-planner", "4.54", "2500"),
            small_tier,
            sim_tier_config("medium", &medium, "sim-medium", "2.20", "3000"),
        ] {
            models.insert(Arc::new(Tier::new(config, client.clone()).unwrap()));
        }
        let catalog = Catalog::new(vec![
            llm_tool("extract", "text", "small"),
            llm_tool("compare", "text", "small"),
            label_tool(),
        ])
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut settings = EngineSettings {
            synthesis: false,
            routing: options.routing.clone(),
            ..EngineSettings::default()
        };
        settings.planner.tier_hints = options.routing.hint_tiers.clone();
        let engine = Arc::new(Engine::new(store, Arc::new(catalog), models, settings).unwrap());
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(4, "test", shutdown.clone()).await;
        Stack {
            planner,
            small,
            medium,
            engine,
            shutdown,
            workers,
        }
    }

    async fn run(&self) -> TaskRecord {
        let request = TaskRequest {
            task: TASK.into(),
            ..TaskRequest::default()
        };
        self.engine.run(request, WAIT).await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for worker in self.workers {
            worker.await.unwrap();
        }
        for sim in [self.planner, self.small, self.medium] {
            sim.shutdown().await;
        }
    }
}

fn cost_on(record: &TaskRecord, tier: &str, step: u32) -> Decimal {
    record
        .calls
        .iter()
        .filter(|c| c.tier == tier && c.step_id == Some(StepId(step)))
        .map(|c| c.cost_usd)
        .sum()
}

fn two_step_plan(tool: &str) -> serde_json::Value {
    json!({"steps": [
        {"step_id": 1, "tool_name": "extract", "args": {"text": "prices of H200 and L40S"}, "depends_on": []},
        {"step_id": 2, "tool_name": tool, "args": {"text": "{step_1_result}"}, "depends_on": [1]}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_on_the_tier_their_rule_chooses() {
    let routing = RoutingSettings {
        categories: BTreeMap::from([("reasoning".into(), vec!["compare".into()])]),
        rules: vec![RouteRule {
            category: Some("reasoning".into()),
            min_input_tokens: Some(20),
            tier: "medium".into(),
            ..RouteRule::default()
        }],
        ..RoutingSettings::default()
    };
    let stack = Stack::start(Options {
        routing,
        ..Options::new(two_step_plan("compare"))
    })
    .await;
    let record = stack.run().await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    assert_eq!(record.steps[&StepId(1)].spec.tier, "small");
    assert_eq!(record.steps[&StepId(2)].spec.tier, "medium");
    assert_eq!(stack.small.stats().executor_requests, 1);
    assert_eq!(stack.medium.stats().executor_requests, 1);
    assert!(cost_on(&record, "medium", 2) > Decimal::ZERO);
    assert!(escalations(&record).is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failing_on_its_tier_succeeds_after_escalation() {
    let stack = Stack::start(Options {
        small: SimConfig {
            error_rate: 1.0,
            ..sim::config("sim-small")
        },
        ..Options::new(two_step_plan("compare"))
    })
    .await;
    let record = stack.run().await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    for step in [1, 2] {
        let s = &record.steps[&StepId(step)];
        assert_eq!(s.state, StepState::Complete);
        assert_eq!(s.spec.tier, "small", "the step stays routed to small");
        // Two attempts on small (one retry), one on medium.
        assert_eq!(s.attempts, 3);
        assert!(cost_on(&record, "medium", step) > Decimal::ZERO);
    }
    // Every small attempt failed with a 5xx, which carries no usage: small is charged nothing.
    assert_eq!(stack.small.stats().requests_total, 4);
    assert_eq!(cost_on(&record, "small", 1), Decimal::ZERO);
    assert_eq!(
        escalations(&record),
        vec![
            Escalation {
                step_id: StepId(1),
                tool: "extract".into(),
                from: "small".into(),
                to: "medium".into(),
                succeeded: true
            },
            Escalation {
                step_id: StepId(2),
                tool: "compare".into(),
                from: "small".into(),
                to: "medium".into(),
                succeeded: true
            },
        ]
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_failing_the_schema_escalates_and_both_tiers_are_charged() {
    // The small simulator answers every call, but with content that is not JSON.
    let stack = Stack::start(Options {
        small: SimConfig {
            malformed_rate: 1.0,
            ..sim::config("sim-small")
        },
        ..Options::new(json!({"steps": [
            {"step_id": 1, "tool_name": "label", "args": {"text": "H200 vs L40S"}, "depends_on": []}
        ]}))
    })
    .await;
    let record = stack.run().await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let step = &record.steps[&StepId(1)];
    let result = step.result.as_ref().unwrap();
    assert!(result["summary"].is_string(), "{result}");
    // The small tier answered (and used tokens) once; the medium tier answered once.
    assert_eq!(stack.small.stats().requests_total, 1);
    assert_eq!(stack.medium.stats().requests_total, 1);
    let small_cost = cost_on(&record, "small", 1);
    let medium_cost = cost_on(&record, "medium", 1);
    assert!(
        small_cost > Decimal::ZERO,
        "the failed try on small is charged"
    );
    assert!(medium_cost > Decimal::ZERO, "the escalated try is charged");
    assert_eq!(
        record.cost().total.cost_usd,
        small_cost + medium_cost + cost_on_plan(&record)
    );
    let by_tier = &record.cost().by_tier;
    assert!(by_tier.contains_key("small") && by_tier.contains_key("medium"));
    assert_eq!(escalations(&record).len(), 1);
    assert!(escalations(&record)[0].succeeded);
    stack.stop().await;
}

fn cost_on_plan(record: &TaskRecord) -> Decimal {
    record
        .calls
        .iter()
        .filter(|c| c.step_id.is_none())
        .map(|c| c.cost_usd)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failing_on_both_tiers_reports_the_escalation() {
    let stack = Stack::start(Options {
        small: SimConfig {
            malformed_rate: 1.0,
            ..sim::config("sim-small")
        },
        ..Options::new(json!({"steps": [
            {"step_id": 1, "tool_name": "label", "args": {"text": "x #sim:malformed"}, "depends_on": []}
        ]}))
    })
    .await;
    let record = stack.run().await;
    // Its only step failed, so the task failed.
    assert_eq!(record.status, TaskStatus::Failed);
    let error = record.steps[&StepId(1)].error.clone().unwrap();
    assert!(error.contains("after escalation to tier medium"), "{error}");
    assert_eq!(
        escalations(&record),
        vec![Escalation {
            step_id: StepId(1),
            tool: "label".into(),
            from: "small".into(),
            to: "medium".into(),
            succeeded: false
        }]
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_planner_hint_routes_the_step() {
    let mut plan = two_step_plan("extract");
    plan["steps"][1]["tier"] = json!("medium");
    let routing = RoutingSettings {
        hint_tiers: vec!["medium".into()],
        ..RoutingSettings::default()
    };
    let stack = Stack::start(Options {
        routing,
        ..Options::new(plan)
    })
    .await;
    let record = stack.run().await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    assert_eq!(record.steps[&StepId(1)].spec.tier, "small");
    assert_eq!(record.steps[&StepId(2)].spec.tier, "medium");
    assert_eq!(stack.medium.stats().executor_requests, 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hint_is_refused_as_an_unknown_field_when_hints_are_off() {
    let mut plan = two_step_plan("extract");
    plan["steps"][1]["tier"] = json!("medium");
    let stack = Stack::start(Options::new(plan)).await;
    let record = stack.run().await;
    // The pinned plan is answered twice (plan, re-plan) and invalid both times.
    assert_eq!(record.status, TaskStatus::Failed);
    assert!(
        record
            .error
            .as_deref()
            .unwrap()
            .contains("unknown field \"tier\""),
        "{:?}",
        record.error
    );
    stack.stop().await;
}
