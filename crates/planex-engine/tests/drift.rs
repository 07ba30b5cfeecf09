//! The drift guard end to end: a task type whose p95 step count is over twice its baseline is
//! planned with the baseline's `max_subtasks`, and a baseline learned from a type's first tasks
//! lives in Redis, so a new engine on the same Redis sees it. Model calls go over real HTTP to
//! simulators (which plan 3 to 10 steps, fewer when the plan schema allows fewer).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use planex_core::{Catalog, Decimal, Stage, TaskId};
use planex_engine::{ConfiguredBaseline, DriftGuard, DriftSettings, Engine, EngineSettings};
use planex_store::{
    DriftSample, DriftSizes, DriftStore, MemoryDriftStore, MemoryStore, RedisStore,
    RedisStoreOptions, Store, TaskRecord,
};
use planex_testkit::fixtures::llm_tool;
use planex_testkit::redis::RedisServer;
use planex_testkit::sim_pair::{SimPair, SimPairOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn engine(
    pair: &SimPair,
    store: Arc<dyn Store>,
    drift: Arc<dyn DriftStore>,
    settings: DriftSettings,
) -> Arc<Engine> {
    let catalog = Arc::new(
        Catalog::new(vec![
            llm_tool("lookup", "topic", "executor"),
            llm_tool("summarize", "text", "executor"),
        ])
        .unwrap(),
    );
    let engine_settings = EngineSettings {
        synthesis: false,
        ..EngineSettings::default()
    };
    Arc::new(
        Engine::builder(store, catalog, pair.models(), engine_settings)
            .drift(Arc::new(DriftGuard::new(drift, settings)))
            .build()
            .unwrap(),
    )
}

async fn run(engine: &Engine, task: &str, task_type: &str, max: Option<usize>) -> TaskRecord {
    let request = planex_engine::TaskRequest {
        task: task.into(),
        task_type: Some(task_type.into()),
        max_subtasks: max,
        ..planex_engine::TaskRequest::default()
    };
    engine.run(request, WAIT).await.unwrap()
}

fn plan_steps(record: &TaskRecord) -> usize {
    record
        .steps
        .values()
        .filter(|s| s.spec.stage == Stage::Step)
        .count()
}

fn baseline(steps: f64) -> ConfiguredBaseline {
    ConfiguredBaseline {
        steps: Some(steps),
        cost_usd: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifting_task_type_is_planned_with_the_baseline_as_max_subtasks() {
    let pair = SimPair::start(SimPairOptions::default()).await;
    let drift = Arc::new(MemoryDriftStore::new());
    let mut settings = DriftSettings {
        min_window_tasks: 3,
        ..DriftSettings::default()
    };
    settings.task_types.insert("wide".into(), baseline(2.0));
    settings.task_types.insert("calm".into(), baseline(5.0));
    // Three finished tasks of 6 steps each: p95 6 is over 2 x 2 (wide) but not over 2 x 5 (calm).
    let sizes = DriftSizes {
        learn_tasks: 200,
        window: 200,
    };
    for task_type in ["wide", "calm"] {
        for i in 0..3 {
            let id = TaskId::from(format!("{task_type}-{i}").as_str());
            let sample = DriftSample {
                steps: 6,
                cost_usd: Decimal::new(1, 3),
            };
            drift
                .record_finished(task_type, &id, sample, sizes)
                .await
                .unwrap();
        }
    }
    let engine = engine(&pair, Arc::new(MemoryStore::new()), drift.clone(), settings);
    let shutdown = CancellationToken::new();
    let workers = engine.spawn_workers(4, "drift", shutdown.clone()).await;

    let status = engine.drift().unwrap().status("wide").await.unwrap();
    assert!(status.steps_drifting(3), "{status:?}");
    let record = run(&engine, "Compare GPU clouds", "wide", Some(8)).await;
    assert_eq!(plan_steps(&record), 2, "the stricter limit is the baseline");
    // Never above the request's own limit.
    let record = run(&engine, "Compare GPU clouds again", "wide", Some(1)).await;
    assert_eq!(plan_steps(&record), 1);
    // A type within bounds keeps the request's limit (the simulator plans at least 3 steps).
    let record = run(&engine, "Compare GPU clouds", "calm", Some(8)).await;
    assert!(plan_steps(&record) >= 3, "{}", plan_steps(&record));
    // The finished tasks joined their types' windows.
    assert_eq!(drift.drift_record("wide").await.unwrap().recent.len(), 5);
    assert_eq!(drift.drift_record("calm").await.unwrap().recent.len(), 4);

    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
    pair.planner_sim.shutdown().await;
    pair.executor_sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_learned_from_the_first_tasks_persist_in_redis_across_engines() {
    let server = RedisServer::start().expect("start a private redis-server");
    let options = RedisStoreOptions {
        prefix: "drift".into(),
        ..RedisStoreOptions::default()
    };
    let connect = || async {
        Arc::new(
            RedisStore::connect_with(&server.url(), options.clone())
                .await
                .unwrap(),
        )
    };
    let pair = SimPair::start(SimPairOptions::default()).await;
    let settings = DriftSettings {
        learn_tasks: 2,
        window_tasks: 5,
        min_window_tasks: 5,
        ..DriftSettings::default()
    };
    let redis = connect().await;
    let first = engine(&pair, redis.clone(), redis, settings.clone());
    let shutdown = CancellationToken::new();
    let workers = first.spawn_workers(4, "drift", shutdown.clone()).await;
    let mut records = Vec::new();
    for task in [
        "Compare H200 and L40S clouds",
        "Survey vector databases",
        "Rank GPU clouds by price",
    ] {
        records.push(run(&first, task, "learned", None).await);
    }
    let guard = first.drift().unwrap();
    let status = guard.status("learned").await.unwrap();
    let expected_steps = plan_steps(&records[0]).max(plan_steps(&records[1]));
    let expected_cost =
        (records[0].cost().total.cost_usd + records[1].cost().total.cost_usd) / Decimal::from(2);
    assert_eq!(status.baseline_steps, Some(expected_steps as f64));
    assert_eq!(status.baseline_cost_usd, Some(expected_cost));
    assert_eq!((status.recent_tasks, status.learning_tasks), (3, 0));
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }

    // A new engine (a restart, or another replica) on the same Redis sees the same numbers.
    let redis = connect().await;
    let second = engine(&pair, redis.clone(), redis, settings);
    let again = second.drift().unwrap().status("learned").await.unwrap();
    assert_eq!(again, status);
    assert_eq!(
        second.drift().unwrap().statuses().await.unwrap(),
        vec![status]
    );
    pair.planner_sim.shutdown().await;
    pair.executor_sim.shutdown().await;
}
