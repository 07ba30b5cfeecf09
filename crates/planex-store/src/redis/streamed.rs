//! Streamed plans on Redis: the Rust side of `lua/streamed.lua` (open a task's plan, add steps,
//! supersede steps for a re-plan, close the plan).

use super::errors::{corrupt, unavailable};
use super::ops::{calls_json, csv, script_status, to_json};
use super::shared::{Core, Retry};
use crate::check::check_added_steps;
use crate::error::StoreError;
use crate::types::StepSpec;
use planex_core::{CallRecord, Plan, StepId, TaskId};

/// Runs one mode of the script (its arguments after the task id in `args`) and maps the reply.
async fn run(
    core: &Core,
    task_id: &TaskId,
    mode: &str,
    args: Vec<String>,
    action: &'static str,
) -> Result<(), StoreError> {
    // The call's own id makes it safe to resend (`lua/streamed.lua`: a call already applied
    // answers 'ok'), so a reply lost in a Redis restart does not end the task's planning.
    let op = uuid::Uuid::new_v4().simple();
    let mut invocation = core.invocation(&core.scripts.streamed);
    invocation
        .arg(format!("{mode}|{op}"))
        .arg(&task_id.0)
        .arg(args);
    let reply: Vec<String> = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable(action, e))?;
    let invalid = |detail: String| StoreError::InvalidSteps {
        task_id: task_id.clone(),
        detail,
    };
    match reply.first().map(String::as_str) {
        Some("closed") => Err(StoreError::WrongStatus {
            task_id: task_id.clone(),
            status: crate::TaskStatus::Running,
            action,
        }),
        Some("dup") => Err(invalid(format!(
            "step {} is a step of the task already",
            reply.get(1).map(String::as_str).unwrap_or("?")
        ))),
        Some("nodep") => Err(invalid(format!(
            "step {} depends on step {}, which is not a step of the task",
            reply.get(1).map(String::as_str).unwrap_or("?"),
            reply.get(2).map(String::as_str).unwrap_or("?")
        ))),
        _ => script_status(task_id, &reply, action),
    }
}

/// `Store::open_plan`.
pub(super) async fn open_plan(core: &Core, task_id: &TaskId) -> Result<(), StoreError> {
    run(core, task_id, "open", Vec::new(), "open its plan").await
}

/// `Store::add_steps`: checked here first (so a bad batch costs no round trip), then again by
/// the script against what the task holds.
pub(super) async fn add_steps(
    core: &Core,
    task_id: &TaskId,
    steps: Vec<StepSpec>,
) -> Result<(), StoreError> {
    // Ids outside the batch count as known here: the script checks them against the task.
    let batch: std::collections::BTreeSet<StepId> = steps.iter().map(|s| s.step.step_id).collect();
    check_added_steps(task_id, &steps, |id| !batch.contains(&id))?;
    let mut args = Vec::with_capacity(steps.len() * 6);
    for spec in &steps {
        let step = &spec.step;
        args.push(step.step_id.0.to_string());
        args.push(to_json("a step spec", spec)?);
        args.push(spec.tier.clone());
        args.push(step.tool_name.clone());
        args.push(csv(step.depends_on.iter().map(|d| d.0)));
        args.push(if spec.tolerate_failed_deps { "1" } else { "" }.to_owned());
    }
    run(
        core,
        task_id,
        "add",
        args,
        "add steps to its plan (it is not open)",
    )
    .await
}

/// `Store::supersede_steps`.
pub(super) async fn supersede_steps(
    core: &Core,
    task_id: &TaskId,
    round: u32,
    steps: &[StepId],
    reason: &str,
) -> Result<(), StoreError> {
    let args = vec![
        round.to_string(),
        reason.to_owned(),
        csv(steps.iter().map(|s| s.0)),
    ];
    run(
        core,
        task_id,
        "supersede",
        args,
        "re-plan it (its plan is not open)",
    )
    .await
}

/// `Store::close_plan`.
pub(super) async fn close_plan(
    core: &Core,
    task_id: &TaskId,
    plan: Option<&Plan>,
    calls: Vec<CallRecord>,
    cut_short: Option<String>,
) -> Result<(), StoreError> {
    let mut args = vec![
        match plan {
            Some(plan) => to_json("the plan", plan)?,
            None => String::new(),
        },
        cut_short.unwrap_or_default(),
    ];
    args.extend(calls_json(&calls)?);
    run(core, task_id, "close", args, "close its plan")
        .await
        .map_err(|e| match e {
            StoreError::InvalidSteps { .. } => corrupt(format!(
                "unexpected reply closing the plan of task {task_id}"
            )),
            other => other,
        })
}
