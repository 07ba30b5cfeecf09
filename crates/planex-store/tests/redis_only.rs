//! Redis-only behaviour outside the shared conformance suite: a worker that stops cleanly is
//! removed from its tier's consumer group (a worker still holding steps stays), what a worker
//! holds is listed, tasks started
//! by the previous key layout or with step specs in the previous JSON shape still finish after
//! an upgrade, starting a task leaves no staging key behind, and many event watchers at once are
//! all served and all unsubscribed, the task listing drops tasks whose keys expired, and readers
//! of task changes resync after a Redis restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use planex_core::TaskId;
use planex_store::{
    RedisStore, RedisStoreOptions, StepLease, Store, StoreError, TaskQuery, TaskStatus,
    wait_for_status,
};
use planex_testkit::redis::RedisServer;
use planex_testkit::store::{planning_task, running_task, step_spec, succeeded};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A private redis-server and a store on it with key prefix PREFIX.
async fn started(prefix: &str) -> (RedisServer, RedisStore) {
    let server = RedisServer::start().expect("start a private redis-server");
    let options = RedisStoreOptions {
        prefix: prefix.into(),
        ..RedisStoreOptions::default()
    };
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap();
    (server, store)
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Two workers of tier x: HOLDER keeps the step it claimed (its lease is returned), IDLE claims
/// one and completes it.
async fn holder_and_idle(store: &RedisStore, holder: &str, idle: &str) -> StepLease {
    running_task(store, vec![step_spec(1, &[], "x"), step_spec(2, &[], "x")]).await;
    let long = Duration::from_secs(30);
    let wait = Duration::from_secs(5);
    let mut held = store.claim("x", holder, 1, long, wait).await.unwrap();
    let done = store.claim("x", idle, 1, long, wait).await.unwrap();
    assert_eq!((held.len(), done.len()), (1, 1));
    store.complete(&done[0], succeeded("r")).await.unwrap();
    held.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_worker_leaves_the_group_unless_it_holds_steps() {
    let (server, store) = started("rt").await;
    store.retire_worker("x", "never-ran").await.unwrap();
    holder_and_idle(&store, "w1", "w2").await;
    assert_eq!(
        server.consumers("rt:ready:{x}").await.unwrap(),
        ["w1", "w2"]
    );
    store.retire_worker("x", "w1").await.unwrap();
    store.retire_worker("x", "w2").await.unwrap();
    assert_eq!(
        server.consumers("rt:ready:{x}").await.unwrap(),
        ["w1"],
        "w2 is gone; w1 still holds a step and stays"
    );
}

/// What a worker holds is listed by task and step; a worker that holds nothing lists nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_steps_a_worker_holds_are_listed() {
    let (_server, store) = started("held").await;
    let held = holder_and_idle(&store, "w1", "w2").await;
    assert_eq!(
        store.steps_held_by("x", "w1").await.unwrap(),
        [(held.task_id.clone(), held.spec.step.step_id)]
    );
    assert!(store.steps_held_by("x", "w2").await.unwrap().is_empty());
    assert!(store.steps_held_by("x", "nobody").await.unwrap().is_empty());
}

/// Workers that died without retiring are forgotten once idle long enough, unless they hold
/// steps; the idle bound is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_holding_nothing_are_pruned() {
    let (server, store) = started("pr").await;
    assert_eq!(
        store
            .retire_idle_workers("x", Duration::ZERO)
            .await
            .unwrap(),
        0,
        "no group yet"
    );
    let held = holder_and_idle(&store, "holder", "dead").await;
    let hour = Duration::from_secs(3600);
    assert_eq!(store.retire_idle_workers("x", hour).await.unwrap(), 0);
    assert_eq!(
        server.consumers("pr:ready:{x}").await.unwrap(),
        ["dead", "holder"]
    );
    assert_eq!(
        store
            .retire_idle_workers("x", Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        server.consumers("pr:ready:{x}").await.unwrap(),
        ["holder"],
        "the one holding a step stays"
    );
    store.complete(&held, succeeded("r")).await.unwrap();
}

/// A task started by the previous layout (open count in the task hash, no task text in the
/// steps hash) still runs to completion after an upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_by_the_previous_layout_still_finishes() {
    let (server, store) = started("old").await;
    let task = running_task(
        &store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[1], "x")],
    )
    .await;
    // Rewrite it into the previous layout.
    let mut conn = raw(&server).await;
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
        assert_eq!(lease.spec.step.step_id.0, step);
        assert_eq!(lease.task_text, "t", "the text comes from the task hash");
        store
            .complete(&lease, succeeded(&format!("r{step}")))
            .await
            .unwrap();
    }
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, planex_store::TaskStatus::Complete);
}

