//! The backend-neutral conformance suite: the semantics every `Store` must have.
//!
//! A backend's test file calls `planex_store::conformance_tests!(factory)`, where `factory` is an
//! async fn returning a fresh, empty `Arc<dyn Store>` configured with `max_deliveries =
//! MAX_DELIVERIES`. Each case becomes its own `#[tokio::test]`. Waits are on events with timeouts
//! (claim's own wait), never sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::*;
use futures::StreamExt;
use planex_core::{CallRecord, Decimal, Plan, Stage, Step, StepId, TaskId, Usage};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The delivery bound the factory's store must be configured with.
pub const MAX_DELIVERIES: u32 = 3;
const LONG: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

/// The plan the suite's tasks are started with: a store keeps the plan it is given and never
/// reads it, so its content does not matter here.
pub static ANY_PLAN: Plan = Plan {
    task: String::new(),
    steps: Vec::new(),
};

pub fn spec(id: u32, deps: &[u32], tier: &str) -> StepSpec {
    StepSpec {
        step: Step {
            step_id: StepId(id),
            tool_name: "tool".into(),
            args: serde_json::Map::new(),
            depends_on: deps.iter().map(|d| StepId(*d)).collect(),
        },
        tier: tier.into(),
        stage: Stage::Step,
        tolerate_failed_deps: false,
    }
}

fn call(stage: Stage, tokens: u64) -> CallRecord {
    CallRecord {
        stage,
        tier: "t".into(),
        model: "m".into(),
        tool: None,
        step_id: None,
        usage: Usage {
            prompt_tokens: tokens,
            completion_tokens: 1,
            cached_tokens: 0,
        },
        cost_usd: Decimal::from(tokens),
    }
}

/// Creates a task (in `planning`) with the given id.
pub async fn create(store: &dyn Store, id: &str) -> TaskId {
    let task_id = TaskId::from(id);
    store
        .create_task(NewTask {
            task_id: task_id.clone(),
            task: "t".into(),
            tenant: None,
            cost_center: None,
        })
        .await
        .unwrap();
    task_id
}

/// Creates a task and starts it with `steps`.
pub async fn new_task(store: &dyn Store, steps: Vec<StepSpec>) -> TaskId {
    let task_id = create(store, &TaskId::new_random().0).await;
    store
        .start_task(&task_id, &ANY_PLAN, steps, vec![call(Stage::Plan, 10)])
        .await
        .unwrap();
    task_id
}

fn ok(value: &str) -> StepOutcome {
    StepOutcome::Succeeded {
        result: serde_json::json!(value),
        attempts: 1,
        calls: vec![call(Stage::Step, 5)],
    }
}

fn failed(why: &str) -> StepOutcome {
    StepOutcome::Failed {
        error: why.into(),
        attempts: 4,
        calls: vec![],
    }
}

async fn claim_ids(store: &dyn Store, tier: &str, max: usize, wait: Duration) -> Vec<StepLease> {
    store.claim(tier, "w1", max, LONG, wait).await.unwrap()
}

fn ids(leases: &[StepLease]) -> BTreeSet<u32> {
    leases.iter().map(|l| l.spec.step.step_id.0).collect()
}

async fn state(store: &dyn Store, task: &TaskId, step: u32) -> StepState {
    store.get_task(task).await.unwrap().unwrap().steps[&StepId(step)].state
}

