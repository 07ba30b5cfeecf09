//! Backend-neutral conformance cases for `DriftStore`.
//!
//! A backend's test file calls `planex_testkit::drift_conformance_tests!(factory)`, where the
//! factory is an async fn returning a fresh, empty `Arc<dyn DriftStore>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use planex_core::{Decimal, TaskId};
use planex_store::{DriftSample, DriftSizes, DriftStore, LearnedBaseline};
use std::sync::Arc;

fn sample(steps: u32, cents: i64) -> DriftSample {
    DriftSample {
        steps,
        cost_usd: Decimal::new(cents, 2),
    }
}

const SIZES: DriftSizes = DriftSizes {
    learn_tasks: 3,
    window: 4,
};

/// The baseline is learned from the first `learn_tasks` tasks (p95 steps, mean cost) and never
/// changes afterwards; before that the samples count as learning.
pub async fn drift_learns_the_baseline_once(store: Arc<dyn DriftStore>) {
    let empty = store.drift_record("t").await.unwrap();
    assert_eq!(empty.learned, None);
    assert_eq!((empty.learning, empty.recent.len()), (0, 0));
    for (i, (steps, cents)) in [(2, 10), (4, 20), (3, 30)].into_iter().enumerate() {
        let id = TaskId::from(format!("a{i}").as_str());
        assert!(
            store
                .record_finished("t", &id, sample(steps, cents), SIZES)
                .await
                .unwrap()
        );
        let record = store.drift_record("t").await.unwrap();
        if i < 2 {
            assert_eq!(record.learned, None);
            assert_eq!(record.learning, i + 1);
        }
    }
    let learned = LearnedBaseline {
        steps_p95: 4,
        cost_usd_mean: Decimal::new(20, 2),
        tasks: 3,
    };
    let record = store.drift_record("t").await.unwrap();
    assert_eq!(record.learned, Some(learned));
    assert_eq!(record.learning, 0);
    store
        .record_finished("t", &TaskId::from("late"), sample(40, 900), SIZES)
        .await
        .unwrap();
    let record = store.drift_record("t").await.unwrap();
    assert_eq!(record.learned, Some(learned), "a learned baseline stays");
    assert_eq!(record.recent[0], sample(40, 900));
}

/// The recent window keeps the newest `window` samples, newest first.
pub async fn drift_window_keeps_the_newest(store: Arc<dyn DriftStore>) {
    for i in 1..=6u32 {
        let id = TaskId::from(format!("w{i}").as_str());
        store
            .record_finished("w", &id, sample(i, i64::from(i)), SIZES)
            .await
            .unwrap();
    }
    let record = store.drift_record("w").await.unwrap();
    let steps: Vec<u32> = record.recent.iter().map(|s| s.steps).collect();
    assert_eq!(steps, vec![6, 5, 4, 3]);
    assert_eq!(record.recent[0].cost_usd, Decimal::new(6, 2));
}

/// Recording a task twice counts it once; types are kept apart and listed.
pub async fn drift_records_each_task_once_per_type(store: Arc<dyn DriftStore>) {
    let id = TaskId::from("same");
    assert!(
        store
            .record_finished("b", &id, sample(2, 1), SIZES)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_finished("b", &id, sample(2, 1), SIZES)
            .await
            .unwrap(),
        "a repeated task id changes nothing"
    );
    store
        .record_finished("a", &TaskId::from("other"), sample(5, 1), SIZES)
        .await
        .unwrap();
    let b = store.drift_record("b").await.unwrap();
    assert_eq!((b.recent.len(), b.learning), (1, 1));
    let a = store.drift_record("a").await.unwrap();
    assert_eq!(a.recent, vec![sample(5, 1)]);
    assert_eq!(store.drift_types().await.unwrap(), vec!["a", "b"]);
}

/// Two recorders of the same task racing (a task's watcher and its waiter): whichever returns,
/// its caller reads the sample recorded, and once `learn_tasks` tasks are in, the baseline
/// learned. (On Redis the duplicate once returned while the first was between its steps.)
pub async fn drift_a_racing_duplicate_returns_after_the_sample_is_in(store: Arc<dyn DriftStore>) {
    for i in 0..40usize {
        let id = TaskId::from(format!("r{i}").as_str());
        let read_after = |store: Arc<dyn DriftStore>, id: TaskId| async move {
            store
                .record_finished("race", &id, sample(2, 1), SIZES)
                .await
                .unwrap();
            store.drift_record("race").await.unwrap()
        };
        let (first, second) = tokio::join!(
            tokio::spawn(read_after(store.clone(), id.clone())),
            tokio::spawn(read_after(store.clone(), id)),
        );
        for record in [first.unwrap(), second.unwrap()] {
            let expected = (i + 1).min(SIZES.window);
            assert_eq!(record.recent.len(), expected, "after task {i}: {record:?}");
            if i + 1 >= SIZES.learn_tasks {
                assert!(record.learned.is_some(), "after task {i}: {record:?}");
                assert_eq!(record.learning, 0);
            } else {
                assert_eq!(record.learning, i + 1);
            }
        }
    }
}

/// Generates one `#[tokio::test]` per `DriftStore` conformance case for a backend, from an async
/// factory of fresh, empty `Arc<dyn DriftStore>`s.
#[macro_export]
macro_rules! drift_conformance_tests {
    ($factory:path) => {
        $crate::drift_conformance_tests!(@cases $factory;
            drift_learns_the_baseline_once,
            drift_window_keeps_the_newest,
            drift_records_each_task_once_per_type,
            drift_a_racing_duplicate_returns_after_the_sample_is_in);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::drift::$case($factory().await).await;
            }
        )*
    };
}
