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

/// Checks the results a task starts with ([`crate::Store::start_task_reusing`]): each names a plan
/// step (not the synthesis step) whose dependencies are all reused too, and some step is left to
/// run. Returns how many steps are reused.
pub(crate) fn check_reused(
    task_id: &TaskId,
    steps: &[StepSpec],
    reused: &std::collections::BTreeMap<planex_core::StepId, serde_json::Value>,
) -> Result<usize, StoreError> {
    let invalid = |detail: String| StoreError::InvalidSteps {
        task_id: task_id.clone(),
        detail,
    };
    for id in reused.keys() {
        let spec = steps
            .iter()
            .find(|s| s.step.step_id == *id)
            .ok_or_else(|| invalid(format!("reused step {id} is not a step of the plan")))?;
        if spec.stage != planex_core::Stage::Step {
            return Err(invalid(format!(
                "step {id} is not a plan step: it cannot be reused"
            )));
        }
        if let Some(dep) = spec
            .step
            .depends_on
            .iter()
            .find(|d| !reused.contains_key(d))
        {
            return Err(invalid(format!(
                "reused step {id} depends on step {dep}, which is not reused: a step is reused only with all it depends on"
            )));
        }
    }
    if reused.len() >= steps.len() {
        return Err(invalid(
            "every step is reused: nothing is left to run".into(),
        ));
    }
    Ok(reused.len())
}
