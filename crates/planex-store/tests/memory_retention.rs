//! The in-process store keeps memory bounded: finished tasks are evicted by age and by count
//! (oldest finished first, out of the task listing too), dead letters by count, and tasks still running are never evicted.
#![allow(clippy::unwrap_used)]

use planex_core::TaskId;
use planex_store::{MemoryStore, MemoryStoreOptions, Store, TaskQuery, TaskStatus};
use std::collections::BTreeSet;
use std::time::Duration;

async fn create(store: &MemoryStore, id: &str) -> TaskId {
    planex_testkit::store::planning_task(store, id).await
}

async fn finish(store: &MemoryStore, id: &TaskId) {
    store
        .finish_unplanned(id, TaskStatus::Failed, "planner down".into(), Vec::new())
        .await
        .unwrap();
}

async fn kept(store: &MemoryStore, ids: &[&TaskId]) -> Vec<bool> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.get_task(id).await.unwrap().is_some());
    }
    out
}

#[tokio::test]
async fn the_oldest_finished_tasks_go_first_and_running_ones_stay() {
    let store = MemoryStore::with_options(MemoryStoreOptions {
        max_finished_tasks: 2,
        ..MemoryStoreOptions::default()
    });
    let running = create(&store, "running").await;
    let a = create(&store, "a").await;
    let b = create(&store, "b").await;
    let c = create(&store, "c").await;
    for id in [&a, &b, &c] {
        finish(&store, id).await;
    }
    assert_eq!(
        kept(&store, &[&running, &a, &b, &c]).await,
        [true; 4],
        "eviction happens on the next creation"
    );
    let d = create(&store, "d").await;
    assert_eq!(
        kept(&store, &[&running, &a, &b, &c, &d]).await,
        [true, false, true, true, true],
        "only the oldest finished task is evicted"
    );
    let listed = store
        .list_tasks(&TaskQuery {
            tenant: None,
            status: None,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        listed
            .tasks
            .iter()
            .map(|t| &t.task_id)
            .collect::<BTreeSet<_>>(),
        [&running, &b, &c, &d].into_iter().collect(),
        "an evicted task leaves the listing too"
    );
}

#[tokio::test]
async fn finished_tasks_expire_after_their_ttl() {
    let store = MemoryStore::with_options(MemoryStoreOptions {
        finished_task_ttl: Some(Duration::ZERO),
        ..MemoryStoreOptions::default()
    });
    let done = create(&store, "done").await;
    let open = create(&store, "open").await;
    finish(&store, &done).await;
    create(&store, "next").await;
    assert_eq!(kept(&store, &[&done, &open]).await, [false, true]);
    assert!(
        store.events(&done).await.is_err(),
        "an evicted task is gone, not half there"
    );
}

#[tokio::test]
async fn defaults_keep_a_day_twenty_thousand_tasks_and_48_mib() {
    let options = MemoryStoreOptions::default();
    assert_eq!(
        options.finished_task_ttl,
        Some(Duration::from_secs(24 * 3600))
    );
    assert_eq!(options.max_finished_tasks, 20_000);
    assert_eq!(options.max_finished_bytes, 48 * 1024 * 1024);
    assert_eq!(options.dead_letter_cap, 10_000);
}

/// Finished tasks are measured when they finish and the oldest go once their bytes pass the cap;
/// the accounting follows evictions, and a task still running is never evicted for bytes.
#[tokio::test]
async fn finished_tasks_are_evicted_past_the_byte_cap_oldest_first() {
    let probe = MemoryStore::new();
    let one = create(&probe, "probe").await;
    finish(&probe, &one).await;
    let (count, bytes) = probe.retained_finished();
    assert_eq!(count, 1);
    assert!(bytes > 100, "a finished task is measured: {bytes} bytes");

    // Room for two such tasks, not three.
    let store = MemoryStore::with_options(MemoryStoreOptions {
        max_finished_bytes: bytes * 2 + bytes / 2,
        ..MemoryStoreOptions::default()
    });
    let running = create(&store, "running").await;
    let ids = [
        create(&store, "a").await,
        create(&store, "b").await,
        create(&store, "c").await,
    ];
    for id in &ids {
        finish(&store, id).await;
    }
    create(&store, "next").await;
    assert_eq!(
        kept(&store, &[&running, &ids[0], &ids[1], &ids[2]]).await,
        [true, false, true, true],
        "only the oldest finished task goes"
    );
    let (count, kept_bytes) = store.retained_finished();
    assert_eq!(count, 2);
    assert!(kept_bytes <= bytes * 2 + bytes / 2, "{kept_bytes}");
}

#[tokio::test]
async fn dead_letters_are_capped_newest_kept() {
    use planex_store::StepOutcome;
    use planex_testkit::store::{running_task, step_spec};
    let store = MemoryStore::with_options(MemoryStoreOptions {
        dead_letter_cap: 1,
        ..MemoryStoreOptions::default()
    });
    for error in ["first", "second"] {
        running_task(&store, vec![step_spec(1, &[], "x")]).await;
        let lease = store
            .claim("x", "w", 1, Duration::from_secs(30), Duration::from_secs(5))
            .await
            .unwrap()
            .remove(0);
        let failed = StepOutcome::Failed {
            error: error.into(),
            attempts: 1,
            calls: Vec::new(),
            attempt_errors: Vec::new(),
        };
        store.complete(&lease, failed).await.unwrap();
    }
    create(&store, "next").await;
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error, "second");
}
