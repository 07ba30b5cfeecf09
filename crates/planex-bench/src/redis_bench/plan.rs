//! The benchmark task: 10 `echo` steps on the bench tier in three levels, and its submission.

use anyhow::Result;
use planex_core::{Plan, Stage, Step, StepId, TaskId};
use planex_store::{NewTask, StepSpec, Store};

/// The one tier of the Redis benchmarks.
pub(crate) const TIER: &str = "bench";
/// Steps per benchmark task.
pub(crate) const STEPS_PER_TASK: usize = 10;

/// The plan the benches start their tasks with. A store keeps the plan and never reads it, so an
/// empty one keeps each task's stored plan as small as the steps allow.
pub(crate) static EMPTY_PLAN: Plan = Plan {
    task: String::new(),
    steps: Vec::new(),
    source: planex_core::PlanSource::Planner,
};

/// The bench plan: 6 roots, 3 steps joining two roots each, 1 step joining those three.
pub(crate) fn plan_steps() -> Vec<StepSpec> {
    let step = |id: u32, deps: &[u32]| {
        let text = if deps.is_empty() {
            format!("input {id}")
        } else {
            deps.iter()
                .map(|d| format!("{{step_{d}_result}}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut args = serde_json::Map::new();
        args.insert("text".into(), serde_json::Value::String(text));
        StepSpec {
            step: Step {
                step_id: StepId(id),
                tool_name: "echo".into(),
                args,
                depends_on: deps.iter().map(|d| StepId(*d)).collect(),
            },
            tier: TIER.into(),
            stage: Stage::Step,
            tolerate_failed_deps: false,
        }
    };
    vec![
        step(1, &[]),
        step(2, &[]),
        step(3, &[]),
        step(4, &[]),
        step(5, &[]),
        step(6, &[]),
        step(7, &[1, 2]),
        step(8, &[3, 4]),
        step(9, &[5, 6]),
        step(10, &[7, 8, 9]),
    ]
}

/// Creates and starts one benchmark task with text `task`.
pub(crate) async fn submit(store: &dyn Store, task: &str) -> Result<TaskId> {
    let task_id = TaskId::new_random();
    store
        .create_task(NewTask {
            task_id: task_id.clone(),
            task: task.to_owned(),
            tenant: None,
            cost_center: None,
            task_type: None,
            end_user: None,
            retry_of: None,
            trace_parent: None,
        })
        .await?;
    store
        .start_task(&task_id, &EMPTY_PLAN, plan_steps(), Vec::new())
        .await?;
    Ok(task_id)
}
