//! The check every backend makes before it starts a task: its steps form a DAG that can run.

use crate::error::StoreError;
use crate::types::StepSpec;
use planex_core::{TaskId, dag};

/// Checks that the steps handed to `start_task` can all run: at least one, unique ids, known
/// dependencies, no cycle (`planex_core::dag::check`).
pub(crate) fn check_steps(task_id: &TaskId, steps: &[StepSpec]) -> Result<(), StoreError> {
    let invalid = |detail: String| StoreError::InvalidSteps {
        task_id: task_id.clone(),
        detail,
    };
    if steps.is_empty() {
        return Err(invalid("a task needs at least one step".into()));
    }
    dag::check(steps.iter().map(|s| &s.step)).map_err(|e| invalid(e.to_string()))
}
