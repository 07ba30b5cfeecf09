//! The store's error type: what failed and what the caller can do.

use crate::types::TaskStatus;
use planex_core::cause::SharedSource;
use planex_core::{StepId, TaskId};

/// A store failure. Every variant says what failed and what the caller can do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// No task with this id.
    #[error("task {0} not found; check the id (tasks are kept by the store that accepted them)")]
    TaskNotFound(TaskId),
    /// A task with this id exists already.
    #[error("task {0} already exists; use a fresh task id")]
    TaskExists(TaskId),
    /// The operation does not fit the task's current status.
    #[error("task {task_id} is {status}; cannot {action}")]
    WrongStatus {
        /// The task.
        task_id: TaskId,
        /// Its status.
        status: TaskStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The step is not part of the task.
    #[error("task {task_id} has no step {step_id}")]
    StepNotFound {
        /// The task.
        task_id: TaskId,
        /// The step id.
        step_id: StepId,
    },
    /// The steps handed to `start_task` do not form a valid DAG.
    #[error("invalid steps for task {task_id}: {detail}")]
    InvalidSteps {
        /// The task.
        task_id: TaskId,
        /// What is wrong.
        detail: String,
    },
    /// The backend could not be reached or answered an error; retrying later may help.
    #[error("store backend unavailable: {what}; check that it is running and reachable")]
    Unavailable {
        /// What failed (`redis read task failed`).
        what: String,
        /// The Redis (or other) error behind it, when there is one.
        #[source]
        source: Option<SharedSource>,
    },
    /// Stored data could not be decoded or encoded (a version mismatch or corruption).
    #[error("stored data is corrupt: {what}")]
    Corrupt {
        /// Which data.
        what: String,
        /// The decoding error, when there is one.
        #[source]
        source: Option<SharedSource>,
    },
}
