//! Store conformance cases about workers and what their leases carry: a worker whose heartbeat
//! lapsed has its steps redelivered at once, not after its lease (live workers and workers that
//! never beat keep theirs); workers' TTFT reports; a task's trace context on its leases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::{LONG, ok};
use crate::store::{running_task, step_spec};
use planex_core::TaskId;
use planex_store::{NewTask, StepOutcome, StepState, Store, TaskStatus};
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

/// A step whose first worker died (its heartbeat lapsed) and whose second gave up after retries:
/// its dead letter lists the lost delivery, then each earlier attempt, then the final error.
pub async fn a_dead_letter_lists_each_lost_delivery_and_failed_attempt(store: Arc<dyn Store>) {
    let task = running_task(&*store, vec![step_spec(1, &[], "dl")]).await;
    store
        .heartbeat("dl", "gone", Duration::from_millis(1))
        .await
        .unwrap();
    let _lost = store
        .claim("dl", "gone", 1, LONG, LONG)
        .await
        .unwrap()
        .remove(0);
    // Lets the 1 ms heartbeat lapse: a clock passing, not a state another task produces.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.reap_dead_workers("dl").await.unwrap(), 1);
    let second = store
        .claim("dl", "w2", 1, LONG, Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.delivery, 2);
    let outcome = StepOutcome::Failed {
        error: "tier t: gave up after 3 attempts: HTTP 503".into(),
        attempts: 3,
        calls: vec![],
        attempt_errors: vec!["attempt 1: HTTP 503".into(), "attempt 2: HTTP 502".into()],
    };
    store.complete(&second, outcome).await.unwrap();
    let letter = store
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.task_id == task)
        .expect("the step's dead letter");
    assert_eq!(letter.error, "tier t: gave up after 3 attempts: HTTP 503");
    assert_eq!(letter.deliveries, 2);
    assert_eq!(
        letter.attempt_errors.len(),
        3,
        "{:?}",
        letter.attempt_errors
    );
    assert!(
        letter.attempt_errors[0].starts_with("delivery 1 (worker gone): its lease expired"),
        "{:?}",
        letter.attempt_errors
    );
    assert_eq!(
        letter.attempt_errors[1..],
        ["attempt 1: HTTP 503", "attempt 2: HTTP 502"]
    );
}

/// Workers report TTFT per tier with their heartbeat: the live reports of a tier are read back, a
/// new report replaces a worker's last one, tiers are kept apart (a worker may report on a tier
/// it only escalated to), and a lapsed report is gone.
pub async fn workers_report_their_tiers_ttft(store: Arc<dyn Store>) {
    let report = |worker: &str, millis: u64, samples: usize| planex_store::WorkerTtft {
        worker: worker.to_owned(),
        p95: Duration::from_millis(millis),
        samples,
    };
    let ttl = Duration::from_secs(60);
    assert!(store.tier_ttft("ttft").await.unwrap().is_empty());
    for worker in ["w1", "w2", "other"] {
        let tier = if worker == "other" {
            "elsewhere"
        } else {
            "ttft"
        };
        store.heartbeat(tier, worker, ttl).await.unwrap();
    }
    store
        .report_ttft("ttft", &report("w1", 900, 10), ttl)
        .await
        .unwrap();
    store
        .report_ttft("ttft", &report("w1", 1250, 12), ttl)
        .await
        .unwrap();
    store
        .report_ttft("ttft", &report("w2", 80, 3), ttl)
        .await
        .unwrap();
    store
        .report_ttft("elsewhere", &report("other", 5, 1), ttl)
        .await
        .unwrap();
    let mut reports = store.tier_ttft("ttft").await.unwrap();
    reports.sort_by(|a, b| a.worker.cmp(&b.worker));
    assert_eq!(reports, vec![report("w1", 1250, 12), report("w2", 80, 3)]);
    assert_eq!(
        store.tier_ttft("elsewhere").await.unwrap(),
        vec![report("other", 5, 1)]
    );
    assert_eq!(store.live_workers("ttft").await.unwrap(), 2);
    // `other` also called tier ttft (an escalation), briefly: its report lapses.
    store
        .report_ttft("ttft", &report("other", 40, 2), Duration::from_millis(1))
        .await
        .unwrap();
    // Lets the 1 ms report lapse: a clock passing, not a state another task produces.
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.reap_dead_workers("ttft").await.unwrap();
    let mut reports = store.tier_ttft("ttft").await.unwrap();
    reports.sort_by(|a, b| a.worker.cmp(&b.worker));
    assert_eq!(reports, vec![report("w1", 1250, 12), report("w2", 80, 3)]);
}

/// A task's trace context reaches every lease of its steps, whether the plan came whole
/// (`start_task`) or streamed (`open_plan`, `add_steps`); a task without one leases with none.
pub async fn leases_carry_their_tasks_trace_parent(store: Arc<dyn Store>) {
    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = |id: &TaskId| NewTask {
        trace_parent: Some(PARENT.to_owned()),
        ..crate::store::new_task(id)
    };
    let whole = TaskId::new_random();
    store.create_task(traced(&whole)).await.unwrap();
    store
        .start_task(
            &whole,
            &crate::store::ANY_PLAN,
            vec![step_spec(1, &[], "tp")],
            vec![],
        )
        .await
        .unwrap();
    let streamed = TaskId::new_random();
    store.create_task(traced(&streamed)).await.unwrap();
    store.open_plan(&streamed).await.unwrap();
    store
        .add_steps(&streamed, vec![step_spec(1, &[], "tp")])
        .await
        .unwrap();
    let untraced = running_task(&*store, vec![step_spec(1, &[], "tp")]).await;
    let leases = store.claim("tp", "w", 10, LONG, LONG).await.unwrap();
    assert_eq!(leases.len(), 3);
    for lease in &leases {
        let expected = (lease.task_id != untraced).then_some(PARENT);
        assert_eq!(lease.trace_parent.as_deref(), expected, "{}", lease.task_id);
    }
    let record = store.get_task(&whole).await.unwrap().unwrap();
    assert_eq!(record.trace_parent.as_deref(), Some(PARENT));
}
