//! Conformance cases of a task's life around the scheduler: idempotency keys (the submission a
//! retried `Idempotency-Key` finds) and cancelling a task.

use planex_core::TaskId;
use planex_store::{Store, Submission};
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
