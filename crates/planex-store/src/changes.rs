//! Task status changes across the store (`Store::task_changes`, behind `GET /v1/tasks/events`
//! and the dashboard's live tasks list).
//!
//! Key decisions: a change carries only what a reader filters on (task, tenant, new status); the
//! reader fetches the rest. The stream is live only, with no history: a reader loads its list
//! first and then applies changes, and wherever changes may have been missed (the first
//! connection, a Redis reconnect, a reader too slow to keep up) the stream says
//! [`TaskChange::Resync`] so the reader loads its list again. Nothing is lost that way, and the
//! store keeps nothing per change.

use crate::types::TaskStatus;
use futures::stream::BoxStream;
use planex_core::TaskId;

/// One item of [`crate::Store::task_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChange {
    /// A task was created (`planning`), started (`running`) or finished (a terminal status).
    Status {
        /// The task.
        task_id: TaskId,
        /// Its tenant (`None`: created without one).
        tenant: Option<String>,
        /// Its status now.
        status: TaskStatus,
    },
    /// Changes may have been missed here: load the list again.
    Resync,
}

impl TaskChange {
    /// Whether a reader who sees `tenant`'s tasks should act on this change (every reader acts
    /// on `Resync`).
    pub fn concerns(&self, tenant: Option<&str>) -> bool {
        match self {
            TaskChange::Status { tenant: owner, .. } => owner.as_deref() == tenant,
            TaskChange::Resync => true,
        }
    }
}

/// A live stream of task status changes of every tenant (see [`TaskChange`]). It ends only when
/// the store shuts down.
pub type TaskChangeStream = BoxStream<'static, TaskChange>;
