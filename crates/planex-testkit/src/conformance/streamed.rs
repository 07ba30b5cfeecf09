//! Store conformance cases about streamed plans: a task opened before its plan is finished, steps
//! added while earlier ones run, steps a re-plan supersedes, and the close.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::{WAIT, claim_ids, failed, ids, ok, state};
use crate::store::{ANY_PLAN, call_record, planning_task, step_spec};
use planex_core::{Stage, StepId, TaskId};
use planex_store::{EventKind, StepSpec, StepState, Store, StoreError, TaskStatus};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

async fn open_task(store: &dyn Store) -> TaskId {
    let task = planning_task(store, &TaskId::new_random().0).await;
    store.open_plan(&task).await.unwrap();
    task
}

async fn add(store: &dyn Store, task: &TaskId, steps: Vec<StepSpec>) {
    store.add_steps(task, steps).await.unwrap();
}

async fn status(store: &dyn Store, task: &TaskId) -> TaskStatus {
    store.get_task(task).await.unwrap().unwrap().status
}

async fn event_kinds(store: &dyn Store, task: &TaskId) -> Vec<EventKind> {
    use futures::StreamExt;
    let events = store.events(task).await.unwrap();
    let all: Vec<_> = tokio::time::timeout(WAIT, events.collect::<Vec<_>>())
        .await
        .expect("a finished task's events end");
    all.into_iter().map(|e| e.kind).collect()
}

/// Steps added to an open plan run as soon as their dependencies allow (one depending on a step
/// that completed already is ready at once, with its result); the task does not finish while the
/// plan is open, even with every step done, and finishes at the close with the plan and calls.
pub async fn a_streamed_plan_runs_steps_as_they_are_added(store: Arc<dyn Store>) {
    let task = open_task(&*store).await;
    let later = planex_store::now_ms() + 60_000;
    assert_eq!(
        store.planning_tasks(later, 10).await.unwrap(),
        vec![task.clone()]
    );
    assert_eq!(status(&*store, &task).await, TaskStatus::Running);
    add(&*store, &task, vec![step_spec(1, &[], "s")]).await;
    let first = claim_ids(&*store, "s", 10, WAIT).await;
    assert_eq!(ids(&first), BTreeSet::from([1]));
    store.complete(&first[0], ok("one")).await.unwrap();
    assert_eq!(
        status(&*store, &task).await,
        TaskStatus::Running,
        "an open plan holds the task"
    );
    add(
        &*store,
        &task,
        vec![step_spec(2, &[1], "s"), step_spec(3, &[2], "s")],
    )
    .await;
    let second = claim_ids(&*store, "s", 10, WAIT).await;
    assert_eq!(ids(&second), BTreeSet::from([2]), "3 waits for 2");
    assert_eq!(second[0].dep_results[&StepId(1)], serde_json::json!("one"));
    store.complete(&second[0], ok("two")).await.unwrap();
    let third = claim_ids(&*store, "s", 10, WAIT).await;
    assert_eq!(ids(&third), BTreeSet::from([3]));
    store.complete(&third[0], ok("three")).await.unwrap();
    assert_eq!(status(&*store, &task).await, TaskStatus::Running);
    store
        .close_plan(
            &task,
            Some(&ANY_PLAN),
            vec![call_record(Stage::Plan, 10)],
            None,
        )
        .await
        .unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Complete);
    assert_eq!(record.answer().as_deref(), Some("three"));
    assert_eq!(record.steps.len(), 3);
    assert!(record.plan.is_some());
    assert!(record.calls.iter().any(|c| c.stage == Stage::Plan));
    assert!(store.planning_tasks(later, 10).await.unwrap().is_empty());
    let kinds = event_kinds(&*store, &task).await;
    let planned: Vec<StepId> = kinds
        .iter()
        .filter_map(|k| match k {
            EventKind::StepPlanned { step_id, .. } => Some(*step_id),
            _ => None,
        })
        .collect();
    assert_eq!(planned, vec![StepId(1), StepId(2), StepId(3)]);
    assert!(
        matches!(kinds[0], EventKind::StepPlanned { ref depends_on, .. } if depends_on.is_empty())
    );
    assert!(matches!(
        kinds.last(),
        Some(EventKind::TaskCompleted {
            status: TaskStatus::Complete
        })
    ));
    assert!(
        matches!(kinds[kinds.len() - 2], EventKind::Planned { steps: 3 }),
        "the close says how many steps the plan has: {kinds:?}"
    );
}