/// Step specs are JSON strings in the steps hash (field `N`). The spec JSON is written in the
/// shape earlier versions wrote, and a task whose specs an earlier version wrote (including one
/// from before `tolerate_failed_deps` existed) still runs to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_specs_written_by_the_previous_version_still_run() {
    let (server, store) = started("sj").await;
    let task = running_task(
        &store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[1], "x")],
    )
    .await;
    let mut conn = raw(&server).await;
    let skey = format!("sj:task:{{{}}}:steps", task.0);
    let written: Vec<String> = redis::cmd("HMGET")
        .arg(&skey)
        .arg("1")
        .arg("2")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        written,
        [
            r#"{"step_id":1,"tool_name":"tool","args":{},"depends_on":[],"tier":"x","stage":"step","tolerate_failed_deps":false}"#,
            r#"{"step_id":2,"tool_name":"tool","args":{},"depends_on":[1],"tier":"x","stage":"step","tolerate_failed_deps":false}"#,
        ]
    );
    // Step 2's spec as the oldest versions wrote it: no tolerate_failed_deps, other args.
    let _: () = redis::cmd("HSET")
        .arg(&skey)
        .arg("2")
        .arg(r#"{"step_id":2,"tool_name":"old_tool","args":{"text":"{step_1_result}"},"depends_on":[1],"tier":"x","stage":"step"}"#)
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
        assert_eq!(lease.spec.step.step_id.0, step);
        if step == 2 {
            assert_eq!(lease.spec.step.tool_name, "old_tool");
            assert_eq!(lease.spec.step.args["text"], "{step_1_result}");
            assert!(!lease.spec.tolerate_failed_deps);
        }
        store
            .complete(&lease, succeeded(&format!("r{step}")))
            .await
            .unwrap();
    }
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Complete);
    assert_eq!(
        record.steps[&planex_core::StepId(2)].spec.step.tool_name,
        "old_tool"
    );
}

/// Staging keys of task TASK (prefix "st") still in Redis.
async fn staging_keys(conn: &mut redis::aio::MultiplexedConnection, task: &TaskId) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("st:task:{{{}}}:staged*", task.0))
        .query_async(conn)
        .await
        .unwrap()
}

/// The step fields go through a staging key that the start script renames into place: nothing
/// of it may stay behind, the steps must not inherit its expiry, a refused start must not leave
/// it either, and two racing starts cannot mix their plans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_task_leaves_no_staging_key_and_no_expiry() {
    let (server, store) = started("st").await;
    let task = running_task(
        &store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[1], "x")],
    )
    .await;
    let mut conn = raw(&server).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("st:task:{{{}}}:steps", task.0))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        staging_keys(&mut conn, &task).await,
        Vec::<String>::new(),
        "the staging key was renamed away"
    );
    assert_eq!(ttl, -1, "the steps of a running task never expire");
    assert_eq!(store.get_task(&task).await.unwrap().unwrap().steps.len(), 2);

    let again = store
        .start_task(
            &task,
            &planex_testkit::store::ANY_PLAN,
            vec![step_spec(1, &[], "x")],
            Vec::new(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::WrongStatus { .. })),
        "{again:?}"
    );
    assert_eq!(
        staging_keys(&mut conn, &task).await,
        Vec::<String>::new(),
        "a refused start removes what it staged"
    );
    assert_eq!(store.get_task(&task).await.unwrap().unwrap().steps.len(), 2);

    // Two starts of one task at once, with plans of 3 and 5 steps: one wins, whole.
    for round in 0..20 {
        let task = planning_task(&store, &format!("race-{round}")).await;
        let plan = |n: u32| (1..=n).map(|i| step_spec(i, &[], "y")).collect::<Vec<_>>();
        let (a, b) = tokio::join!(
            store.start_task(&task, &planex_testkit::store::ANY_PLAN, plan(3), Vec::new()),
            store.start_task(&task, &planex_testkit::store::ANY_PLAN, plan(5), Vec::new()),
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "exactly one start wins: {a:?} {b:?}"
        );
        let steps = store.get_task(&task).await.unwrap().unwrap().steps.len();
        assert_eq!(
            steps,
            if a.is_ok() { 3 } else { 5 },
            "the winner's plan, unmixed"
        );
        assert_eq!(staging_keys(&mut conn, &task).await, Vec::<String>::new());
    }
}

