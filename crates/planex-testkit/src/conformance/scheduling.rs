//! Store conformance cases about scheduling: steps become ready when their dependencies complete,
//! each is leased to one worker at a time, completions are idempotent, expired leases are
//! redelivered and poison steps dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::{LONG, MAX_DELIVERIES, WAIT, claim_ids, failed, ids, ok, state};
use crate::store::{running_task, step_spec};
use planex_core::StepId;
use planex_store::{Completion, QueueDepth, StepSpec, StepState, Store, TaskStatus};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Steps without dependencies are ready at once; a dependent becomes ready when its last
/// dependency completes, and receives their results; the last step finishes the task.
pub async fn roots_ready_dependents_wait(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![
            step_spec(1, &[], "x"),
            step_spec(2, &[], "x"),
            step_spec(3, &[1, 2], "x"),
        ],
    )
    .await;
    let first = claim_ids(&*store, "x", 10, WAIT).await;
    assert_eq!(ids(&first), BTreeSet::from([1, 2]));
    assert!(
        claim_ids(&*store, "x", 10, Duration::ZERO).await.is_empty(),
        "step 3 must wait for 1 and 2"
    );
    let by_id = |n| first.iter().find(|l| l.spec.step.step_id.0 == n).unwrap();
    let c1 = store.complete(by_id(1), ok("one")).await.unwrap();
    assert!(matches!(c1, Completion::Applied { ref newly_ready, .. } if newly_ready.is_empty()));
    let c2 = store.complete(by_id(2), ok("two")).await.unwrap();
    assert!(
        matches!(c2, Completion::Applied { ref newly_ready, .. } if newly_ready == &vec![StepId(3)])
    );
    let third = claim_ids(&*store, "x", 10, WAIT).await;
    assert_eq!(ids(&third), BTreeSet::from([3]));
    assert_eq!(third[0].dep_results[&StepId(1)], serde_json::json!("one"));
    assert_eq!(third[0].dep_results[&StepId(2)], serde_json::json!("two"));
    let done = store.complete(&third[0], ok("three")).await.unwrap();
    assert!(matches!(
        done,
        Completion::Applied {
            task_finished: Some(TaskStatus::Complete),
            ..
        }
    ));
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Complete);
    assert_eq!(record.answer().as_deref(), Some("three"));
}

/// The first outcome of a step wins; later ones are `Duplicate` and their calls are not charged.
pub async fn completion_is_idempotent(store: Arc<dyn Store>) {
    let task = running_task(&*store, vec![step_spec(1, &[], "x")]).await;
    let lease = claim_ids(&*store, "x", 1, WAIT).await.remove(0);
    store.complete(&lease, ok("first")).await.unwrap();
    assert_eq!(
        store.complete(&lease, ok("second")).await.unwrap(),
        Completion::Duplicate
    );
    assert_eq!(
        store.complete(&lease, failed("late")).await.unwrap(),
        Completion::Duplicate
    );
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(
        record.steps[&StepId(1)].result,
        Some(serde_json::json!("first"))
    );
    assert_eq!(
        record.calls.len(),
        2,
        "the duplicate's calls must not be charged"
    );
    assert_eq!(record.status, TaskStatus::Complete);
}

/// A failed step goes to the dead letters and skips its dependents, transitively; the task ends
/// `partial` with a reason naming both.
pub async fn failure_dead_letters_and_skips_dependents(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![
            step_spec(1, &[], "x"),
            step_spec(2, &[1], "x"),
            step_spec(3, &[2], "x"),
            step_spec(4, &[], "x"),
        ],
    )
    .await;
    let leases = claim_ids(&*store, "x", 10, WAIT).await;
    assert_eq!(ids(&leases), BTreeSet::from([1, 4]));
    let l1 = leases.iter().find(|l| l.spec.step.step_id.0 == 1).unwrap();
    let l4 = leases.iter().find(|l| l.spec.step.step_id.0 == 4).unwrap();
    let applied = store
        .complete(l1, failed("HTTP 500 from executor"))
        .await
        .unwrap();
    assert!(
        matches!(applied, Completion::Applied { ref skipped, task_finished: None, .. }
        if skipped == &vec![StepId(2), StepId(3)])
    );
    assert_eq!(state(&*store, &task, 2).await, StepState::Skipped);
    assert_eq!(state(&*store, &task, 3).await, StepState::Skipped);
    let dlq = store.dead_letters(10).await.unwrap();
    let letter = dlq
        .iter()
        .find(|d| d.task_id == task)
        .expect("dead letter for step 1");
    assert_eq!((letter.step_id, letter.attempts), (StepId(1), 4));
    assert!(letter.error.contains("HTTP 500"));
    let finished = store.complete(l4, ok("four")).await.unwrap();
    assert!(matches!(
        finished,
        Completion::Applied {
            task_finished: Some(TaskStatus::Partial),
            ..
        }
    ));
    let record = store.get_task(&task).await.unwrap().unwrap();
    let reason = record.error.unwrap();
    assert!(
        reason.contains("step 1 failed") && reason.contains("HTTP 500"),
        "{reason}"
    );
    assert!(reason.contains("step 2 skipped"), "{reason}");
}

