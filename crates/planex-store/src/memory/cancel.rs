//! Cancelling a task in the memory store: its steps not started are skipped and it ends
//! `cancelled`; a step of a cancelled task is never handed out again.
//!
//! Key decision: running steps keep their leases, so their completions are still recorded (and
//! billed); since every step that was waiting is skipped already, those completions make nothing
//! ready, exactly as the Redis store's `cancel.lua`.

use super::state::{Inner, TaskEntry};
use crate::error::StoreError;
use crate::types::*;
use crate::{CANCEL_REASON, CANCELLED};
use planex_core::{StepId, TaskId};

impl TaskEntry {
    /// Skips one step of this (cancelled) task.
    pub(super) fn skip_cancelled(&mut self, step_id: StepId) {
        if let Some(step) = self.record.steps.get_mut(&step_id) {
            step.state = StepState::Skipped;
            step.error = Some(CANCELLED.to_owned());
            step.finished_at_ms = Some(now_ms());
            self.emit(EventKind::StepSkipped {
                step_id,
                reason: CANCELLED.to_owned(),
            });
        }
    }
}

impl Inner {
    /// Cancels a planning or running task (see `Store::cancel_task`).
    pub(super) fn cancel(&mut self, task_id: &TaskId) -> Result<(), StoreError> {
        let entry = self.task(task_id)?;
        if entry.record.status.is_terminal() {
            return Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status: entry.record.status,
                action: "cancel it",
            });
        }
        let waiting: Vec<StepId> = entry
            .record
            .steps
            .iter()
            .filter(|(_, s)| matches!(s.state, StepState::Pending | StepState::Ready))
            .map(|(id, _)| *id)
            .collect();
        for step_id in waiting {
            entry.skip_cancelled(step_id);
        }
        entry.record.status = TaskStatus::Cancelled;
        // A streamed plan ends with the task: a later close only records its calls.
        entry.plan_open = false;
        entry.record.error = Some(CANCEL_REASON.to_owned());
        entry.record.finished_at_ms = Some(now_ms());
        entry.emit(EventKind::TaskCompleted {
            status: TaskStatus::Cancelled,
        });
        entry.subscribers.clear();
        self.record_finished(task_id);
        Ok(())
    }

    /// Whether the task of a step is cancelled (its steps are not handed out again).
    pub(super) fn is_cancelled(&self, task_id: &TaskId) -> bool {
        self.tasks
            .get(task_id)
            .is_some_and(|t| t.record.status == TaskStatus::Cancelled)
    }
}
