//! Store conformance cases about what a store reports: event histories and live events, queue
//! depths, errors, tasks that never ran, costs and summaries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::{WAIT, claim_ids, ids, ok};
use crate::store::{ANY_PLAN, call_record, running_task, step_spec};
use futures::StreamExt;
use planex_core::{Decimal, Stage, StepId, TaskId};
use planex_store::{
    Completion, EventKind, EventStream, NewTask, QueueDepth, Store, StoreError, TaskEvent,
    TaskStatus, wait_for_status,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Reads an event stream to its end, failing when it stalls.
async fn drain(mut events: EventStream) -> Vec<TaskEvent> {
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("event stream stalled")
    {
        seen.push(event);
    }
    seen
}

/// A subscription replays the history, follows live events and ends after `TaskCompleted`;
/// seq numbers count from 1 without gaps, and a later subscription replays the same events.
pub async fn events_replay_then_follow_and_end(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[1], "x")],
    )
    .await;
    let l1 = claim_ids(&*store, "x", 1, WAIT).await.remove(0);
    let events = store.events(&task).await.unwrap();
    store.complete(&l1, ok("a")).await.unwrap();
    let l2 = claim_ids(&*store, "x", 1, WAIT).await.remove(0);
    store.complete(&l2, ok("b")).await.unwrap();
    let seen = drain(events).await;
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seen.len() as u64).collect::<Vec<_>>(),
        "seq counts from 1 without gaps"
    );
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e.kind {
            EventKind::Planned { .. } => "planned",
            EventKind::StepPlanned { .. } => "step_planned",
            EventKind::Replanned { .. } => "replanned",
            EventKind::StepStarted { .. } => "started",
            EventKind::StepCompleted { .. } => "completed",
            EventKind::StepFailed { .. } => "failed",
            EventKind::StepSkipped { .. } => "skipped",
            EventKind::AnswerDelta { .. } => "delta",
            EventKind::TaskCompleted { .. } => "task",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "planned",
            "started",
            "completed",
            "started",
            "completed",
            "task"
        ]
    );
    // A subscription after the end replays the history and ends.
    let replay: Vec<TaskEvent> = store.events(&task).await.unwrap().collect().await;
    assert_eq!(replay, seen);
}

/// Several steps of one task claimed and completed together (one batch, one script call on
/// Redis) still give every event once, in order, numbered without gaps, to a live subscriber;
/// `wait_for_status` reports the final status from the events.
pub async fn batched_steps_keep_events_in_order(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![
            step_spec(1, &[], "x"),
            step_spec(2, &[], "x"),
            step_spec(3, &[], "x"),
            step_spec(4, &[1, 2, 3], "x"),
        ],
    )
    .await;
    let events = store.events(&task).await.unwrap();
    let roots = claim_ids(&*store, "x", 3, WAIT).await;
    assert_eq!(ids(&roots), BTreeSet::from([1, 2, 3]));
    let done = futures::future::join_all(roots.iter().map(|l| store.complete(l, ok("r")))).await;
    assert!(
        done.iter()
            .all(|d| matches!(d, Ok(Completion::Applied { .. })))
    );
    let last = claim_ids(&*store, "x", 3, WAIT).await;
    assert_eq!(ids(&last), BTreeSet::from([4]));
    assert_eq!(
        last[0].dep_results.len(),
        3,
        "the join step sees all three results"
    );
    store.complete(&last[0], ok("joined")).await.unwrap();
    let seen = drain(events).await;
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "{seen:?}");
    for step in 1..=4 {
        let started = seen
            .iter()
            .filter(
                |e| matches!(&e.kind, EventKind::StepStarted { step_id, .. } if step_id.0 == step),
            )
            .count();
        let completed = seen
            .iter()
            .filter(
                |e| matches!(&e.kind, EventKind::StepCompleted { step_id } if step_id.0 == step),
            )
            .count();
        assert_eq!((started, completed), (1, 1), "step {step}: {seen:?}");
    }
    assert_eq!(
        wait_for_status(&*store, &task, WAIT).await.unwrap(),
        Some(TaskStatus::Complete)
    );
    let unfinished = running_task(&*store, vec![step_spec(1, &[], "y")]).await;
    assert_eq!(
        wait_for_status(&*store, &unfinished, Duration::from_millis(50))
            .await
            .unwrap(),
        None,
        "a task still running times out"
    );
}

