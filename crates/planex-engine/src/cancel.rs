//! Cancelling a task ([`Engine::cancel`]): the store stops handing its steps out, then its budget
//! reservation is settled with what it cost so far.
//!
//! Key decision: one function does both, in this order, so nothing new can be claimed (and spent)
//! after the settlement. Steps already running finish: their calls are recorded on the task (its
//! cost grows after the cancel), and their results start no dependents. The settlement here counts
//! the cost recorded when the cancel happened; a task cancelled while planning keeps its `{task}/plan`
//! reservation until the planning in flight settles it (or orphan recovery does).

use crate::{Engine, EngineError};
use planex_core::TaskId;
use planex_store::{StoreError, TaskRecord};

impl Engine {
    /// Cancels a task that is `planning` or `running` and settles its step reservation; returns its
    /// record as it is right after (status `cancelled`, steps not started `skipped`). A finished
    /// task is `EngineError::Store(StoreError::WrongStatus { .. })`, an unknown one
    /// `StoreError::TaskNotFound`.
    pub async fn cancel(&self, task_id: &TaskId) -> Result<TaskRecord, EngineError> {
        self.store.cancel_task(task_id).await?;
        let record = self
            .store
            .get_task(task_id)
            .await?
            .ok_or_else(|| StoreError::TaskNotFound(task_id.clone()))?;
        if let Some(guard) = &self.budget {
            guard.settle(&record).await;
        }
        tracing::info!(task = %task_id, cost_usd = %record.cost().total.cost_usd, "task cancelled");
        Ok(record)
    }
}
