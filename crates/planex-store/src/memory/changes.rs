//! Task status changes in the memory store (`Store::task_changes`): one broadcast channel, sent
//! to where a task's status changes (created, started, finished).

use crate::changes::{TaskChange, TaskChangeStream};
use crate::types::TaskRecord;
use futures::StreamExt;
use tokio::sync::broadcast;

/// Changes a reader may fall behind by before it is told to resync.
const BACKLOG: usize = 4_096;

/// The store's broadcast of task status changes.
pub(super) struct ChangeFeed(broadcast::Sender<TaskChange>);

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed(broadcast::channel(BACKLOG).0)
    }
}

impl ChangeFeed {
    /// A live stream of changes from now on; a reader that fell behind gets `Resync`.
    pub(super) fn subscribe(&self) -> TaskChangeStream {
        futures::stream::unfold(self.0.subscribe(), |mut changes| async move {
            match changes.recv().await {
                Ok(change) => Some((change, changes)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((TaskChange::Resync, changes)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .boxed()
    }

    /// Tells the readers the task's status now (nobody reading is fine).
    pub(super) fn announce(&self, record: &TaskRecord) {
        let _ = self.0.send(TaskChange::Status {
            task_id: record.task_id.clone(),
            tenant: record.tenant.clone(),
            status: record.status,
        });
    }
}
