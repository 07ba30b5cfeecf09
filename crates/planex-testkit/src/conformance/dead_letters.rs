//! Store conformance cases about acting on failures: dead letters are paged per tenant, newest
//! first, filtered by tool and error text, read and purged by id; a replayed task starts with
//! reused results and runs only the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::{WAIT, claim_ids, failed, ids, ok};
use crate::store::{ANY_PLAN, call_record, new_task, step_spec, tenant_task};
use planex_core::{Stage, StepId, TaskId};
use planex_store::{DeadLetterQuery, LetterId, NewTask, StepState, Store, StoreError, TaskStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Starts a one-step task of `tenant` on tier `tier` whose step fails with `error`.
async fn failed_task(store: &dyn Store, tenant: Option<&str>, tier: &str, error: &str) -> TaskId {
    let task_id = tenant_task(store, tenant).await;
    let mut spec = step_spec(1, &[], tier);
    spec.step.tool_name = format!("tool_{tier}");
    store
        .start_task(&task_id, &ANY_PLAN, vec![spec], vec![])
        .await
        .unwrap();
    let lease = claim_ids(store, tier, 1, WAIT).await.remove(0);
    store.complete(&lease, failed(error)).await.unwrap();
    task_id
}

/// A tenant's page holds only its letters, newest first, with ids that order them; filters by
/// tool and by error text (any case) apply; the cursor walks to the end; a letter is read and
/// purged by id, and a purged letter is gone from pages while its task is unchanged.
pub async fn dead_letters_are_paged_per_tenant_read_and_purged(store: Arc<dyn Store>) {
    let tier = format!("dl{}", &TaskId::new_random().0[..8]);
    let acme_first = failed_task(&*store, Some("acme"), &tier, "HTTP 400 bad request").await;
    let globex = failed_task(&*store, Some("globex"), &tier, "HTTP 400 bad request").await;
    let acme_second = failed_task(&*store, Some("acme"), &tier, "timed out after 30 s").await;
    let query = |limit| DeadLetterQuery {
        tenant: Some("acme".into()),
        tool: Some(format!("tool_{tier}")),
        limit,
        ..Default::default()
    };
    let page = store.dead_letter_page(&query(10)).await.unwrap();
    let tasks: Vec<&TaskId> = page.letters.iter().map(|l| &l.task_id).collect();
    assert_eq!(
        tasks,
        vec![&acme_second, &acme_first],
        "newest first, acme's only"
    );
    assert_eq!(page.next, None);
    assert!(
        page.letters
            .iter()
            .all(|l| l.tenant.as_deref() == Some("acme"))
    );
    let ids: Vec<LetterId> = page.letters.iter().map(|l| l.id.parse().unwrap()).collect();
    assert!(
        ids[0] > ids[1],
        "ids order letters by when they were parked"
    );

    let first = store.dead_letter_page(&query(1)).await.unwrap();
    assert_eq!(first.letters[0].task_id, acme_second);
    let rest = store
        .dead_letter_page(&DeadLetterQuery {
            before: first.next,
            ..query(1)
        })
        .await
        .unwrap();
    assert_eq!(rest.letters.len(), 1);
    assert_eq!(rest.letters[0].task_id, acme_first);

    let timed_out = store
        .dead_letter_page(&DeadLetterQuery {
            error: Some("TIMED OUT".into()),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(timed_out.letters.len(), 1);
    assert_eq!(timed_out.letters[0].task_id, acme_second);
    let other_tool = store
        .dead_letter_page(&DeadLetterQuery {
            tool: Some("no_such_tool".into()),
            ..query(10)
        })
        .await
        .unwrap();
    assert!(other_tool.letters.is_empty());
    let theirs = store
        .dead_letter_page(&DeadLetterQuery {
            tenant: Some("globex".into()),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(theirs.letters.len(), 1);
    assert_eq!(theirs.letters[0].task_id, globex);

    let id = ids[0];
    let letter = store.dead_letter(id).await.unwrap().expect("read by id");
    assert_eq!(letter.task_id, acme_second);
    assert_eq!(letter.error, "timed out after 30 s");
    assert!(store.purge_dead_letter(id).await.unwrap());
    assert!(!store.purge_dead_letter(id).await.unwrap(), "purged once");
    assert!(store.dead_letter(id).await.unwrap().is_none());
    let after = store.dead_letter_page(&query(10)).await.unwrap();
    assert_eq!(after.letters.len(), 1);
    let task = store.get_task(&acme_second).await.unwrap().unwrap();
    assert_eq!(
        task.status,
        TaskStatus::Failed,
        "purging leaves the task as it was"
    );
}

/// A task started with reused results: those steps are complete at once with their results and
/// never handed out; a step whose dependencies are all reused is ready at once and receives
/// their results; the task finishes when the rest do, with `retry_of` kept.
pub async fn a_task_started_with_reused_results_runs_only_the_rest(store: Arc<dyn Store>) {
    let tier = format!("re{}", &TaskId::new_random().0[..8]);
    let original = TaskId::new_random();
    let task_id = TaskId::new_random();
    store
        .create_task(NewTask {
            retry_of: Some(original.clone()),
            trace_parent: None,
            ..new_task(&task_id)
        })
        .await
        .unwrap();
    let steps = vec![
        step_spec(1, &[], &tier),
        step_spec(2, &[1], &tier),
        step_spec(3, &[2], &tier),
        step_spec(4, &[], &tier),
    ];
    let reused = BTreeMap::from([
        (StepId(1), serde_json::json!("one, as before")),
        (StepId(4), serde_json::json!({"four": 4})),
    ]);
    store
        .start_task_reusing(
            &task_id,
            &ANY_PLAN,
            steps,
            reused,
            vec![call_record(Stage::Plan, 1)],
        )
        .await
        .unwrap();
    let record = store.get_task(&task_id).await.unwrap().unwrap();
    assert_eq!(record.retry_of.as_ref(), Some(&original));
    assert_eq!(record.steps[&StepId(1)].state, StepState::Complete);
    assert_eq!(
        record.steps[&StepId(4)].result,
        Some(serde_json::json!({"four": 4}))
    );
    assert_eq!(record.steps[&StepId(2)].state, StepState::Ready);
    let first = claim_ids(&*store, &tier, 10, WAIT).await;
    assert_eq!(
        ids(&first),
        BTreeSet::from([2]),
        "reused steps are never handed out"
    );
    assert_eq!(
        first[0].dep_results[&StepId(1)],
        serde_json::json!("one, as before")
    );
    store.complete(&first[0], ok("two")).await.unwrap();
    let second = claim_ids(&*store, &tier, 10, WAIT).await;
    assert_eq!(ids(&second), BTreeSet::from([3]));
    store.complete(&second[0], ok("three")).await.unwrap();
    let done = store.get_task(&task_id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Complete);
    assert_eq!(
        done.steps[&StepId(1)].attempts,
        0,
        "a reused step made no attempt"
    );
    assert_eq!(
        done.calls.len(),
        3,
        "the planner's and the two steps' calls only"
    );
}

/// Reused results that cannot be honoured are refused before anything changes: a step that is
/// not in the plan, a reused step depending on one that is not reused, every step reused.
pub async fn reused_results_are_checked(store: Arc<dyn Store>) {
    let tier = format!("rc{}", &TaskId::new_random().0[..8]);
    let steps = || vec![step_spec(1, &[], &tier), step_spec(2, &[1], &tier)];
    let cases = [
        BTreeMap::from([(StepId(9), serde_json::json!("x"))]),
        BTreeMap::from([(StepId(2), serde_json::json!("x"))]),
        BTreeMap::from([
            (StepId(1), serde_json::json!("x")),
            (StepId(2), serde_json::json!("y")),
        ]),
    ];
    for reused in cases {
        let task_id = crate::store::planning_task(&*store, &TaskId::new_random().0).await;
        let refused = store
            .start_task_reusing(&task_id, &ANY_PLAN, steps(), reused.clone(), vec![])
            .await;
        assert!(
            matches!(refused, Err(StoreError::InvalidSteps { .. })),
            "{reused:?}: {refused:?}"
        );
        let record = store.get_task(&task_id).await.unwrap().unwrap();
        assert_eq!(record.status, TaskStatus::Planning, "nothing changed");
    }
}
