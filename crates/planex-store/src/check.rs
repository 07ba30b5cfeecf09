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

/// Checks steps added to a task whose plan is open (`Store::add_steps`): at least one, ids not
/// used yet (`known` says which are), and each dependency a step of the task or one earlier in
/// `steps`, so the task stays a DAG by construction.
pub(crate) fn check_added_steps(
    task_id: &TaskId,
    steps: &[StepSpec],
    known: impl Fn(planex_core::StepId) -> bool,
) -> Result<(), StoreError> {
    let invalid = |detail: String| StoreError::InvalidSteps {
        task_id: task_id.clone(),
        detail,
    };
    if steps.is_empty() {
        return Err(invalid("no steps to add".into()));
    }
    let mut added = std::collections::BTreeSet::new();
    for spec in steps {
        let id = spec.step.step_id;
        if known(id) || !added.insert(id) {
            return Err(invalid(format!("step {id} is a step of the task already")));
        }
        if let Some(dep) = spec
            .step
            .depends_on
            .iter()
            .find(|d| **d == id || !(known(**d) || added.contains(*d)))
        {
            return Err(invalid(format!(
                "step {id} depends on step {dep}, which is not an earlier step of the task"
            )));
        }
    }
    Ok(())
}
