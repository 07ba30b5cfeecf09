//! Cancelling a task ([`Engine::cancel`]): its budget meter is closed (no model call of the task is
//! made after this returns), the store stops handing its steps out, then its reservation is settled.
//!
//! Key decision: one function does all three, in this order, so nothing new can be claimed or
//! spent after the settlement. Steps already running finish: their calls are recorded on the task
//! (its cost grows after the cancel), and their results start no dependents. A call in flight at the
//! cancel drew its worst case from the meter, and settling charges at least what the draws used, so
//! the ledger bills it at that worst case even though its real cost is recorded only later.

use crate::{Engine, EngineError};
use planex_core::TaskId;
use planex_store::{StoreError, TaskRecord};

impl Engine {
    /// Cancels a task that is `planning` or `running` and settles its step reservation; returns its
    /// record as it is right after (status `cancelled`, steps not started `skipped`). A finished
    /// task is `EngineError::Store(StoreError::WrongStatus { .. })`, an unknown one
    /// `StoreError::TaskNotFound`.
    pub async fn cancel(&self, task_id: &TaskId) -> Result<TaskRecord, EngineError> {
        // First close the task's meter: from now on no model call of the task is made, even by a
        // worker that claimed a step just before the store marks the task cancelled.
        if let Some(guard) = &self.budget
            && let Err(error) = guard.ledger().close(&task_id.0).await
        {
            tracing::error!(task = %task_id, error = %planex_core::cause::ErrorChain(&error),
                "could not close the task's budget meter; steps already claimed may still call their model");
        }
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
