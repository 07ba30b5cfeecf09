//! Store conformance cases about worker heartbeats: a worker whose heartbeat lapsed has its steps
//! redelivered at once, not after its lease; live workers and workers that never beat keep theirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::{LONG, ok};
use crate::store::{running_task, step_spec};
use planex_store::{StepState, Store, TaskStatus};
use std::sync::Arc;
use std::time::Duration;

/// Three workers each hold one step under a 30 s lease: `dead` beat with a 1 ms heartbeat that
/// lapsed, `alive` beats for a minute, `legacy` never beat. Reaping expires only `dead`'s lease:
/// its step goes to the next claim at once (a second delivery); the others stay running.
pub async fn a_dead_workers_steps_are_redelivered_without_waiting_for_the_lease(
    store: Arc<dyn Store>,
) {
    let task = running_task(
        &*store,
        vec![
            step_spec(1, &[], "hb"),
            step_spec(2, &[], "hb"),
            step_spec(3, &[], "hb"),
        ],
    )
    .await;
    store
        .heartbeat("hb", "dead", Duration::from_millis(1))
        .await
        .unwrap();
    store
        .heartbeat("hb", "alive", Duration::from_secs(60))
        .await
        .unwrap();
    let dead = store
        .claim("hb", "dead", 1, LONG, LONG)
        .await
        .unwrap()
        .remove(0);
    let alive = store
        .claim("hb", "alive", 1, LONG, LONG)
        .await
        .unwrap()
        .remove(0);
    let legacy = store
        .claim("hb", "legacy", 1, LONG, LONG)
        .await
        .unwrap()
        .remove(0);
    // Lets the 1 ms heartbeat lapse: a clock passing, not a state another task produces.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.reap_dead_workers("hb").await.unwrap(), 1);
    assert_eq!(
        store.reap_dead_workers("hb").await.unwrap(),
        0,
        "reaped once"
    );
    let again = store
        .claim("hb", "w2", 10, LONG, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "only the dead worker's step comes back");
    assert_eq!(again[0].spec.step.step_id, dead.spec.step.step_id);
    assert_eq!(again[0].delivery, 2);
    store.complete(&again[0], ok("redone")).await.unwrap();
    assert!(
        matches!(
            store.complete(&dead, ok("late")).await.unwrap(),
            planex_store::Completion::Duplicate
        ),
        "the dead worker's late outcome changes nothing"
    );
    store.complete(&alive, ok("two")).await.unwrap();
    store.complete(&legacy, ok("three")).await.unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Complete);
    assert!(
        record
            .steps
            .values()
            .all(|s| s.state == StepState::Complete)
    );
    store.retire_worker("hb", "alive").await.unwrap();
}