/// Queue depth counts ready and in-flight steps per tier; an unknown tier is empty.
pub async fn queue_depth_counts_ready_and_in_flight(store: Arc<dyn Store>) {
    running_task(
        &*store,
        vec![
            step_spec(1, &[], "x"),
            step_spec(2, &[], "x"),
            step_spec(3, &[], "x"),
            step_spec(4, &[], "y"),
        ],
    )
    .await;
    assert_eq!(
        store.queue_depth("x").await.unwrap(),
        QueueDepth {
            ready: 3,
            in_flight: 0
        }
    );
    let leased = claim_ids(&*store, "x", 2, WAIT).await;
    assert_eq!(
        store.queue_depth("x").await.unwrap(),
        QueueDepth {
            ready: 1,
            in_flight: 2
        }
    );
    assert_eq!(
        store.queue_depth("y").await.unwrap(),
        QueueDepth {
            ready: 1,
            in_flight: 0
        }
    );
    store.complete(&leased[0], ok("a")).await.unwrap();
    assert_eq!(
        store.queue_depth("x").await.unwrap(),
        QueueDepth {
            ready: 1,
            in_flight: 1
        }
    );
    assert_eq!(
        store.queue_depth("none").await.unwrap(),
        QueueDepth::default()
    );
}

/// Unknown tasks, duplicate ids, cyclic and dangling plans are refused with clear errors.
pub async fn errors_for_unknown_and_invalid(store: Arc<dyn Store>) {
    let ghost = TaskId::from("no-such-task");
    assert_eq!(store.get_task(&ghost).await.unwrap(), None);
    assert!(matches!(
        store.events(&ghost).await,
        Err(StoreError::TaskNotFound(_))
    ));
    let err = store
        .start_task(&ghost, &ANY_PLAN, vec![step_spec(1, &[], "x")], vec![])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::TaskNotFound(ghost));
    let task = TaskId::new_random();
    let new = NewTask {
        task_id: task.clone(),
        task: "t".into(),
        tenant: None,
        cost_center: None,
        task_type: None,
        end_user: None,
        retry_of: None,
        trace_parent: None,
    };
    store.create_task(new.clone()).await.unwrap();
    assert!(matches!(
        store.create_task(new).await,
        Err(StoreError::TaskExists(_))
    ));
    let cyclic = vec![step_spec(1, &[2], "x"), step_spec(2, &[1], "x")];
    let err = store
        .start_task(&task, &ANY_PLAN, cyclic, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    let dangling = vec![step_spec(1, &[9], "x")];
    let err = store
        .start_task(&task, &ANY_PLAN, dangling, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown step 9"), "{err}");
}

/// A task that never ran ends with its reason, its calls and a `TaskCompleted` event, and can
/// no longer be started.
pub async fn unplanned_tasks_finish_with_reason(store: Arc<dyn Store>) {
    let task = TaskId::new_random();
    store
        .create_task(NewTask {
            task_id: task.clone(),
            task: "t".into(),
            tenant: Some("acme".into()),
            cost_center: None,
            task_type: None,
            end_user: Some("user-42".into()),
            retry_of: None,
            trace_parent: None,
        })
        .await
        .unwrap();
    store
        .finish_unplanned(
            &task,
            TaskStatus::Failed,
            "planner returned two invalid plans".into(),
            vec![call_record(Stage::Plan, 7)],
        )
        .await
        .unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert_eq!(record.tenant.as_deref(), Some("acme"));
    assert_eq!(record.end_user.as_deref(), Some("user-42"));
    assert!(record.error.as_deref().unwrap().contains("invalid plans"));
    assert_eq!(record.cost().total.usage.prompt_tokens, 7);
    let events: Vec<TaskEvent> = store.events(&task).await.unwrap().collect().await;
    assert!(matches!(
        events.last().unwrap().kind,
        EventKind::TaskCompleted {
            status: TaskStatus::Failed
        }
    ));
    let err = store
        .start_task(&task, &ANY_PLAN, vec![step_spec(1, &[], "x")], vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongStatus { .. }));
}

