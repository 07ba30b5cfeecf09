//! Task and step fixtures for tests against any `Store`: step specs, tasks created or started in
//! one call, step outcomes and priced call records.
#![allow(clippy::expect_used)] // Test fixtures: a store that refuses a fresh task fails the test.

use planex_core::{CallRecord, Decimal, Plan, Stage, Step, StepId, TaskId, Usage};
use planex_store::{NewTask, StepOutcome, StepSpec, Store};

/// The plan tasks are started with in tests: a store keeps the plan it is given and never reads
/// it, so its content does not matter.
pub static ANY_PLAN: Plan = Plan {
    task: String::new(),
    steps: Vec::new(),
    source: planex_core::PlanSource::Planner,
};

/// Step `id` running the tool `tool` on `tier`, after the steps `deps`, with no arguments.
pub fn step_spec(id: u32, deps: &[u32], tier: &str) -> StepSpec {
    StepSpec {
        step: Step {
            step_id: StepId(id),
            tool_name: "tool".into(),
            args: serde_json::Map::new(),
            depends_on: deps.iter().map(|d| StepId(*d)).collect(),
        },
        tier: tier.into(),
        stage: Stage::Step,
        tolerate_failed_deps: false,
    }
}

/// One model call of `stage` on tier `t`: `prompt_tokens` prompt tokens and one completion
/// token, costing exactly `prompt_tokens` dollars (so sums are easy to check).
pub fn call_record(stage: Stage, prompt_tokens: u64) -> CallRecord {
    CallRecord {
        stage,
        tier: "t".into(),
        model: "m".into(),
        tool: None,
        step_id: None,
        usage: Usage {
            prompt_tokens,
            completion_tokens: 1,
            cached_tokens: 0,
        },
        cost_usd: Decimal::from(prompt_tokens),
        mark: None,
        round: None,
        latency_ms: None,
        response_id: None,
    }
}

/// A new task `task_id` with the text `t` and nothing else set (change fields with `..`).
pub fn new_task(task_id: &TaskId) -> NewTask {
    NewTask {
        task_id: task_id.clone(),
        task: "t".into(),
        tenant: None,
        cost_center: None,
        task_type: None,
        end_user: None,
        retry_of: None,
        trace_parent: None,
    }
}

/// Creates a task (in `planning`) with the given id. Panics when the store refuses it.
pub async fn planning_task(store: &dyn Store, id: &str) -> TaskId {
    let task_id = TaskId::from(id);
    store
        .create_task(new_task(&task_id))
        .await
        .expect("the store creates a fresh task");
    task_id
}

/// Creates a task (in `planning`) of `tenant` with a random id. Panics when the store refuses it.
pub async fn tenant_task(store: &dyn Store, tenant: Option<&str>) -> TaskId {
    let task_id = TaskId::new_random();
    store
        .create_task(NewTask {
            tenant: tenant.map(str::to_owned),
            ..new_task(&task_id)
        })
        .await
        .expect("the store creates a fresh task");
    task_id
}

/// Creates a task with a random id and starts it with `steps` (the planner's call, 10 prompt
/// tokens, is recorded). Panics when the store refuses it.
pub async fn running_task(store: &dyn Store, steps: Vec<StepSpec>) -> TaskId {
    let task_id = planning_task(store, &TaskId::new_random().0).await;
    store
        .start_task(
            &task_id,
            &ANY_PLAN,
            steps,
            vec![call_record(Stage::Plan, 10)],
        )
        .await
        .expect("the store starts a fresh task");
    task_id
}

/// A step that succeeded at its first attempt with the JSON string `result`, without model calls.
pub fn succeeded(result: &str) -> StepOutcome {
    StepOutcome::Succeeded {
        result: serde_json::json!(result),
        attempts: 1,
        calls: Vec::new(),
    }
}
