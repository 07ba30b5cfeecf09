//! The memory store's task index per tenant (creation ms, task id), kept as tasks are created and
//! evicted, and the walk of `Store::list_tasks` over it (see `listing.rs` at the crate root).

use crate::listing::{SCAN_LIMIT, TaskCursor, TaskListing, TaskPage, TaskQuery, preview};
use crate::types::TaskRecord;
use planex_core::TaskId;
use std::collections::{BTreeSet, HashMap};

/// Task ids per tenant (`None`: tasks without one), ordered by creation time then id.
#[derive(Default)]
pub(super) struct TenantIndex {
    by_tenant: HashMap<Option<String>, BTreeSet<(u64, TaskId)>>,
}

impl TenantIndex {
    /// Adds a task created at `created_at_ms`.
    pub(super) fn insert(&mut self, tenant: &Option<String>, created_at_ms: u64, task_id: &TaskId) {
        self.by_tenant
            .entry(tenant.clone())
            .or_default()
            .insert((created_at_ms, task_id.clone()));
    }

    /// Takes out an evicted task.
    pub(super) fn remove(&mut self, tenant: &Option<String>, created_at_ms: u64, task_id: &TaskId) {
        if let Some(ids) = self.by_tenant.get_mut(tenant) {
            ids.remove(&(created_at_ms, task_id.clone()));
            if ids.is_empty() {
                self.by_tenant.remove(tenant);
            }
        }
    }
}

/// One page of `query` from `index`, reading each task with `record_of`.
pub(super) fn page<'a>(
    index: &TenantIndex,
    query: &TaskQuery,
    record_of: impl Fn(&TaskId) -> Option<&'a TaskRecord>,
) -> TaskPage {
    let Some(ids) = index.by_tenant.get(&query.tenant) else {
        return TaskPage::default();
    };
    let mut entries = match &query.after {
        Some(after) => ids.range(..(after.created_at_ms, after.task_id.clone())),
        None => ids.range(..),
    }
    .rev()
    .peekable();
    let limit = query.limit.max(1);
    let mut page = TaskPage::default();
    let mut walked = 0;
    while let Some((created_at_ms, task_id)) = entries.next() {
        walked += 1;
        let record = record_of(task_id);
        if let Some(record) = record.filter(|r| query.status.is_none_or(|s| s == r.status)) {
            page.tasks.push(TaskListing {
                task_id: task_id.clone(),
                status: record.status,
                task: preview(&record.task),
                cost_center: record.cost_center.clone(),
                task_type: record.task_type.clone(),
                created_at_ms: *created_at_ms,
                finished_at_ms: record.finished_at_ms,
            });
        }
        if (page.tasks.len() >= limit || walked >= SCAN_LIMIT) && entries.peek().is_some() {
            page.next = Some(TaskCursor {
                created_at_ms: *created_at_ms,
                task_id: task_id.clone(),
            });
            break;
        }
    }
    page
}
