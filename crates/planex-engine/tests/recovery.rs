//! Orphan recovery: what an API replica that died mid-task leaves in the ledger and the store is
//! settled, released or failed by any other replica's `OrphanRecovery` pass, and nothing that is
//! still in use is touched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use planex_core::{CallRecord, Catalog, Decimal, Price, Stage, TaskId, ToolSpec, Usage};
use planex_engine::{
    BudgetGuard, BudgetSettings, Engine, EngineSettings, Models, OrphanRecovery, Recovery,
};
use planex_llm::{Endpoint, TierConfig, TierSet};
use planex_store::{
    Account, AccountLimit, MemoryLedger, MemoryStore, Reservation, SpendLedger, StepOutcome, Store,
    TaskStatus,
};
use std::sync::Arc;
use std::time::Duration;

/// One tier whose endpoint is never called (recovery makes no model calls) and one tool on it.
fn tiers_and_catalog() -> (Vec<TierConfig>, Catalog) {
    let price = Price::GpuHour {
        usd_per_hour: Decimal::from(1),
        tokens_per_second: Decimal::from(1000),
    };
    let tier = TierConfig::new(
        "planner",
        "m",
        vec![Endpoint::new("http://127.0.0.1:9/v1")],
        price,
    );
    let echo: ToolSpec = serde_json::from_value(serde_json::json!({
        "name": "echo",
        "description": "Repeat the text",
        "tier": "planner",
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "kind": {"type": "llm", "prompt": "Echo: {text}", "max_tokens": 16}
    }))
    .unwrap();
    (vec![tier], Catalog::new(vec![echo]).unwrap())
}

struct World {
    store: Arc<MemoryStore>,
    ledger: Arc<MemoryLedger>,
    engine: Engine,
}

/// An engine over `store` without a budget guard.
fn unbudgeted_engine(store: Arc<dyn Store>) -> Engine {
    let (tiers, catalog) = tiers_and_catalog();
    let client = planex_llm::default_client().unwrap();
    let models = Models::from_tier_set(&TierSet::from_configs(tiers, &client).unwrap());
    Engine::builder(store, Arc::new(catalog), models, EngineSettings::default())
        .build()
        .unwrap()
}

fn world() -> World {
    let (tiers, catalog) = tiers_and_catalog();
    let client = planex_llm::default_client().unwrap();
    let models = Models::from_tier_set(&TierSet::from_configs(tiers, &client).unwrap());
    let store = Arc::new(MemoryStore::default());
    let ledger = Arc::new(MemoryLedger::new());
    let engine = Engine::builder(
        store.clone(),
        Arc::new(catalog),
        models,
        EngineSettings::default(),
    )
    .budget(Arc::new(BudgetGuard::new(
        ledger.clone(),
        BudgetSettings::default(),
    )))
    .build()
    .unwrap();
    World {
        store,
        ledger,
        engine,
    }
}

fn tenant() -> Account {
    Account::new("tenant", "acme")
}

async fn reserve(ledger: &MemoryLedger, id: &str, usd: &str) {
    ledger
        .reserve(Reservation {
            id: id.into(),
            amount_usd: usd.parse().unwrap(),
            cap_usd: None,
            accounts: vec![AccountLimit {
                account: tenant(),
                limit_usd: Some(Decimal::from(100)),
            }],
        })
        .await
        .unwrap();
}

async fn create(store: &MemoryStore, id: &str) -> TaskId {
    planex_testkit::store::planning_task(store, id).await
}

/// Starts `task` with one root step on `tier`.
async fn start(store: &MemoryStore, task: &TaskId, tier: &str) {
    store
        .start_task(
            task,
            &planex_testkit::store::ANY_PLAN,
            vec![planex_testkit::store::step_spec(1, &[], tier)],
            Vec::new(),
        )
        .await
        .unwrap();
}