/// A task's cost sums the planner's and every step's calls, per stage and in total.
pub async fn costs_accumulate_over_stages(store: Arc<dyn Store>) {
    let task = running_task(
        &*store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[], "x")],
    )
    .await;
    for lease in claim_ids(&*store, "x", 10, WAIT).await {
        store.complete(&lease, ok("r")).await.unwrap();
    }
    let cost = store.get_task(&task).await.unwrap().unwrap().cost();
    assert_eq!(cost.total.calls, 3);
    assert_eq!(cost.by_stage["plan"].usage.prompt_tokens, 10);
    assert_eq!(cost.by_stage["step"].usage.prompt_tokens, 10);
    assert_eq!(cost.total.cost_usd, Decimal::from(20));
}

/// `task_summary` agrees with the full record's status, step count and cost.
pub async fn summary_matches_the_full_record(store: Arc<dyn Store>) {
    assert_eq!(
        store.task_summary(&TaskId::from("nope")).await.unwrap(),
        None
    );
    let task = running_task(
        &*store,
        vec![step_spec(1, &[], "x"), step_spec(2, &[1], "x")],
    )
    .await;
    for _ in 0..2 {
        for lease in claim_ids(&*store, "x", 10, WAIT).await {
            store.complete(&lease, ok("r")).await.unwrap();
        }
    }
    let record = store.get_task(&task).await.unwrap().unwrap();
    let summary = store.task_summary(&task).await.unwrap().unwrap();
    assert_eq!(summary.status, TaskStatus::Complete);
    assert_eq!(summary.steps, 2);
    assert_eq!(summary.cost, record.cost());
    assert_eq!(
        summary.cost.total.calls, 3,
        "the planner's call and both steps'"
    );
}

/// A transient event reaches whoever follows the task, in order with the others and with seq 0,
/// but stays out of the history (a later subscription does not see it); publishing for an unknown
/// task is no error.
pub async fn transient_events_reach_followers_and_stay_out_of_the_history(store: Arc<dyn Store>) {
    let task = running_task(&*store, vec![step_spec(1, &[], "x")]).await;
    let mut events = store.events(&task).await.unwrap();
    let lease = claim_ids(&*store, "x", 1, WAIT).await.remove(0);
    // Transient events reach only live followers: wait until this one is (it sees the start).
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e: &TaskEvent| matches!(e.kind, EventKind::StepStarted { .. }))
    {
        let next = tokio::time::timeout(WAIT, events.next()).await;
        seen.push(
            next.expect("the start is seen")
                .expect("the stream goes on"),
        );
    }
    for (offset, text) in [(0, "Hel"), (3, "lo")] {
        let delta = EventKind::AnswerDelta {
            step_id: StepId(1),
            attempt: 1,
            offset,
            text: text.into(),
        };
        store.publish_transient(&task, delta).await.unwrap();
    }
    store.complete(&lease, ok("Hello")).await.unwrap();
    seen.extend(drain(events).await);
    let deltas: Vec<(u64, &str)> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AnswerDelta { text, .. } => Some((e.seq, text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, [(0, "Hel"), (0, "lo")], "{seen:?}");
    let last = seen.last().unwrap();
    assert!(
        matches!(last.kind, EventKind::TaskCompleted { .. }),
        "the deltas came before the completion: {seen:?}"
    );
    let history = drain(store.events(&task).await.unwrap()).await;
    assert!(
        history
            .iter()
            .all(|e| e.seq > 0 && !matches!(e.kind, EventKind::AnswerDelta { .. })),
        "{history:?}"
    );
    assert_eq!(history.len(), seen.len() - 2);
    store
        .publish_transient(
            &TaskId::from("no-such-task"),
            EventKind::StepCompleted { step_id: StepId(1) },
        )
        .await
        .unwrap();
}
