//! Every model call billed, never under-billed: a worker that crashes in the middle of a call leaves
//! its worst-case draw open in the task's reservation; the step's redelivery records that call as
//! `interrupted` (billed at the worst case) and marks its own calls `redelivered`, and the tenant
//! is charged exactly what the task's call records add up to. Real simulators over loopback HTTP,
//! the memory store and ledger; the "crashed worker" is a claim whose lease is never renewed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{CallMark, Catalog, Decimal, Stage};
use planex_engine::{BudgetGuard, BudgetSettings, Engine, EngineSettings, TaskRequest};
use planex_store::{Booking, MemoryLedger, MemoryStore, SpendLedger, Store, TaskStatus};
use planex_testkit::fixtures::{llm_tool, plan_json};
use planex_testkit::sim_pair::{SimPair, SimPairOptions};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_a_crash_is_billed_at_its_worst_case() {
    let task = "one lookup";
    let plan = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "GPU prices"}, "depends_on": []}
    ]));
    let pair = SimPair::start(SimPairOptions {
        workload: vec![(task.into(), vec![plan])],
        ..SimPairOptions::default()
    })
    .await;
    let catalog = Arc::new(Catalog::new(vec![llm_tool("lookup", "topic", "executor")]).unwrap());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let ledger = Arc::new(MemoryLedger::new());
    let guard = Arc::new(BudgetGuard::new(ledger.clone(), BudgetSettings::default()));
    let settings = EngineSettings {
        synthesis: false,
        ..EngineSettings::default()
    };
    let engine = Engine::builder(store.clone(), catalog, pair.models(), settings)
        .budget(guard)
        .build()
        .unwrap();
    let request = TaskRequest {
        task: task.into(),
        tenant: Some("acme".into()),
        ..TaskRequest::default()
    };
    let id = engine.submit(request).await.unwrap();

    // A worker claims the step, draws its call's worst case, and dies before the call returns.
    let leases = store
        .claim(
            "executor",
            "crashed",
            1,
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].delivery, 1);
    let worst = Decimal::new(12_345, 9);
    assert_eq!(
        ledger.draw(&id.0, "1/1/1/executor/0", worst).await.unwrap(),
        Booking::Granted
    );

    // A live worker gets the step once the lease expires.
    let shutdown = CancellationToken::new();
    let workers = engine.spawn_workers(4, "live", shutdown.clone());
    let record = engine.wait(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let steps: Vec<_> = record
        .calls
        .iter()
        .filter(|c| c.stage == Stage::Step)
        .collect();
    let interrupted: Vec<_> = steps
        .iter()
        .filter(|c| c.mark == Some(CallMark::Interrupted))
        .collect();
    assert_eq!(interrupted.len(), 1, "{:?}", record.calls);
    assert_eq!(interrupted[0].cost_usd, worst);
    assert_eq!(interrupted[0].tier, "executor");
    assert!(interrupted[0].usage.completion_tokens > 0);
    let redelivered = steps
        .iter()
        .filter(|c| c.mark == Some(CallMark::Redelivered))
        .count();
    assert_eq!(redelivered, 1, "the second execution is billed too");
    assert_eq!(
        pair.executor_sim.stats().requests_total,
        1,
        "the crashed call never reached the simulator; the redelivery's did"
    );

    // The tenant is charged what the call records add up to, and nothing stays held.
    let cost: Decimal = record.calls.iter().map(|c| c.cost_usd).sum();
    assert_eq!(record.cost().total.cost_usd, cost);
    let month = planex_engine::budget::current_month();
    let balances = ledger
        .balances(&BudgetGuard::scope("acme", &month))
        .await
        .unwrap();
    let tenant = balances["tenant"];
    assert_eq!(tenant.reserved_usd, Decimal::ZERO);
    // Each booking is rounded up to the nano-dollar: at most a few nano-dollars over.
    assert!(
        tenant.spent_usd >= cost && tenant.spent_usd - cost <= Decimal::new(10, 9),
        "charged {} for calls of {cost}",
        tenant.spent_usd
    );
    assert!(ledger.held().await.unwrap().is_empty());
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
}
