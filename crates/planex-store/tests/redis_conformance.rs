//! The conformance suite against the Redis store, on a private `redis-server` started for this
//! test binary (a free loopback port, no persistence); each test gets its own key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_store::{RedisStore, RedisStoreOptions, Store};
use planex_testkit::conformance::MAX_DELIVERIES;
use planex_testkit::redis::RedisServer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

static SERVER: OnceLock<RedisServer> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The redis-server this test binary shares, started by the first test that needs it.
fn server() -> &'static RedisServer {
    SERVER.get_or_init(|| RedisServer::start().expect("start a private redis-server"))
}

async fn redis_store() -> Arc<dyn Store> {
    let server = server();
    let options = RedisStoreOptions {
        prefix: format!("c{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        max_deliveries: MAX_DELIVERIES,
        ..RedisStoreOptions::default()
    };
    Arc::new(
        RedisStore::connect_with(&server.url(), options)
            .await
            .expect("connect to the test redis-server"),
    )
}

planex_testkit::conformance_tests!(redis_store);

async fn redis_ledger() -> Arc<dyn planex_store::SpendLedger> {
    redis_backend().await
}

async fn redis_cache() -> Arc<dyn planex_store::PlanCache> {
    redis_backend().await
}

async fn redis_drift() -> Arc<dyn planex_store::DriftStore> {
    redis_backend().await
}

async fn redis_backend() -> Arc<RedisStore> {
    let server = server();
    let options = RedisStoreOptions {
        prefix: format!("l{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        ..RedisStoreOptions::default()
    };
    Arc::new(
        RedisStore::connect_with(&server.url(), options)
            .await
            .unwrap(),
    )
}

mod ledger {
    use super::*;
    planex_testkit::ledger_conformance_tests!(redis_ledger);
    planex_testkit::plan_cache_conformance_tests!(redis_cache);
    planex_testkit::drift_conformance_tests!(redis_drift);
}

/// Redis-only behaviour: restarts, batching, expiry.
mod redis_only {
    use super::*;
    use futures::StreamExt;
    use planex_store::{Completion, EventKind, TaskStatus};
    use planex_testkit::store::{running_task, step_spec, succeeded};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_and_event_watchers_survive_a_redis_restart() {
        let mut server = RedisServer::start_with(true).expect("start a private redis-server");
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let task = running_task(
            &store,
            vec![step_spec(1, &[], "x"), step_spec(2, &[1], "x")],
        )
        .await;
        let mut events = store.events(&task).await.unwrap();
        let first = store
            .claim("x", "w", 1, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap()
            .remove(0);
        tokio::task::block_in_place(|| server.restart()).expect("restart the redis-server");
        // The connection manager reconnects by itself; the completion retries over the gap.
        let applied = store.complete(&first, succeeded("one")).await.unwrap();
        assert!(
            matches!(applied, Completion::Applied { ref newly_ready, .. } if newly_ready.len() == 1)
        );
        let second = store
            .claim("x", "w", 1, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            second.len(),
            1,
            "the step enqueued after the restart is claimable"
        );
        store.complete(&second[0], succeeded("two")).await.unwrap();
        let mut seen = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the event stream stalled after the restart")
        {
            seen.push(event);
        }
        let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=seen.len() as u64).collect::<Vec<_>>(),
            "no event lost or repeated"
        );
        assert!(matches!(
            seen.last().unwrap().kind,
            EventKind::TaskCompleted {
                status: TaskStatus::Complete
            }
        ));
        let record = store.get_task(&task).await.unwrap().unwrap();
        assert_eq!(
            record.steps[&planex_core::StepId(1)].result,
            Some(serde_json::json!("one"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_completions_are_batched_and_each_applied_once() {
        let store = redis_backend().await;
        let steps: Vec<_> = (1..=300).map(|i| step_spec(i, &[], "x")).collect();
        let task = running_task(&*store, steps).await;
        let mut leases = Vec::new();
        while leases.len() < 300 {
            let got = store
                .claim(
                    "x",
                    "w",
                    128,
                    Duration::from_secs(30),
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
            assert!(!got.is_empty());
            leases.extend(got);
        }
        let mut handles = Vec::new();
        for lease in leases.clone() {
            let store = store.clone();
            let text = format!("r{}", lease.spec.step.step_id);
            handles.push(tokio::spawn(async move {
                store.complete(&lease, succeeded(&text)).await
            }));
        }
        let mut finished = 0;
        for handle in handles {
            if let Completion::Applied {
                task_finished: Some(_),
                ..
            } = handle.await.unwrap().unwrap()
            {
                finished += 1;
            }
        }
        assert_eq!(finished, 1, "exactly one completion finishes the task");
        // Completing everything again changes nothing.
        for lease in &leases {
            assert_eq!(
                store.complete(lease, succeeded("late")).await.unwrap(),
                Completion::Duplicate
            );
        }
        let record = store.get_task(&task).await.unwrap().unwrap();
        assert_eq!(record.status, TaskStatus::Complete);
        for (id, step) in &record.steps {
            assert_eq!(step.result, Some(serde_json::json!(format!("r{id}"))));
            assert_eq!(step.deliveries, 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finished_tasks_expire_and_unknown_urls_fail_clearly() {
        let server = server();
        let options = RedisStoreOptions {
            prefix: format!("e{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            finished_task_ttl: Some(Duration::from_secs(600)),
            ..RedisStoreOptions::default()
        };
        let store = RedisStore::connect_with(&server.url(), options.clone())
            .await
            .unwrap();
        let task = running_task(&store, vec![step_spec(1, &[], "x")]).await;
        let lease = store
            .claim("x", "w", 1, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap()
            .remove(0);
        store.complete(&lease, succeeded("done")).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let ttl: i64 = redis::cmd("TTL")
            .arg(format!("{}:task:{{{}}}:steps", options.prefix, task))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            (1..=600).contains(&ttl),
            "finished task keys expire, ttl {ttl}"
        );
        let err = RedisStore::connect("redis://127.0.0.1:1")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("unavailable"), "{err}");
        let err = RedisStore::connect("http://x").await.err().unwrap();
        assert!(err.to_string().contains("invalid redis URL"), "{err}");
    }
}
