//! The scaling signal after a crash of Redis, with real processes (`planex serve`, workers,
//! `planex sim`, a private `redis-server` with an append-only file): Redis is killed with -9 in
//! the middle of a load and started again; once every task has finished, the first `GET
//! /v1/scaling` reads 0 steps waiting and 0 in flight for every tier, and the consumer group's own
//! `lag` (what KEDA's `lagCount` trigger reads) is 0 too; and each tier's p95 TTFT is known to
//! the API, which calls no executor itself, from its workers' reports. (A lag in the thousands at idle after
//! such a restart was seen under a 5-minute load; this bounded run does not reproduce that wrong
//! lag by itself, so `planex-store/tests/redis_queue_depth.rs` makes the lag wrong on purpose and
//! checks that `depth.lua` counts exactly; this test holds the whole path, API to Redis, to 0.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, DONE, Options, until};
use planex_store::{EventKind, Store, TaskStatus};

/// The consumer group's `lag` on `tier`'s ready stream (`None`: Redis does not know it).
async fn group_lag(cluster: &Cluster, tier: &str) -> Option<i64> {
    let client = redis::Client::open(cluster.store_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("px:ready:{{{tier}}}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    match groups.first()?.get("lag")? {
        redis::Value::Int(lag) => Some(*lag),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_is_killed_mid_load_the_first_idle_poll_reads_zero_depth() {
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            appendonly: true,
            ttft_ms: 100,
            ..Options::default()
        })
    });
    let _workers = tokio::task::block_in_place(|| {
        [
            cluster.worker("executor", "exec-a", 3.0, 5.0),
            cluster.worker("executor", "exec-b", 3.0, 5.0),
            cluster.worker("planner", "plan-1", 3.0, 5.0),
        ]
    });
    let mut tasks = Vec::new();
    for i in 0..16 {
        tasks.push(
            cluster
                .submit(&format!("Scaling-signal question {i}"))
                .await,
        );
    }
    let store = cluster.store().await;
    let mut events = store.events(&tasks[0]).await.unwrap();
    until(&mut events, "a first completed step", |kind| {
        matches!(kind, EventKind::StepCompleted { .. })
    })
    .await;
    tokio::task::block_in_place(|| cluster.redis.kill9_and_restart())
        .expect("kill -9 and restart the redis-server");
    for task in &tasks {
        let Some(record) = planex_store::wait_for_task(&store, task, DONE)
            .await
            .unwrap()
        else {
            panic!(
                "task {task} did not finish within {DONE:?}: {:#?}\n{}",
                store.get_task(task).await,
                cluster.logs()
            );
        };
        assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    }

    // Idle now: the first poll says so, for every tier.
    let report = cluster.get_json("/v1/scaling").await;
    let tiers = report["tiers"].as_array().unwrap();
    for tier in ["planner", "executor"] {
        let decision = tiers
            .iter()
            .find(|t| t["tier"] == tier)
            .unwrap_or_else(|| panic!("no {tier} in {report}"));
        assert_eq!(decision["queue_depth"], 0, "{tier}: {decision}");
        assert_eq!(decision["in_flight"], 0, "{tier}: {decision}");
        assert_ne!(decision["action"], "scale_out", "{tier}: {decision}");
        // Every model call takes at least the simulator's 100 ms TTFT. `planex serve` runs no
        // worker: the executor tier's TTFT comes from the workers' reports in the store.
        let p95 = decision["ttft_p95_seconds"].as_f64();
        assert!(p95.is_some_and(|s| s >= 0.1), "{tier}: {decision}");
    }
    // The poll repaired the group's counter: KEDA's lagCount reads the same 0.
    for tier in ["planner", "executor"] {
        assert_eq!(group_lag(&cluster, tier).await, Some(0), "{tier}");
    }
}
