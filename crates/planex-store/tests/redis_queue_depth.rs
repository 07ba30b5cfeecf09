//! The ready count of a tier (what `/v1/scaling` scales executors on) is the number of steps not yet
//! delivered, on a real Redis, even when the consumer group's `lag` says otherwise: after a
//! restart of an append-only Redis, after the stream was trimmed, after consumers were deleted
//! (a clean retirement, and an operator's `XGROUP DELCONSUMER` of one holding entries), and with a
//! lag that is plainly wrong (as seen after a restart: thousands with nothing to deliver). Reading
//! the depth also repairs the group's counter, so Redis's own lag (KEDA's `lagCount`) agrees again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_store::{QueueDepth, RedisStore, Store};
use planex_testkit::redis::RedisServer;
use planex_testkit::store::{running_task, step_spec, succeeded};
use std::time::Duration;

const STREAM: &str = "px:ready:{x}";

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The group's lag as Redis reports it (`None` when it cannot tell).
async fn lag(server: &RedisServer) -> Option<i64> {
    let groups: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
    let redis::Value::Array(fields) = &groups[0] else {
        panic!("{groups:?}")
    };
    let at = fields
        .iter()
        .position(|f| matches!(f, redis::Value::BulkString(b) if b == b"lag"))
        .unwrap();
    match &fields[at + 1] {
        redis::Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// `n` steps of tier x in one task, `done` of them claimed and completed.
async fn steps(store: &RedisStore, n: u32, done: usize) {
    running_task(store, (1..=n).map(|i| step_spec(i, &[], "x")).collect()).await;
    let leases = store
        .claim(
            "x",
            "w1",
            done,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(leases.len(), done);
    for lease in &leases {
        store.complete(lease, succeeded("r")).await.unwrap();
    }
}

fn ready(n: u64) -> QueueDepth {
    QueueDepth {
        ready: n,
        in_flight: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_lag_is_not_believed_and_is_repaired() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    steps(&store, 5, 3).await;
    assert_eq!(store.queue_depth("x").await.unwrap(), ready(2));
    // The state a restart was seen to leave: every entry counted as unread, nothing to deliver
    // past the last one the group delivered.
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(STREAM)
        .arg("workers")
        .arg("$")
        .arg("ENTRIESREAD")
        .arg(0)
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    assert!(lag(&server).await.unwrap_or(0) >= 5, "the lag is wrong now");
    assert_eq!(store.queue_depth("x").await.unwrap(), ready(0));
    assert_eq!(lag(&server).await, Some(0), "Redis's own lag is repaired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_depth_is_exact_after_a_restart_and_after_trimming() {
    let mut server = RedisServer::start_with(true).unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    steps(&store, 40, 30).await;
    // Claims trim the stream below its oldest pending entry: a claim after the completions.
    steps(&store, 2, 1).await;
    assert_eq!(store.queue_depth("x").await.unwrap(), ready(11));
    tokio::task::block_in_place(|| server.restart()).unwrap();
    assert_eq!(store.queue_depth("x").await.unwrap(), ready(11));
    assert_eq!(lag(&server).await, Some(11), "Redis's lag agrees");
    let leases = store
        .claim(
            "x",
            "w2",
            11,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(leases.len(), 11);
    assert_eq!(
        store.queue_depth("x").await.unwrap(),
        QueueDepth {
            ready: 0,
            in_flight: 11
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_depth_is_exact_after_consumers_are_deleted() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    // 12 steps: w1 runs 5 to completion, w2 holds 3, 4 are not delivered yet.
    steps(&store, 12, 5).await;
    let held = store
        .claim(
            "x",
            "w2",
            3,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(held.len(), 3);
    let depth = QueueDepth {
        ready: 4,
        in_flight: 3,
    };
    assert_eq!(store.queue_depth("x").await.unwrap(), depth);
    // w1 retires cleanly (its consumer is deleted); an operator deletes w2's consumer although
    // it holds entries (they leave the group's pending list; the leases still count in flight).
    store.retire_worker("x", "w1").await.unwrap();
    let _: i64 = redis::cmd("XGROUP")
        .arg("DELCONSUMER")
        .arg(STREAM)
        .arg("workers")
        .arg("w2")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    assert_eq!(store.queue_depth("x").await.unwrap(), depth);
    assert_eq!(lag(&server).await, Some(4), "Redis's lag agrees");
    let rest = store
        .claim(
            "x",
            "w3",
            10,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(rest.len(), 4, "the undelivered steps, and only those");
    assert_eq!(
        store.queue_depth("x").await.unwrap(),
        QueueDepth {
            ready: 0,
            in_flight: 7
        }
    );
}
