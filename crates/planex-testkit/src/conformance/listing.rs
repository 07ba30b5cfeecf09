//! Conformance cases of `Store::list_tasks`: a tenant's own tasks, newest first, by status, a page
//! at a time.

use planex_core::TaskId;
use planex_store::{NewTask, Store, TaskCursor, TaskPage, TaskQuery, TaskStatus};
use std::collections::BTreeSet;
use std::sync::Arc;

async fn create(store: &dyn Store, id: &str, tenant: Option<&str>, text: &str) -> TaskId {
    let task_id = TaskId::from(id);
    store
        .create_task(NewTask {
            task_id: task_id.clone(),
            task: text.into(),
            tenant: tenant.map(str::to_owned),
            cost_center: Some("research".into()),
            task_type: None,
            end_user: None,
            retry_of: None,
            trace_parent: None,
        })
        .await
        .unwrap();
    task_id
}

async fn page(
    store: &dyn Store,
    tenant: Option<&str>,
    status: Option<TaskStatus>,
    after: Option<TaskCursor>,
    limit: usize,
) -> TaskPage {
    store
        .list_tasks(&TaskQuery {
            tenant: tenant.map(str::to_owned),
            status,
            after,
            limit,
        })
        .await
        .unwrap()
}

/// Every page of a listing, in order.
async fn all_pages(
    store: &dyn Store,
    tenant: Option<&str>,
    status: Option<TaskStatus>,
    limit: usize,
) -> Vec<TaskId> {
    let mut ids = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = page(store, tenant, status, after, limit).await;
        assert!(page.tasks.len() <= limit, "{page:?}");
        ids.extend(page.tasks.into_iter().map(|t| t.task_id));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
    panic!("the listing never ended");
}

/// A tenant sees only its own tasks, newest first, and pages of any size cover them all exactly
/// once; a status filter keeps only that status; a task created after the first page appears
/// before it, not inside a later page; a listing shows what a task is, not its steps.
pub async fn tasks_are_listed_per_tenant_newest_first_a_page_at_a_time(store: Arc<dyn Store>) {
    let mut acme = Vec::new();
    for i in 0..7 {
        acme.push(
            create(
                &*store,
                &format!("acme-{i}"),
                Some("acme"),
                &format!("task {i}"),
            )
            .await,
        );
        create(&*store, &format!("other-{i}"), Some("other"), "theirs").await;
    }
    let keyless = create(&*store, "keyless", None, "no tenant").await;
    for failed in [&acme[1], &acme[4]] {
        store
            .finish_unplanned(failed, TaskStatus::Failed, "no plan".into(), vec![])
            .await
            .unwrap();
    }

    let first = page(&*store, Some("acme"), None, None, 100).await;
    assert!(first.next.is_none(), "{first:?}");
    let listed: Vec<TaskId> = first.tasks.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(
        listed.iter().collect::<BTreeSet<_>>(),
        acme.iter().collect::<BTreeSet<_>>(),
        "acme sees its 7 tasks and no one else's"
    );
    assert!(
        first
            .tasks
            .windows(2)
            .all(|w| w[0].created_at_ms >= w[1].created_at_ms),
        "newest first: {first:?}"
    );
    let newest = &first.tasks[0];
    assert_eq!(newest.task, "task 6");
    assert_eq!(newest.cost_center.as_deref(), Some("research"));
    assert_eq!(newest.status, TaskStatus::Planning);
    assert!(newest.finished_at_ms.is_none());
    for limit in [1, 2, 3, 7] {
        assert_eq!(
            all_pages(&*store, Some("acme"), None, limit).await,
            listed,
            "pages of {limit}"
        );
    }

    let failed = page(&*store, Some("acme"), Some(TaskStatus::Failed), None, 100).await;
    assert_eq!(
        failed
            .tasks
            .iter()
            .map(|t| &t.task_id)
            .collect::<BTreeSet<_>>(),
        [&acme[1], &acme[4]].into_iter().collect(),
    );
    assert!(failed.tasks.iter().all(|t| t.finished_at_ms.is_some()));
    assert_eq!(
        all_pages(&*store, Some("acme"), Some(TaskStatus::Planning), 2)
            .await
            .len(),
        5
    );

    let start = page(&*store, Some("acme"), None, None, 3).await;
    let late = create(&*store, "acme-late", Some("acme"), "late").await;
    let rest = page(&*store, Some("acme"), None, start.next.clone(), 100).await;
    assert!(
        rest.tasks.iter().all(|t| t.task_id != late),
        "a task created after the first page is not inside a later one"
    );
    assert_eq!(start.tasks.len() + rest.tasks.len(), 7);
    assert_eq!(
        page(&*store, Some("acme"), None, None, 1).await.tasks[0].task_id,
        late
    );

    let none = page(&*store, None, None, None, 10).await;
    assert_eq!(
        none.tasks.iter().map(|t| &t.task_id).collect::<Vec<_>>(),
        vec![&keyless]
    );
    let stranger = page(&*store, Some("nobody"), None, None, 10).await;
    assert!(stranger.tasks.is_empty() && stranger.next.is_none());
}
