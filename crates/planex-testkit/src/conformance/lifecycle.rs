//! Conformance cases of a task's life around the scheduler: idempotency keys (the submission a
//! retried `Idempotency-Key` finds) and cancelling a task.

use super::{LONG, WAIT, ok};
use crate::store::{ANY_PLAN, planning_task, running_task, step_spec};
use futures::StreamExt;
use planex_core::TaskId;
use planex_store::{
    CANCELLED, Completion, EventKind, StepState, Store, StoreError, Submission, TaskStatus,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn submission(task: &str, fingerprint: &str) -> Submission {
    Submission {
        task_id: TaskId::from(task),
        fingerprint: fingerprint.into(),
    }
}

/// The first submission under a key wins; a second gets the first back; tenants are separate;
/// a forgotten key is free again.
pub async fn idempotency_keys_are_first_wins_per_tenant(store: Arc<dyn Store>) {
    let day = Duration::from_secs(24 * 3600);
    let first = submission("t-1", "body-a");
    assert_eq!(
        store
            .remember_submission("acme", "k1", &first, day)
            .await
            .unwrap(),
        None,
        "a new key is taken"
    );
    let again = store
        .remember_submission("acme", "k1", &submission("t-2", "body-b"), day)
        .await
        .unwrap();
    assert_eq!(again, Some(first.clone()), "the first submission is kept");
    assert_eq!(
        store
            .remember_submission("globex", "k1", &submission("t-3", "body-a"), day)
            .await
            .unwrap(),
        None,
        "another tenant's key of the same name is its own"
    );
    store.forget_submission("acme", "k1").await.unwrap();
    assert_eq!(
        store
            .remember_submission("acme", "k1", &submission("t-4", "body-a"), day)
            .await
            .unwrap(),
        None,
        "a forgotten key is free"
    );
}

/// A key is remembered for its TTL only.
pub async fn idempotency_keys_expire(store: Arc<dyn Store>) {
    let short = Duration::from_millis(50);
    store
        .remember_submission("acme", "brief", &submission("t-1", "f"), short)
        .await
        .unwrap();
    // Wait out the TTL on the clock, not on a state change: expiry is the behaviour under test.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store
            .remember_submission("acme", "brief", &submission("t-2", "f"), short)
            .await
            .unwrap(),
        None,
        "an expired key is free"
    );
}

/// Concurrent claims of one key agree on one submission.
pub async fn concurrent_idempotency_claims_agree(store: Arc<dyn Store>) {
    let day = Duration::from_secs(3600);
    let claims = (0..8).map(|i| {
        let store = store.clone();
        async move {
            let mine = submission(&format!("t-{i}"), "f");
            let existing = store
                .remember_submission("acme", "race", &mine, day)
                .await
                .unwrap();
            existing.unwrap_or(mine).task_id
        }
    });
    let winners: std::collections::BTreeSet<TaskId> = futures::future::join_all(claims)
        .await
        .into_iter()
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
}

/// Cancelling a running task skips its waiting steps, ends it `cancelled` (with the event) and
/// hands out nothing more; a running step's completion is still recorded and billed but starts no
/// dependent; a second cancel is `WrongStatus`.
pub async fn cancel_skips_waiting_steps_and_keeps_running_ones(store: Arc<dyn Store>) {
    // 1 and 2 are roots; 3 needs 1; 4 needs 3.
    let steps = vec![
        step_spec(1, &[], "c"),
        step_spec(2, &[], "c"),
        step_spec(3, &[1], "c"),
        step_spec(4, &[3], "c"),
    ];
    let task = running_task(&*store, steps).await;
    let held = store.claim("c", "w1", 1, LONG, WAIT).await.unwrap();
    assert_eq!(held.len(), 1);
    let running = held[0].spec.step.step_id;
    let mut events = store.events(&task).await.unwrap();
    store.cancel_task(&task).await.unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Cancelled);
    assert!(record.finished_at_ms.is_some());
    for (id, step) in &record.steps {
        if *id == running {
            assert_eq!(step.state, StepState::Running, "step {id} keeps running");
        } else {
            assert_eq!(step.state, StepState::Skipped, "step {id}");
            assert_eq!(step.error.as_deref(), Some(CANCELLED));
        }
    }
    let finished = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let EventKind::TaskCompleted { status } = event.kind {
                return Some(status);
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(finished, Some(TaskStatus::Cancelled));
    // The other root was ready: it is not handed out.
    let none = store
        .claim("c", "w2", 4, LONG, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    // The running step finishes: its result and call are recorded, nothing becomes ready.
    match store.complete(&held[0], ok("late")).await.unwrap() {
        Completion::Applied {
            newly_ready,
            task_finished,
            ..
        } => {
            assert!(newly_ready.is_empty(), "{newly_ready:?}");
            assert_eq!(task_finished, None);
        }
        Completion::Duplicate => panic!("the running step's completion is applied"),
    }
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Cancelled);
    assert_eq!(record.steps[&running].state, StepState::Complete);
    assert_eq!(
        record.calls.len(),
        2,
        "the planner's call and the late step's"
    );
    assert!(
        store
            .claim("c", "w2", 4, LONG, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.cancel_task(&task).await,
        Err(StoreError::WrongStatus {
            status: TaskStatus::Cancelled,
            ..
        })
    ));
    assert!(matches!(
        store.cancel_task(&TaskId::from("no-such-task")).await,
        Err(StoreError::TaskNotFound(_))
    ));
}