/// A step that tolerates failed dependencies runs anyway, seeing only the completed results.
pub async fn tolerant_step_runs_after_failed_dependency(store: Arc<dyn Store>) {
    let mut synth = step_spec(3, &[1, 2], "x");
    synth.tolerate_failed_deps = true;
    let task = running_task(
        &*store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[], "x"), synth],
    )
    .await;
    let leases = claim_ids(&*store, "x", 10, WAIT).await;
    store.complete(&leases[0], failed("boom")).await.unwrap();
    store.complete(&leases[1], ok("kept")).await.unwrap();
    let third = claim_ids(&*store, "x", 10, WAIT).await;
    assert_eq!(ids(&third), BTreeSet::from([3]));
    assert_eq!(
        third[0].dep_results.len(),
        1,
        "only the completed dependency's result is passed"
    );
    store.complete(&third[0], ok("summary")).await.unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Partial);
    assert_eq!(record.answer().as_deref(), Some("summary"));
}

/// A tolerant step whose last dependency to end failed still runs when another one completed.
pub async fn tolerant_step_runs_when_its_last_dependency_fails(store: Arc<dyn Store>) {
    let mut synth = step_spec(3, &[1, 2], "x");
    synth.tolerate_failed_deps = true;
    let task = running_task(
        &*store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[], "x"), synth],
    )
    .await;
    let leases = claim_ids(&*store, "x", 10, WAIT).await;
    let by_id = |n| leases.iter().find(|l| l.spec.step.step_id.0 == n).unwrap();
    store.complete(by_id(1), ok("kept")).await.unwrap();
    let applied = store.complete(by_id(2), failed("boom")).await.unwrap();
    assert!(
        matches!(applied, Completion::Applied { ref newly_ready, ref skipped, .. }
        if newly_ready == &vec![StepId(3)] && skipped.is_empty()),
        "{applied:?}"
    );
    let third = claim_ids(&*store, "x", 10, WAIT).await;
    assert_eq!(ids(&third), BTreeSet::from([3]));
    store.complete(&third[0], ok("summary")).await.unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Partial);
}

/// A tolerant step (the synthesis step) none of whose dependencies completed is skipped, never
/// claimed, so no model call answers from nothing; the task ends `failed` (not `partial`) and its
/// error gives every step's reason. A failed dependency that skips others on its way counts too.
pub async fn tolerant_step_is_skipped_when_no_dependency_completed(store: Arc<dyn Store>) {
    let mut synth = step_spec(4, &[1, 2, 3], "x");
    synth.tolerate_failed_deps = true;
    let task = running_task(
        &*store,
        vec![
            step_spec(1, &[], "x"),
            step_spec(2, &[], "x"),
            step_spec(3, &[2], "x"),
            synth,
        ],
    )
    .await;
    let leases = claim_ids(&*store, "x", 10, WAIT).await;
    assert_eq!(ids(&leases), BTreeSet::from([1, 2]));
    let by_id = |n| leases.iter().find(|l| l.spec.step.step_id.0 == n).unwrap();
    let first = store
        .complete(by_id(1), failed("HTTP 400 from executor"))
        .await
        .unwrap();
    assert!(
        matches!(first, Completion::Applied { ref newly_ready, ref skipped, task_finished: None, .. }
        if newly_ready.is_empty() && skipped.is_empty()),
        "{first:?}"
    );
    let last = store
        .complete(by_id(2), failed("connection refused"))
        .await
        .unwrap();
    assert!(
        matches!(last, Completion::Applied { ref newly_ready, ref skipped, task_finished: Some(TaskStatus::Failed) }
        if newly_ready.is_empty() && skipped == &vec![StepId(3), StepId(4)]),
        "{last:?}"
    );
    assert!(
        claim_ids(&*store, "x", 10, Duration::ZERO).await.is_empty(),
        "the skipped synthesis step is never claimed"
    );
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert_eq!(record.steps[&StepId(4)].state, StepState::Skipped);
    assert!(record.answer().is_none(), "{:?}", record.answer());
    let reason = record.error.unwrap();
    for part in [
        "step 1 failed: HTTP 400 from executor",
        "step 2 failed: connection refused",
        "step 3 skipped",
        "step 4 skipped: no dependency step completed",
    ] {
        assert!(reason.contains(part), "{part:?} missing from {reason}");
    }
}