/// A plan that closes after its last step finished finishes at the close; one that closes first
/// finishes with its last step.
pub async fn a_closed_plan_finishes_with_its_last_step(store: Arc<dyn Store>) {
    let task = open_task(&*store).await;
    add(&*store, &task, vec![step_spec(1, &[], "c")]).await;
    let lease = claim_ids(&*store, "c", 1, WAIT).await.remove(0);
    store.close_plan(&task, None, vec![], None).await.unwrap();
    assert_eq!(status(&*store, &task).await, TaskStatus::Running);
    store.complete(&lease, ok("done")).await.unwrap();
    assert_eq!(status(&*store, &task).await, TaskStatus::Complete);
    assert!(matches!(
        store.add_steps(&task, vec![step_spec(2, &[], "c")]).await,
        Err(StoreError::WrongStatus { .. })
    ));
}

/// Added steps are checked (ids unused, dependencies of the task; nothing of a refused batch is
/// added); a step after a failed one is skipped at once; a tolerant one runs if any dependency
/// completed and is skipped if none did.
pub async fn added_steps_are_checked_and_follow_failed_dependencies(store: Arc<dyn Store>) {
    let task = open_task(&*store).await;
    add(
        &*store,
        &task,
        vec![step_spec(1, &[], "k"), step_spec(2, &[], "k")],
    )
    .await;
    let refused = store
        .add_steps(&task, vec![step_spec(3, &[], "k"), step_spec(1, &[], "k")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidSteps { .. })),
        "{refused:?}"
    );
    let refused = store
        .add_steps(&task, vec![step_spec(3, &[], "k"), step_spec(4, &[9], "k")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidSteps { .. })),
        "{refused:?}"
    );
    assert!(
        !store
            .get_task(&task)
            .await
            .unwrap()
            .unwrap()
            .steps
            .contains_key(&StepId(3)),
        "a refused batch adds nothing"
    );
    let leases = claim_ids(&*store, "k", 10, WAIT).await;
    let by_id = |n| leases.iter().find(|l| l.spec.step.step_id.0 == n).unwrap();
    store.complete(by_id(1), ok("one")).await.unwrap();
    store.complete(by_id(2), failed("boom")).await.unwrap();
    let mut tolerant_ok = step_spec(5, &[1, 2], "k");
    tolerant_ok.tolerate_failed_deps = true;
    let mut tolerant_none = step_spec(6, &[2], "k");
    tolerant_none.tolerate_failed_deps = true;
    add(
        &*store,
        &task,
        vec![step_spec(3, &[2], "k"), tolerant_ok, tolerant_none],
    )
    .await;
    assert_eq!(state(&*store, &task, 3).await, StepState::Skipped);
    assert_eq!(state(&*store, &task, 6).await, StepState::Skipped);
    let next = claim_ids(&*store, "k", 10, WAIT).await;
    assert_eq!(ids(&next), BTreeSet::from([5]));
    store.complete(&next[0], ok("five")).await.unwrap();
    store.close_plan(&task, None, vec![], None).await.unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Partial);
    let error = record.error.unwrap_or_default();
    assert!(error.contains("step 2 failed: boom"), "{error}");
}

