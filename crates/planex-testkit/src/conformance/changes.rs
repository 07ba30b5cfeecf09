//! Conformance cases of `Store::task_changes`: every tenant's task status changes, live.

use super::{LONG, WAIT, ok};
use crate::store::{ANY_PLAN, call_record, step_spec, tenant_task};
use futures::StreamExt;
use planex_core::{Stage, TaskId};
use planex_store::{Store, TaskChange, TaskStatus};
use std::collections::HashMap;
use std::sync::Arc;

/// A reader of task changes sees each task's creation (`planning`), its start (`running`, from a
/// whole plan or a streamed one) and its end (`complete`, `rejected`, `cancelled`), in order,
/// with the task's tenant; changes of tasks it did not make are possible, `Resync` is allowed.
pub async fn task_changes_follow_each_task_from_creation_to_its_end(store: Arc<dyn Store>) {
    let mut changes = store.task_changes().await.unwrap();

    let ran = tenant_task(&*store, Some("acme")).await;
    store
        .start_task(
            &ran,
            &ANY_PLAN,
            vec![step_spec(1, &[], "changes")],
            vec![call_record(Stage::Plan, 10)],
        )
        .await
        .unwrap();
    let lease = store.claim("changes", "w1", 1, LONG, WAIT).await.unwrap();
    assert_eq!(lease.len(), 1);
    store.complete(&lease[0], ok("done")).await.unwrap();

    let rejected = tenant_task(&*store, None).await;
    store
        .finish_unplanned(
            &rejected,
            TaskStatus::Rejected,
            "over budget".into(),
            vec![],
        )
        .await
        .unwrap();

    let streamed = tenant_task(&*store, Some("acme")).await;
    store.open_plan(&streamed).await.unwrap();
    store.cancel_task(&streamed).await.unwrap();

    let expected: HashMap<&TaskId, (Option<&str>, Vec<TaskStatus>)> = HashMap::from([
        (
            &ran,
            (
                Some("acme"),
                vec![
                    TaskStatus::Planning,
                    TaskStatus::Running,
                    TaskStatus::Complete,
                ],
            ),
        ),
        (
            &rejected,
            (None, vec![TaskStatus::Planning, TaskStatus::Rejected]),
        ),
        (
            &streamed,
            (
                Some("acme"),
                vec![
                    TaskStatus::Planning,
                    TaskStatus::Running,
                    TaskStatus::Cancelled,
                ],
            ),
        ),
    ]);
    let wanted: usize = expected.values().map(|(_, s)| s.len()).sum();
    let mut seen: HashMap<TaskId, Vec<TaskStatus>> = HashMap::new();
    tokio::time::timeout(WAIT, async {
        while seen.values().map(Vec::len).sum::<usize>() < wanted {
            let change = changes.next().await.expect("the change stream stays open");
            let TaskChange::Status {
                task_id,
                tenant,
                status,
            } = change
            else {
                continue;
            };
            if let Some((owner, _)) = expected.get(&task_id) {
                assert_eq!(tenant.as_deref(), *owner, "task {task_id}'s tenant");
                seen.entry(task_id).or_default().push(status);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only these changes arrived: {seen:?}"));
    for (task_id, (_, statuses)) in &expected {
        assert_eq!(&seen[*task_id], statuses, "task {task_id}'s changes");
    }
    let acme = TaskChange::Status {
        task_id: ran.clone(),
        tenant: Some("acme".into()),
        status: TaskStatus::Running,
    };
    assert!(acme.concerns(Some("acme")) && !acme.concerns(None) && !acme.concerns(Some("b")));
    assert!(TaskChange::Resync.concerns(Some("b")));
}

/// Changes a reader that stopped reading is sure to fall behind by (more than either store
/// queues per reader).
const FLOOD: usize = 5_000;

/// A reader that stops reading while many tasks change is told to resync (it missed some), and
/// changes made after that reach it again.
pub async fn a_reader_that_falls_behind_is_told_to_resync(store: Arc<dyn Store>) {
    let mut changes = store.task_changes().await.unwrap();
    for _ in 0..FLOOD {
        tenant_task(&*store, Some("flood")).await;
    }
    let mut statuses = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            match changes.next().await.expect("the change stream stays open") {
                // Where it comes (first, or after the changes kept) is the store's choice.
                TaskChange::Resync => return,
                TaskChange::Status { .. } => statuses += 1,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no resync after {statuses} of {FLOOD} changes"));
    assert!(
        statuses < FLOOD,
        "every change was kept: no resync was owed"
    );
    let late = tenant_task(&*store, Some("flood")).await;
    tokio::time::timeout(WAIT, async {
        loop {
            if let TaskChange::Status { task_id, .. } =
                changes.next().await.expect("the change stream stays open")
                && task_id == late
            {
                return;
            }
        }
    })
    .await
    .expect("a change after the resync arrives");
}