/// An expired lease is delivered again (a new token, delivery 2); the slow first worker's
/// completion still wins, the second is a duplicate.
pub async fn expired_lease_is_redelivered(store: Arc<dyn Store>) {
    let task = running_task(&*store, vec![step_spec(1, &[], "x")]).await;
    let first = store
        .claim("x", "dead-worker", 1, Duration::from_millis(50), WAIT)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((first.delivery, first.resumed), (1, false));
    let second = store.claim("x", "w2", 1, LONG, WAIT).await.unwrap();
    assert_eq!(second.len(), 1, "the expired lease must be redelivered");
    assert_eq!((second[0].delivery, second[0].resumed), (2, true));
    assert_ne!(second[0].token, first.token);
    // The first worker was only slow: its completion is applied once, the second is a duplicate.
    assert!(matches!(
        store.complete(&first, ok("slow")).await.unwrap(),
        Completion::Applied { .. }
    ));
    assert_eq!(
        store.complete(&second[0], ok("fast")).await.unwrap(),
        Completion::Duplicate
    );
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(
        record.steps[&StepId(1)].result,
        Some(serde_json::json!("slow"))
    );
    assert_eq!(record.steps[&StepId(1)].deliveries, 2);
    assert_eq!(store.queue_depth("x").await.unwrap(), QueueDepth::default());
}

/// A step delivered [`super::MAX_DELIVERIES`] times without completing is dead-lettered as poison,
/// not delivered again, and its dependents are skipped.
pub async fn poison_step_goes_to_dead_letters(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![
            step_spec(1, &[], "x"),
            step_spec(2, &[1], "x"),
            step_spec(3, &[], "y"),
        ],
    )
    .await;
    for delivery in 1..=MAX_DELIVERIES {
        let got = store
            .claim("x", "crashy", 1, Duration::from_millis(20), WAIT)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].delivery, delivery);
    }
    // The next claim finds the lease expired for the last allowed time: no redelivery.
    let more = store
        .claim("x", "crashy", 1, LONG, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(more.is_empty(), "a poison step must not be delivered again");
    assert_eq!(state(&*store, &task, 1).await, StepState::Failed);
    assert_eq!(state(&*store, &task, 2).await, StepState::Skipped);
    let letter = store
        .dead_letters(100)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.task_id == task)
        .unwrap();
    assert_eq!(letter.deliveries, MAX_DELIVERIES);
    assert!(letter.error.contains("poison"), "{}", letter.error);
    let other = claim_ids(&*store, "y", 1, WAIT).await;
    store.complete(&other[0], ok("fine")).await.unwrap();
    assert_eq!(
        store.get_task(&task).await.unwrap().unwrap().status,
        TaskStatus::Partial
    );
}

/// A released step is ready again without counting as a failed delivery; its next claim is
/// marked resumed (the released execution may have spent) and has a token of its own.
pub async fn release_returns_step_uncounted(store: Arc<dyn Store>) {
    running_task(&*store, vec![step_spec(1, &[], "x")]).await;
    let lease = claim_ids(&*store, "x", 1, WAIT).await.remove(0);
    assert!(!lease.resumed, "a first claim is not resumed");
    store.release(&lease).await.unwrap();
    let again = claim_ids(&*store, "x", 1, WAIT).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].delivery, 1,
        "a released step is not a failed delivery"
    );
    assert!(again[0].resumed, "the released execution may have spent");
    assert_ne!(again[0].token, lease.token);
}

/// An extended lease is not redelivered; a completed step's lease can no longer be extended.
pub async fn extended_lease_is_kept(store: Arc<dyn Store>) {
    running_task(&*store, vec![step_spec(1, &[], "x")]).await;
    let lease = store
        .claim("x", "w", 1, Duration::from_millis(100), WAIT)
        .await
        .unwrap()
        .remove(0);
    assert!(store.extend_lease(&lease, LONG).await.unwrap());
    let stolen = store
        .claim("x", "w2", 1, LONG, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        stolen.is_empty(),
        "an extended lease must not be redelivered"
    );
    store.complete(&lease, ok("done")).await.unwrap();
    assert!(
        !store.extend_lease(&lease, LONG).await.unwrap(),
        "a completed step's lease is gone"
    );
}

/// A claim waiting on an empty queue wakes when a step is enqueued (no polling).
pub async fn claim_wakes_on_enqueue(store: Arc<dyn Store>) {
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.claim("x", "w", 1, LONG, WAIT).await })
    };
    tokio::task::yield_now().await;
    running_task(&*store, vec![step_spec(7, &[], "x")]).await;
    let got = tokio::time::timeout(WAIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), BTreeSet::from([7]));
}

/// Each tier has its own ready queue.
pub async fn tiers_are_separate(store: Arc<dyn Store>) {
    running_task(
        &*store,
        vec![step_spec(1, &[], "small"), step_spec(2, &[], "large")],
    )
    .await;
    assert_eq!(
        ids(&claim_ids(&*store, "small", 10, WAIT).await),
        BTreeSet::from([1])
    );
    assert_eq!(
        ids(&claim_ids(&*store, "large", 10, WAIT).await),
        BTreeSet::from([2])
    );
}

/// Concurrent claimers together receive every step exactly once.
pub async fn concurrent_claimers_never_share_a_step(store: Arc<dyn Store>) {
    let steps: Vec<StepSpec> = (1..=40).map(|i| step_spec(i, &[], "x")).collect();
    running_task(&*store, steps).await;
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim("x", &format!("w{w}"), 3, LONG, Duration::ZERO)
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|l| l.spec.step.step_id.0));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=40).collect::<Vec<_>>(),
        "each step delivered exactly once"
    );
}
