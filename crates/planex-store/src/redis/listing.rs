//! `Store::list_tasks` on Redis: one `list.lua` call walks the tenant's `P:tenant_tasks` index and
//! reads each task's summary fields, so a page is one round trip.

use super::codec::word;
use super::errors::{corrupt, unavailable};
use super::shared::{Core, Retry};
use crate::error::StoreError;
use crate::listing::{SCAN_LIMIT, TaskCursor, TaskListing, TaskPage, TaskQuery, preview};
use crate::types::TaskStatus;
use planex_core::TaskId;

/// One row of `list.lua`: id, status, task text (cut), cost center, task type, created, finished.
type Row = (
    String,
    String,
    Vec<u8>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn millis(what: &str, task_id: &str, text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("task {task_id} has a bad {what} time {text:?}")))
}

fn listing(row: Row) -> Result<TaskListing, StoreError> {
    let (id, state, text, cost_center, task_type, created, finished) = row;
    let created_at_ms = millis("creation", &id, created.as_deref().unwrap_or_default())?;
    let finished_at_ms = finished.map(|f| millis("finish", &id, &f)).transpose()?;
    Ok(TaskListing {
        status: word::<TaskStatus>(&format!("task {id} status"), &state)?,
        task: preview(&String::from_utf8_lossy(&text)),
        cost_center,
        task_type,
        created_at_ms,
        finished_at_ms,
        task_id: TaskId(id),
    })
}

pub(super) async fn list_tasks(core: &Core, query: &TaskQuery) -> Result<TaskPage, StoreError> {
    let mut invocation = core.invocation(&core.scripts.list);
    invocation.arg(query.tenant.as_deref().unwrap_or_default());
    match &query.after {
        Some(after) => invocation.arg(after.created_at_ms).arg(&after.task_id.0),
        None => invocation.arg("").arg(""),
    };
    invocation
        .arg(query.status.map(|s| s.to_string()).unwrap_or_default())
        .arg(query.limit.max(1))
        .arg(SCAN_LIMIT);
    let (next_ms, next_id, rows): (String, String, Vec<Row>) = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("list tasks", e))?;
    let tasks = rows.into_iter().map(listing).collect::<Result<_, _>>()?;
    let next = if next_id.is_empty() {
        None
    } else {
        Some(TaskCursor {
            created_at_ms: millis("cursor", &next_id, &next_ms)?,
            task_id: TaskId(next_id),
        })
    };
    Ok(TaskPage { tasks, next })
}