fn step_call(cost: &str) -> CallRecord {
    CallRecord {
        stage: Stage::Step,
        tier: "planner".into(),
        model: "m".into(),
        tool: Some("echo".into()),
        step_id: None,
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 1,
            cached_tokens: 0,
        },
        cost_usd: cost.parse().unwrap(),
        mark: None,
        round: None,
        latency_ms: None,
        response_id: None,
    }
}

async fn balance(ledger: &MemoryLedger) -> (Decimal, Decimal) {
    let b = ledger.balances("tenant").await.unwrap()["acme"];
    (b.spent_usd, b.reserved_usd)
}

#[tokio::test]
async fn a_finished_tasks_reservation_is_settled_with_its_recorded_cost() {
    let w = world();
    let task = create(&w.store, "done").await;
    reserve(&w.ledger, "done", "2").await;
    start(&w.store, &task, "planner").await;
    let lease = w
        .store
        .claim(
            "planner",
            "w",
            1,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .remove(0);
    let outcome = StepOutcome::Succeeded {
        result: serde_json::json!("ok"),
        attempts: 1,
        calls: vec![step_call("0.25")],
    };
    w.store.complete(&lease, outcome).await.unwrap();
    // The replica that submitted it died: nobody settled. A running task next to it stays.
    let running = create(&w.store, "running").await;
    reserve(&w.ledger, "running", "1").await;
    start(&w.store, &running, "other").await;
    let report = OrphanRecovery::new(Duration::from_secs(600))
        .pass(&w.engine)
        .await
        .unwrap();
    assert_eq!(
        report,
        Recovery {
            settled: 1,
            ..Recovery::default()
        }
    );
    assert_eq!(w.ledger.held().await.unwrap(), ["running"]);
    assert_eq!(
        balance(&w.ledger).await,
        ("0.25".parse().unwrap(), Decimal::from(1))
    );
}

#[tokio::test]
async fn a_task_left_planning_is_failed_after_the_grace_and_its_reservation_released() {
    let w = world();
    let task = create(&w.store, "stuck").await;
    reserve(&w.ledger, "stuck/plan", "0.5").await;
    let mut recovery = OrphanRecovery::new(Duration::from_secs(600));
    assert_eq!(
        recovery.pass(&w.engine).await.unwrap(),
        Recovery::default(),
        "within the grace a planning task may still be planned by a live replica"
    );
    let report = OrphanRecovery::new(Duration::ZERO)
        .pass(&w.engine)
        .await
        .unwrap();
    assert_eq!((report.abandoned_plans, report.released), (1, 1));
    let record = w.store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert!(record.error.unwrap().contains("submit the task again"));
    assert!(w.ledger.held().await.unwrap().is_empty());
    assert_eq!(balance(&w.ledger).await, (Decimal::ZERO, Decimal::ZERO));
}

#[tokio::test]
async fn the_planning_bound_not_the_grace_decides_and_the_reason_says_what_is_known() {
    let w = world();
    let task = create(&w.store, "slow-plan").await;
    reserve(&w.ledger, "slow-plan/plan", "0.5").await;
    let report = OrphanRecovery::new(Duration::from_secs(3600))
        .with_planning_bound(Duration::ZERO)
        .pass(&w.engine)
        .await
        .unwrap();
    assert_eq!((report.abandoned_plans, report.released), (1, 1));
    let error = w
        .store
        .get_task(&task)
        .await
        .unwrap()
        .unwrap()
        .error
        .unwrap();
    assert!(
        error.contains("planning did not finish within 0 s"),
        "{error}"
    );
    assert!(error.contains("stopped or lost the store"), "{error}");
    assert!(w.ledger.held().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_taskless_reservation_is_released_only_after_the_grace() {
    let w = world();
    reserve(&w.ledger, "execute/abc", "0.1").await;
    let mut patient = OrphanRecovery::new(Duration::from_secs(600));
    assert_eq!(patient.pass(&w.engine).await.unwrap(), Recovery::default());
    assert_eq!(w.ledger.held().await.unwrap(), ["execute/abc"]);
    let mut prompt = OrphanRecovery::new(Duration::ZERO);
    assert_eq!(prompt.pass(&w.engine).await.unwrap().released, 1);
    assert!(w.ledger.held().await.unwrap().is_empty());
}

/// With budgets off there is no reservation to find a task by: the store's index of planning
/// tasks is what recovery reads. Over Redis, a task an engine left `planning` is failed by another
/// engine's pass once past the bound, and a task that moved on is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_budgets_off_a_task_left_planning_in_redis_is_failed_past_the_bound() {
    let server = planex_testkit::redis::RedisServer::start().expect("start a private redis-server");
    let store: Arc<dyn Store> = Arc::new(
        planex_store::RedisStore::connect_with(
            &server.url(),
            planex_store::RedisStoreOptions {
                prefix: "recovery".into(),
                ..planex_store::RedisStoreOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let stuck = planex_testkit::store::planning_task(&*store, "stuck").await;
    let moved_on = planex_testkit::store::planning_task(&*store, "moved-on").await;
    store
        .finish_unplanned(
            &moved_on,
            TaskStatus::Rejected,
            "over budget".into(),
            vec![],
        )
        .await
        .unwrap();
    let engine = unbudgeted_engine(store.clone());
    let patient = OrphanRecovery::new(Duration::from_secs(3600))
        .pass(&engine)
        .await
        .unwrap();
    assert_eq!(
        patient,
        Recovery::default(),
        "within the bound nothing is touched"
    );
    assert_eq!(
        store.get_task(&stuck).await.unwrap().unwrap().status,
        TaskStatus::Planning
    );
    let report = OrphanRecovery::new(Duration::from_secs(3600))
        .with_planning_bound(Duration::ZERO)
        .pass(&engine)
        .await
        .unwrap();
    assert_eq!(report.abandoned_plans, 1, "{report:?}");
    let record = store.get_task(&stuck).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert!(record.error.unwrap().contains("planning did not finish"));
    assert_eq!(
        store.get_task(&moved_on).await.unwrap().unwrap().status,
        TaskStatus::Rejected
    );
    assert!(store.planning_tasks(u64::MAX, 10).await.unwrap().is_empty());
}

/// A streamed plan its replica left open (the task runs one step, nobody closes the plan): past
/// the planning bound recovery closes it, the step already planned still runs, and the task ends
/// `partial` saying why; its reservation is not released while the step runs.
#[tokio::test]
async fn a_streamed_plan_left_open_is_closed_and_its_planned_steps_finish() {
    let w = world();
    let task = create(&w.store, "open-plan").await;
    reserve(&w.ledger, "open-plan", "0.5").await;
    w.store.open_plan(&task).await.unwrap();
    w.store
        .add_steps(
            &task,
            vec![planex_testkit::store::step_spec(1, &[], "solo")],
        )
        .await
        .unwrap();
    let report = OrphanRecovery::new(Duration::from_secs(3600))
        .with_planning_bound(Duration::ZERO)
        .pass(&w.engine)
        .await
        .unwrap();
    assert_eq!((report.abandoned_plans, report.released), (1, 0));
    assert_eq!(w.ledger.held().await.unwrap(), vec!["open-plan".to_owned()]);
    let lease = w
        .store
        .claim(
            "solo",
            "w",
            1,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .remove(0);
    w.store
        .complete(&lease, planex_testkit::store::succeeded("done"))
        .await
        .unwrap();
    let record = w.store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Partial);
    assert!(
        record
            .error
            .unwrap()
            .contains("the API replica streaming it stopped"),
        "the reason says what is known"
    );
    assert!(
        w.store
            .planning_tasks(u64::MAX, 10)
            .await
            .unwrap()
            .is_empty(),
        "a closed plan is no longer listed"
    );
}
