//! Redis-only behaviour outside the shared conformance suite: a worker that stops cleanly is
//! removed from its tier's consumer group (a worker still holding steps stays), and tasks started
//! by the previous key layout still finish after an upgrade.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use planex_store::conformance::{new_task, spec};
use planex_store::{RedisServer, RedisStore, RedisStoreOptions, StepOutcome, Store};
use std::time::Duration;

/// A private redis-server and a store on it with key prefix PREFIX.
async fn started(prefix: &str) -> (RedisServer, RedisStore) {
    let server = RedisServer::start();
    let options = RedisStoreOptions {
        prefix: prefix.into(),
        ..RedisStoreOptions::default()
    };
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap();
    (server, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_worker_leaves_the_group_unless_it_holds_steps() {
    let (server, store) = started("rt").await;
    store.retire_worker("x", "never-ran").await.unwrap();
    new_task(&store, vec![spec(1, &[], "x"), spec(2, &[], "x")]).await;
    let long = Duration::from_secs(30);
    let wait = Duration::from_secs(5);
    let held = store.claim("x", "w1", 1, long, wait).await.unwrap();
    let done = store.claim("x", "w2", 1, long, wait).await.unwrap();
    assert_eq!((held.len(), done.len()), (1, 1));
    let ok = StepOutcome::Succeeded {
        result: serde_json::json!("r"),
        attempts: 1,
        calls: Vec::new(),
    };
    store.complete(&done[0], ok).await.unwrap();
    assert_eq!(server.consumers("rt:ready:{x}").await, ["w1", "w2"]);
    store.retire_worker("x", "w1").await.unwrap();
    store.retire_worker("x", "w2").await.unwrap();
    assert_eq!(
        server.consumers("rt:ready:{x}").await,
        ["w1"],
        "w2 is gone; w1 still holds a step and stays"
    );
}

/// A task started by the previous layout (open count in the task hash, no task text in the
/// steps hash) still runs to completion after an upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_by_the_previous_layout_still_finishes() {
    let (server, store) = started("old").await;
    let task = new_task(&store, vec![spec(1, &[], "x"), spec(2, &[1], "x")]).await;
    // Rewrite it into the previous layout.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let tkey = format!("old:task:{{{}}}", task.0);
    let _: () = redis::pipe()
        .cmd("HDEL")
        .arg(format!("{tkey}:steps"))
        .arg("_:open")
        .arg("_:text")
        .ignore()
        .cmd("HSET")
        .arg(&tkey)
        .arg("open")
        .arg(2)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let long = Duration::from_secs(30);
    let wait = Duration::from_secs(5);
    for step in 1..=2u32 {
        let lease = store
            .claim("x", "w", 1, long, wait)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(lease.spec.step_id.0, step);
        assert_eq!(lease.task_text, "t", "the text comes from the task hash");
        let ok = StepOutcome::Succeeded {
            result: serde_json::json!(format!("r{step}")),
            attempts: 1,
            calls: Vec::new(),
        };
        store.complete(&lease, ok).await.unwrap();
    }
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, planex_store::TaskStatus::Complete);
}