/// A step of a cancelled task whose worker vanished (lease expired) or let go (release) is not
/// handed out again: it is skipped.
pub async fn a_cancelled_tasks_steps_are_never_redelivered(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![step_spec(1, &[], "r"), step_spec(2, &[], "r")],
    )
    .await;
    let short = store
        .claim("r", "dies", 1, Duration::from_millis(50), WAIT)
        .await
        .unwrap();
    let kept = store.claim("r", "drains", 1, LONG, WAIT).await.unwrap();
    assert_eq!((short.len(), kept.len()), (1, 1));
    store.cancel_task(&task).await.unwrap();
    store.release(&kept[0]).await.unwrap();
    // Claim waits past the short lease's expiry (claim's own wait, woken by the deadline).
    let again = store
        .claim("r", "w3", 4, LONG, Duration::from_millis(400))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Cancelled);
    assert!(
        record
            .steps
            .values()
            .all(|s| s.state == StepState::Skipped && s.error.as_deref() == Some(CANCELLED)),
        "{:?}",
        record.steps
    );
}

/// A task cancelled while planning ends `cancelled` and cannot be started afterwards.
pub async fn a_task_cancelled_while_planning_cannot_start(store: Arc<dyn Store>) {
    let task = planning_task(&*store, "cancel-planning").await;
    store.cancel_task(&task).await.unwrap();
    let started = store
        .start_task(&task, &ANY_PLAN, vec![step_spec(1, &[], "p")], Vec::new())
        .await;
    assert!(
        matches!(
            started,
            Err(StoreError::WrongStatus {
                status: TaskStatus::Cancelled,
                ..
            })
        ),
        "{started:?}"
    );
    assert_eq!(
        store.get_task(&task).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );
}

/// `planning_tasks` lists the tasks still planning, oldest first, created by the cutoff: a task
/// leaves the list when it starts, finishes unplanned or is cancelled, and the limit is kept.
pub async fn planning_tasks_are_listed_until_they_move_on(store: Arc<dyn Store>) {
    let now = planex_store::now_ms();
    assert!(store.planning_tasks(now, 10).await.unwrap().is_empty());
    let starts = planning_task(&*store, "p-starts").await;
    let fails = planning_task(&*store, "p-fails").await;
    let cancelled = planning_task(&*store, "p-cancelled").await;
    let stays = planning_task(&*store, "p-stays").await;
    // Generous cutoff: the Redis store stamps tasks with the server's clock.
    let later = planex_store::now_ms() + 60_000;
    let listed = store.planning_tasks(later, 10).await.unwrap();
    assert_eq!(
        listed.iter().collect::<BTreeSet<_>>(),
        [&starts, &fails, &cancelled, &stays].into_iter().collect(),
    );
    assert_eq!(store.planning_tasks(later, 2).await.unwrap().len(), 2);
    assert!(
        store.planning_tasks(0, 10).await.unwrap().is_empty(),
        "nothing was created before the epoch"
    );
    store
        .start_task(&starts, &ANY_PLAN, vec![step_spec(1, &[], "p")], vec![])
        .await
        .unwrap();
    store
        .finish_unplanned(&fails, TaskStatus::Failed, "no plan".into(), vec![])
        .await
        .unwrap();
    store.cancel_task(&cancelled).await.unwrap();
    assert_eq!(store.planning_tasks(later, 10).await.unwrap(), vec![stays]);
}