/// Superseded steps stop counting: waiting ones are skipped and never handed out, a running one
/// finishes and keeps its result and calls, and the task's status and answer come from the rest.
pub async fn superseded_steps_no_longer_count(store: Arc<dyn Store>) {
    let task = open_task(&*store).await;
    add(
        &*store,
        &task,
        vec![step_spec(1, &[], "u"), step_spec(2, &[1], "u")],
    )
    .await;
    let running = claim_ids(&*store, "u", 1, WAIT).await.remove(0);
    add(&*store, &task, vec![step_spec(3, &[], "u")]).await;
    store
        .supersede_steps(&task, 1, &[StepId(1), StepId(2), StepId(3)], "discarded")
        .await
        .unwrap();
    assert_eq!(state(&*store, &task, 2).await, StepState::Skipped);
    assert_eq!(state(&*store, &task, 3).await, StepState::Skipped);
    assert_eq!(state(&*store, &task, 1).await, StepState::Running);
    store.complete(&running, ok("old")).await.unwrap();
    assert!(
        claim_ids(&*store, "u", 10, Duration::ZERO).await.is_empty(),
        "superseded steps are not handed out"
    );
    add(&*store, &task, vec![step_spec(4, &[], "u")]).await;
    let fresh = claim_ids(&*store, "u", 10, WAIT).await;
    assert_eq!(ids(&fresh), BTreeSet::from([4]));
    store.complete(&fresh[0], ok("new")).await.unwrap();
    store.close_plan(&task, None, vec![], None).await.unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    assert_eq!(record.answer().as_deref(), Some("new"));
    assert!(record.steps[&StepId(1)].superseded && !record.steps[&StepId(4)].superseded);
    assert_eq!(
        record.steps[&StepId(1)].result,
        Some(serde_json::json!("old"))
    );
    assert_eq!(
        record.calls.len(),
        2,
        "the superseded step's call stays in the cost"
    );
    let kinds = event_kinds(&*store, &task).await;
    assert!(kinds.iter().any(|k| matches!(k,
        EventKind::Replanned { round: 1, superseded, .. } if superseded.len() == 3)));
}

/// A plan closed cut short ends `partial` with the reason first (`failed` when nothing counted
/// completed); closing a task cancelled meanwhile records the calls and changes nothing else.
pub async fn a_plan_cut_short_or_cancelled_says_why(store: Arc<dyn Store>) {
    let task = open_task(&*store).await;
    add(&*store, &task, vec![step_spec(1, &[], "v")]).await;
    let lease = claim_ids(&*store, "v", 1, WAIT).await.remove(0);
    store.complete(&lease, ok("one")).await.unwrap();
    store
        .close_plan(
            &task,
            None,
            vec![],
            Some("steps 2-4 were not run: over budget".into()),
        )
        .await
        .unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Partial);
    assert!(record.error.unwrap().starts_with("steps 2-4 were not run"));

    let nothing = open_task(&*store).await;
    add(&*store, &nothing, vec![step_spec(1, &[], "v2")]).await;
    store
        .supersede_steps(&nothing, 1, &[StepId(1)], "discarded")
        .await
        .unwrap();
    store
        .close_plan(
            &nothing,
            None,
            vec![],
            Some("the planner returned an invalid plan twice".into()),
        )
        .await
        .unwrap();
    let record = store.get_task(&nothing).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert!(record.error.unwrap().starts_with("the planner returned"));

    let cancelled = open_task(&*store).await;
    add(&*store, &cancelled, vec![step_spec(1, &[], "v3")]).await;
    store.cancel_task(&cancelled).await.unwrap();
    assert!(matches!(
        store
            .add_steps(&cancelled, vec![step_spec(2, &[], "v3")])
            .await,
        Err(StoreError::WrongStatus {
            status: TaskStatus::Cancelled,
            ..
        })
    ));
    store
        .close_plan(
            &cancelled,
            Some(&ANY_PLAN),
            vec![call_record(Stage::Plan, 7)],
            None,
        )
        .await
        .unwrap();
    let record = store.get_task(&cancelled).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Cancelled);
    assert_eq!(record.calls.len(), 1, "the planner call is recorded");
    assert!(
        record.plan.is_none(),
        "a cancelled task's plan is not closed after it"
    );
    let later = planex_store::now_ms() + 60_000;
    assert!(
        !store
            .planning_tasks(later, 100)
            .await
            .unwrap()
            .contains(&cancelled),
        "a cancelled task is not listed as planning"
    );
    let kinds = event_kinds(&*store, &cancelled).await;
    assert!(
        matches!(
            kinds.last(),
            Some(EventKind::TaskCompleted {
                status: TaskStatus::Cancelled
            })
        ),
        "nothing follows the cancel: {kinds:?}"
    );
    assert!(
        claim_ids(&*store, "v3", 10, Duration::ZERO)
            .await
            .is_empty()
    );
}
