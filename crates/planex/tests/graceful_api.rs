//! A graceful stop of `planex serve` (SIGTERM, as a rolling deploy sends it) finishes planning the
//! tasks it accepted before it exits: none is left `planning` for orphan recovery to fail minutes
//! later. Real processes: Redis, `planex sim` (every call takes 2 s) and `planex serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_store::{StepState, Store, TaskStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_api_finishes_planning_what_it_accepted() {
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            ttft_ms: 2000,
            ..Options::default()
        })
    });
    // Accepted at once (202); its planner call takes 2 s, so it is being planned when the
    // SIGTERM arrives.
    let task = cluster.submit("Compare two GPU clouds").await;
    let store = cluster.store().await;
    let before = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(before.status, TaskStatus::Planning);
    assert!(
        tokio::task::block_in_place(|| cluster.stop_api()),
        "a graceful stop exits 0: {}",
        cluster.logs()
    );
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(
        record.status,
        TaskStatus::Running,
        "planned and started before the API exited: {}",
        cluster.logs()
    );
    assert!(record.plan.is_some());
    // No worker runs here: its steps wait in the ready queue for one.
    assert!(
        record
            .steps
            .values()
            .any(|step| step.state == StepState::Ready),
        "{:?}",
        record.steps
    );
    assert!(
        !cluster.logs().contains("still being planned"),
        "{}",
        cluster.logs()
    );
}