/// Hundreds of watchers subscribing and leaving at once (their (un)subscriptions go in batches)
/// each see their own task finish, and no subscription is left afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watchers_at_once_each_see_their_task_and_leave_no_subscription() {
    const TASKS: usize = 200;
    let (server, store) = started("many").await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        tasks.push(running_task(&*store, vec![step_spec(1, &[], "x")]).await);
    }
    let waiters: Vec<_> = tasks
        .iter()
        .map(|task| {
            let store = store.clone();
            let task = task.clone();
            tokio::spawn(
                async move { wait_for_status(&*store, &task, Duration::from_secs(30)).await },
            )
        })
        .collect();
    let mut done = 0;
    while done < TASKS {
        let leases = store
            .claim(
                "x",
                "w",
                TASKS,
                Duration::from_secs(30),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(
            !leases.is_empty(),
            "{} steps never became claimable",
            TASKS - done
        );
        for lease in &leases {
            store.complete(lease, succeeded("r")).await.unwrap();
        }
        done += leases.len();
    }
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), Some(TaskStatus::Complete));
    }
    // Unsubscribing happens after the watchers are gone, in the background: wait for it.
    let mut conn = raw(&server).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg("many:events:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        if channels.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} channels still subscribed",
            channels.len()
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_task_leaves_the_listing_and_its_index() {
    let (server, store) = started("pxl").await;
    let kept = planning_task(&store, "kept").await;
    let expired = planning_task(&store, "expired").await;
    let mut conn = raw(&server).await;
    let index = "pxl:tenant_tasks:";
    let members: usize = redis::cmd("ZCARD")
        .arg(index)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, 2);
    let _: () = redis::cmd("DEL")
        .arg(format!("pxl:task:{{{}}}", expired.0))
        .query_async(&mut conn)
        .await
        .unwrap();
    let page = store
        .list_tasks(&TaskQuery {
            tenant: None,
            status: None,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        page.tasks.iter().map(|t| &t.task_id).collect::<Vec<_>>(),
        vec![&kept]
    );
    let members: usize = redis::cmd("ZCARD")
        .arg(index)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, 1, "the expired task's index entry was taken out");
}

/// The next task status change of `task` (skipping others and resyncs), within 30 s.
async fn change_of(changes: &mut planex_store::TaskChangeStream, task: &TaskId) -> TaskStatus {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match changes.next().await.expect("the change stream stays open") {
                planex_store::TaskChange::Status {
                    task_id, status, ..
                } if &task_id == task => return status,
                _ => continue,
            }
        }
    })
    .await
    .expect("the task's change within 30 s")
}

/// Task changes go over pub/sub, which keeps nothing: after Redis restarts, a reader is told to
/// resync (it may have missed changes meanwhile), and changes made after that reach it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_changes_resync_after_a_redis_restart_and_follow_again() {
    use futures::StreamExt;
    let (mut server, store) = started("changes").await;
    let mut changes = store.task_changes().await.unwrap();
    let before = planning_task(&store, "before-restart").await;
    assert_eq!(change_of(&mut changes, &before).await, TaskStatus::Planning);

    tokio::task::block_in_place(|| server.restart()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if changes.next().await.expect("the change stream stays open")
                == planex_store::TaskChange::Resync
            {
                return;
            }
        }
    })
    .await
    .expect("a resync after the restart");

    // The store's connections come back on their own; the first command may still meet the old
    // one's error, so try a few times (an attempt that went through makes the id taken).
    let after = TaskId::from("after-restart");
    let mut created = false;
    for _ in 0..20 {
        match store
            .create_task(planex_testkit::store::new_task(&after))
            .await
        {
            Ok(()) | Err(StoreError::TaskExists(_)) => {
                created = true;
                break;
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
    assert!(created, "the store never reconnected");
    assert_eq!(change_of(&mut changes, &after).await, TaskStatus::Planning);
}
