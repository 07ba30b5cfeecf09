//! Every model call billed, never under-billed: a worker that crashes in the middle of a call leaves
//! its worst-case draw open in the task's reservation; the step's redelivery records that call as
//! `interrupted` (billed at the worst case) and marks its own calls `redelivered`, and the tenant
//! is charged exactly what the task's call records add up to. A worker that crashes after a call
//! completed but before recording the step's outcome leaves a settled draw: the redelivery records
//! it as `abandoned`, at its real usage. Real simulators over loopback HTTP, the memory store and
//! ledger; the "crashed worker" is a claim whose lease is never renewed.
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

/// An engine with budgets on over a simulator pair, and one submitted one-step task.
struct Bed {
    pair: SimPair,
    store: Arc<dyn Store>,
    ledger: Arc<MemoryLedger>,
    engine: Engine,
    id: planex_core::TaskId,
}

async fn bed() -> Bed {
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
    Bed {
        pair,
        store,
        ledger,
        engine,
        id,
    }
}

/// The tenant was charged what the task's call records add up to (each booking rounded up to the
/// nano-dollar), and nothing stays held.
async fn charged_what_was_recorded(ledger: &MemoryLedger, record: &planex_store::TaskRecord) {
    let cost: Decimal = record.calls.iter().map(|c| c.cost_usd).sum();
    assert_eq!(record.cost().total.cost_usd, cost);
    let month = planex_engine::budget::current_month();
    let balances = ledger
        .balances(&BudgetGuard::scope("acme", &month))
        .await
        .unwrap();
    let tenant = balances["tenant"];
    assert_eq!(tenant.reserved_usd, Decimal::ZERO);
    assert!(
        tenant.spent_usd >= cost && tenant.spent_usd - cost <= Decimal::new(10, 9),
        "charged {} for calls of {cost}",
        tenant.spent_usd
    );
    assert!(ledger.held().await.unwrap().is_empty());
}

/// Runs the task to completion on live in-process workers (a crashed claim's lease expires first)
/// and stops them; the task must complete.
async fn finish_on_live_workers(
    engine: &Engine,
    id: &planex_core::TaskId,
) -> planex_store::TaskRecord {
    let shutdown = CancellationToken::new();
    let workers = engine.spawn_workers(4, "live", shutdown.clone()).await;
    let record = engine.wait(id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_a_crash_is_billed_at_its_worst_case() {
    let Bed {
        pair,
        store,
        ledger,
        engine,
        id,
    } = bed().await;

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
    let record = finish_on_live_workers(&engine, &id).await;
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

    charged_what_was_recorded(&ledger, &record).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_completed_by_a_worker_that_died_before_recording_is_billed_at_its_usage() {
    let Bed {
        pair,
        store,
        ledger,
        engine,
        id,
    } = bed().await;
    // A worker claims the step and runs it to the end (its call completes at the simulator and
    // settles in the ledger), then dies before recording the outcome.
    let lease = store
        .claim(
            "executor",
            "crashed",
            1,
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .remove(0);
    let lost = engine
        .executor()
        .run(&lease, &planex_llm::CallContext::default())
        .await;
    let planex_store::StepOutcome::Succeeded { calls: lost, .. } = lost else {
        panic!("the crashed worker's execution succeeded: {lost:?}");
    };
    assert_eq!(lost.len(), 1);

    let record = finish_on_live_workers(&engine, &id).await;
    let steps: Vec<_> = record
        .calls
        .iter()
        .filter(|c| c.stage == Stage::Step)
        .collect();
    let abandoned: Vec<_> = steps
        .iter()
        .filter(|c| c.mark == Some(CallMark::Abandoned))
        .collect();
    assert_eq!(abandoned.len(), 1, "{:?}", record.calls);
    assert_eq!(abandoned[0].usage, lost[0].usage);
    // As the ledger kept it: rounded up to the nano-dollar.
    assert_eq!(
        abandoned[0].cost_usd,
        planex_store::ledger_usd(lost[0].cost_usd)
    );
    assert_eq!(abandoned[0].tier, "executor");
    assert_eq!(abandoned[0].tool.as_deref(), Some("lookup"));
    assert_eq!(
        steps
            .iter()
            .filter(|c| c.mark == Some(CallMark::Redelivered))
            .count(),
        1,
        "the redelivery's own call is billed too"
    );
    assert_eq!(
        pair.executor_sim.stats().requests_total,
        2,
        "both executions' calls reached the simulator"
    );
    charged_what_was_recorded(&ledger, &record).await;
}