pub async fn roots_ready_dependents_wait(store: Arc<dyn Store>) {
    let task = new_task(
        &*store,
        vec![spec(1, &[], "x"), spec(2, &[], "x"), spec(3, &[1, 2], "x")],
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

pub async fn completion_is_idempotent(store: Arc<dyn Store>) {
    let task = new_task(&*store, vec![spec(1, &[], "x")]).await;
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

pub async fn failure_dead_letters_and_skips_dependents(store: Arc<dyn Store>) {
    let task = new_task(
        &*store,
        vec![
            spec(1, &[], "x"),
            spec(2, &[1], "x"),
            spec(3, &[2], "x"),
            spec(4, &[], "x"),
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

pub async fn tolerant_step_runs_after_failed_dependency(store: Arc<dyn Store>) {
    let mut synth = spec(3, &[1, 2], "x");
    synth.tolerate_failed_deps = true;
    let task = new_task(&*store, vec![spec(1, &[], "x"), spec(2, &[], "x"), synth]).await;
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

pub async fn expired_lease_is_redelivered(store: Arc<dyn Store>) {
    let task = new_task(&*store, vec![spec(1, &[], "x")]).await;
    let first = store
        .claim("x", "dead-worker", 1, Duration::from_millis(50), WAIT)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.delivery, 1);
    let second = store.claim("x", "w2", 1, LONG, WAIT).await.unwrap();
    assert_eq!(second.len(), 1, "the expired lease must be redelivered");
    assert_eq!(second[0].delivery, 2);
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

pub async fn poison_step_goes_to_dead_letters(store: Arc<dyn Store>) {
    let task = new_task(
        &*store,
        vec![spec(1, &[], "x"), spec(2, &[1], "x"), spec(3, &[], "y")],
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

pub async fn release_returns_step_uncounted(store: Arc<dyn Store>) {
    new_task(&*store, vec![spec(1, &[], "x")]).await;
    let lease = claim_ids(&*store, "x", 1, WAIT).await.remove(0);
    store.release(&lease).await.unwrap();
    let again = claim_ids(&*store, "x", 1, WAIT).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].delivery, 1,
        "a released step is not a failed delivery"
    );
}

pub async fn extended_lease_is_kept(store: Arc<dyn Store>) {
    new_task(&*store, vec![spec(1, &[], "x")]).await;
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

pub async fn events_replay_then_follow_and_end(store: Arc<dyn Store>) {
    let task = new_task(&*store, vec![spec(1, &[], "x"), spec(2, &[1], "x")]).await;
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
            EventKind::StepStarted { .. } => "started",
            EventKind::StepCompleted { .. } => "completed",
            EventKind::StepFailed { .. } => "failed",
            EventKind::StepSkipped { .. } => "skipped",
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
    let task = new_task(
        &*store,
        vec![
            spec(1, &[], "x"),
            spec(2, &[], "x"),
            spec(3, &[], "x"),
            spec(4, &[1, 2, 3], "x"),
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
    let unfinished = new_task(&*store, vec![spec(1, &[], "y")]).await;
    assert_eq!(
        wait_for_status(&*store, &unfinished, Duration::from_millis(50))
            .await
            .unwrap(),
        None,
        "a task still running times out"
    );
}

pub async fn claim_wakes_on_enqueue(store: Arc<dyn Store>) {
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.claim("x", "w", 1, LONG, WAIT).await })
    };
    tokio::task::yield_now().await;
    new_task(&*store, vec![spec(7, &[], "x")]).await;
    let got = tokio::time::timeout(WAIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), BTreeSet::from([7]));
}

pub async fn queue_depth_counts_ready_and_in_flight(store: Arc<dyn Store>) {
    new_task(
        &*store,
        vec![
            spec(1, &[], "x"),
            spec(2, &[], "x"),
            spec(3, &[], "x"),
            spec(4, &[], "y"),
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

pub async fn tiers_are_separate(store: Arc<dyn Store>) {
    new_task(&*store, vec![spec(1, &[], "small"), spec(2, &[], "large")]).await;
    assert_eq!(
        ids(&claim_ids(&*store, "small", 10, WAIT).await),
        BTreeSet::from([1])
    );
    assert_eq!(
        ids(&claim_ids(&*store, "large", 10, WAIT).await),
        BTreeSet::from([2])
    );
}

pub async fn concurrent_claimers_never_share_a_step(store: Arc<dyn Store>) {
    let steps: Vec<StepSpec> = (1..=40).map(|i| spec(i, &[], "x")).collect();
    new_task(&*store, steps).await;
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

pub async fn errors_for_unknown_and_invalid(store: Arc<dyn Store>) {
    let ghost = TaskId::from("no-such-task");
    assert_eq!(store.get_task(&ghost).await.unwrap(), None);
    assert!(matches!(
        store.events(&ghost).await,
        Err(StoreError::TaskNotFound(_))
    ));
    let err = store
        .start_task(&ghost, &ANY_PLAN, vec![spec(1, &[], "x")], vec![])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::TaskNotFound(ghost));
    let task = TaskId::new_random();
    let new = NewTask {
        task_id: task.clone(),
        task: "t".into(),
        tenant: None,
        cost_center: None,
    };
    store.create_task(new.clone()).await.unwrap();
    assert!(matches!(
        store.create_task(new).await,
        Err(StoreError::TaskExists(_))
    ));
    let cyclic = vec![spec(1, &[2], "x"), spec(2, &[1], "x")];
    let err = store
        .start_task(&task, &ANY_PLAN, cyclic, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    let dangling = vec![spec(1, &[9], "x")];
    let err = store
        .start_task(&task, &ANY_PLAN, dangling, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown step 9"), "{err}");
}

pub async fn unplanned_tasks_finish_with_reason(store: Arc<dyn Store>) {
    let task = TaskId::new_random();
    store
        .create_task(NewTask {
            task_id: task.clone(),
            task: "t".into(),
            tenant: Some("acme".into()),
            cost_center: None,
        })
        .await
        .unwrap();
    store
        .finish_unplanned(
            &task,
            TaskStatus::Failed,
            "planner returned two invalid plans".into(),
            vec![call(Stage::Plan, 7)],
        )
        .await
        .unwrap();
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert_eq!(record.tenant.as_deref(), Some("acme"));
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
        .start_task(&task, &ANY_PLAN, vec![spec(1, &[], "x")], vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongStatus { .. }));
}

pub async fn costs_accumulate_over_stages(store: Arc<dyn Store>) {
    let task = new_task(&*store, vec![spec(1, &[], "x"), spec(2, &[], "x")]).await;
    for lease in claim_ids(&*store, "x", 10, WAIT).await {
        store.complete(&lease, ok("r")).await.unwrap();
    }
    let cost = store.get_task(&task).await.unwrap().unwrap().cost();
    assert_eq!(cost.total.calls, 3);
    assert_eq!(cost.by_stage["plan"].usage.prompt_tokens, 10);
    assert_eq!(cost.by_stage["step"].usage.prompt_tokens, 10);
    assert_eq!(cost.total.cost_usd, Decimal::from(20));
}

pub async fn summary_matches_the_full_record(store: Arc<dyn Store>) {
    assert_eq!(
        store.task_summary(&TaskId::from("nope")).await.unwrap(),
        None
    );
    let task = new_task(&*store, vec![spec(1, &[], "x"), spec(2, &[1], "x")]).await;
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

/// Generates one `#[tokio::test]` per conformance case for a backend.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            roots_ready_dependents_wait, completion_is_idempotent, failure_dead_letters_and_skips_dependents,
            tolerant_step_runs_after_failed_dependency, expired_lease_is_redelivered,
            poison_step_goes_to_dead_letters, release_returns_step_uncounted, extended_lease_is_kept,
            events_replay_then_follow_and_end, batched_steps_keep_events_in_order, claim_wakes_on_enqueue, queue_depth_counts_ready_and_in_flight,
            tiers_are_separate, concurrent_claimers_never_share_a_step, errors_for_unknown_and_invalid,
            unplanned_tasks_finish_with_reason, costs_accumulate_over_stages,
            summary_matches_the_full_record);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case($factory().await).await;
            }
        )*
    };
}
