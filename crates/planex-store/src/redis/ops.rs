//! The Redis store's single-shot operations: creating, starting and finishing tasks, lease
//! extension and release (one script each), and the reads (one pipeline each).
//!
//! Key decision: `get_task` reads its keys as one atomic pipeline (`MULTI`/`EXEC`), so a task is
//! never seen half-updated by a completion script; `queue_depth` is a small script (the consumer
//! group's lag and the lease count).

use super::codec;
use super::errors::{corrupt, corrupt_by, unavailable, unavailable_because};
use super::shared::{Core, Retry};
use crate::check::{check_reused, check_steps};
use crate::error::StoreError;
use crate::types::*;
use planex_core::{CallRecord, Plan, StepId, TaskId, dag};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub(super) fn calls_json(calls: &[CallRecord]) -> Result<Vec<String>, StoreError> {
    calls
        .iter()
        .map(|c| serde_json::to_string(c).map_err(|e| corrupt_by("cannot encode a call record", e)))
        .collect()
}

pub(super) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt_by(format!("cannot encode {what}"), e))
}

pub(super) fn csv<I: IntoIterator<Item = T>, T: ToString>(items: I) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Maps a script's `{'nf'}` / `{'wrong', status}` answer to an error.
pub(super) fn script_status(
    task_id: &TaskId,
    reply: &[String],
    action: &'static str,
) -> Result<(), StoreError> {
    match reply.first().map(String::as_str) {
        Some("ok") => Ok(()),
        Some("nf") => Err(StoreError::TaskNotFound(task_id.clone())),
        Some("wrong") => {
            let status = reply.get(1).map(String::as_str).unwrap_or("unknown");
            let status: TaskStatus =
                serde_json::from_value(serde_json::Value::String(status.to_owned()))
                    .map_err(|e| corrupt_by(format!("task {task_id} has status {status:?}"), e))?;
            Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status,
                action,
            })
        }
        other => Err(corrupt(format!(
            "unexpected script reply {other:?} for task {task_id}"
        ))),
    }
}

pub(super) async fn create_task(core: &Core, task: NewTask) -> Result<(), StoreError> {
    let mut invocation = core.invocation(&core.scripts.create);
    invocation.arg(&task.task_id.0).arg(&task.task);
    if let Some(tenant) = &task.tenant {
        invocation.arg("tenant").arg(tenant);
    }
    if let Some(center) = &task.cost_center {
        invocation.arg("cost_center").arg(center);
    }
    if let Some(task_type) = &task.task_type {
        invocation.arg("task_type").arg(task_type);
    }
    if let Some(user) = &task.end_user {
        invocation.arg("end_user").arg(user);
    }
    if let Some(original) = &task.retry_of {
        invocation.arg("retry_of").arg(&original.0);
    }
    if let Some(parent) = &task.trace_parent {
        invocation.arg("traceparent").arg(parent);
    }
    let created: i64 = core
        .invoke(Retry::OnlyIfUnsent, &invocation)
        .await
        .map_err(|e| unavailable("create task", e))?;
    if created == 1 {
        Ok(())
    } else {
        Err(StoreError::TaskExists(task.task_id))
    }
}

pub(super) async fn planning_tasks(
    core: &Core,
    created_by_ms: u64,
    limit: usize,
) -> Result<Vec<TaskId>, StoreError> {
    let mut invocation = core.invocation(&core.scripts.planning);
    invocation.arg(created_by_ms).arg(limit);
    let ids: Vec<String> = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("list planning tasks", e))?;
    Ok(ids.into_iter().map(TaskId).collect())
}

pub(super) async fn start_task(
    core: &Core,
    task_id: &TaskId,
    plan: &Plan,
    steps: Vec<StepSpec>,
    reused: BTreeMap<StepId, serde_json::Value>,
    planner_calls: Vec<CallRecord>,
) -> Result<(), StoreError> {
    check_steps(task_id, &steps)?;
    let reused_count = check_reused(task_id, &steps, &reused)?;
    let dependents = dag::dependents(steps.iter().map(|s| &s.step));
    let mut fields: Vec<String> = Vec::with_capacity(steps.len() * 16);
    let mut roots: Vec<(u32, String)> = Vec::new();
    let finished = now_ms().to_string();
    for spec in &steps {
        let step = &spec.step;
        let id = step.step_id.0;
        let mut put = |name: &str, value: String| {
            fields.push(if name.is_empty() {
                id.to_string()
            } else {
                format!("{id}:{name}")
            });
            fields.push(value);
        };
        put("", to_json("a step spec", spec)?);
        let waits_for = step
            .depends_on
            .iter()
            .filter(|d| !reused.contains_key(d))
            .count();
        let result = reused.get(&step.step_id);
        let root = result.is_none() && waits_for == 0;
        let state = match result {
            Some(_) => "complete",
            None if root => "ready",
            None => "pending",
        };
        put("state", state.into());
        if let Some(result) = result {
            put("result", to_json("a reused step result", result)?);
            put("finished", finished.clone());
        }
        put("tier", spec.tier.clone());
        put("tool", step.tool_name.clone());
        put("pending", waits_for.to_string());
        if !step.depends_on.is_empty() {
            put("deps", csv(step.depends_on.iter().map(|d| d.0)));
        }
        if let Some(next) = dependents.get(&step.step_id) {
            put("next", csv(next.iter().map(|d| d.0)));
        }
        if spec.tolerate_failed_deps {
            put("tol", "1".into());
        }
        if root {
            roots.push((id, spec.tier.clone()));
        }
    }
    if reused_count > 0 {
        // start.lua counts these out of the steps left open.
        fields.push("_:reused".into());
        fields.push(reused_count.to_string());
    }
    let mut ids: Vec<u32> = steps.iter().map(|s| s.step.step_id.0).collect();
    ids.sort_unstable();
    let mut invocation = core.invocation(&core.scripts.start);
    invocation.arg(&task_id.0).arg(to_json("the plan", plan)?);
    // Each call stages under a key of its own, so two racing starts of one task cannot mix
    // their steps: the loser's script finds the task running and deletes its own staging key.
    let nonce = TaskId::new_random().0;
    invocation
        .arg(steps.len())
        .arg(csv(ids))
        .arg(&nonce)
        .arg(roots.len());
    for (id, tier) in &roots {
        invocation.arg(id).arg(tier);
    }
    invocation.arg(calls_json(&planner_calls)?);
    // The step fields go in with a plain HSET to a staging key, which the script renames into
    // place: passing them through the script would copy each one into Lua and back, the largest
    // cost of starting a task. The staging key expires by itself if the script never runs.
    let staged = core.keys.staged(task_id, &nonce);
    let mut stage = redis::pipe();
    stage
        .cmd("DEL")
        .arg(&staged)
        .ignore()
        .cmd("HSET")
        .arg(&staged)
        .arg(&fields)
        .ignore()
        .cmd("EXPIRE")
        .arg(&staged)
        .arg(STAGED_TTL_SECS)
        .ignore();
    // Redis may restart (losing the staging key) between the two calls: the script then says
    // 'nostage' and both are sent again.
    for _ in 0..3 {
        core.query_pipe::<()>(Retry::Idempotent, &stage)
            .await
            .map_err(|e| unavailable("stage a plan's steps", e))?;
        let reply: Vec<String> = core
            .invoke(Retry::OnlyIfUnsent, &invocation)
            .await
            .map_err(|e| unavailable("start task", e))?;
        if reply.first().map(String::as_str) != Some("nostage") {
            return script_status(task_id, &reply, "start it with a plan");
        }
    }
    Err(unavailable_because(format!(
        "could not start task {task_id}: its staged plan vanished three times in a row (is Redis \
         restarting or evicting keys? check its maxmemory-policy)"
    )))
}

/// How long a staged plan waits for its start script before Redis drops it.
const STAGED_TTL_SECS: u64 = 3600;

pub(super) async fn finish_unplanned(
    core: &Core,
    task_id: &TaskId,
    status: TaskStatus,
    reason: String,
    calls: Vec<CallRecord>,
) -> Result<(), StoreError> {
    if !status.is_terminal() {
        let current = get_task(core, task_id)
            .await?
            .ok_or_else(|| StoreError::TaskNotFound(task_id.clone()))?;
        return Err(StoreError::WrongStatus {
            task_id: task_id.clone(),
            status: current.status,
            action: "finish it before planning completed",
        });
    }
    let mut invocation = core.invocation(&core.scripts.finish_unplanned);
    invocation
        .arg(&task_id.0)
        .arg(status.to_string())
        .arg(reason)
        .arg(calls_json(&calls)?);
    let reply: Vec<String> = core
        .invoke(Retry::OnlyIfUnsent, &invocation)
        .await
        .map_err(|e| unavailable("finish task", e))?;
    script_status(task_id, &reply, "finish it before planning completed")
}

pub(super) async fn cancel_task(core: &Core, task_id: &TaskId) -> Result<(), StoreError> {
    let mut invocation = core.invocation(&core.scripts.cancel);
    invocation.arg(&task_id.0).arg(crate::CANCEL_REASON);
    // Resent only if unsent: a repeat would answer `wrong` (already cancelled) for a cancel that worked.
    let reply: Vec<String> = core
        .invoke(Retry::OnlyIfUnsent, &invocation)
        .await
        .map_err(|e| unavailable("cancel task", e))?;
    script_status(task_id, &reply, "cancel it")
}

pub(super) async fn extend_lease(
    core: &Core,
    lease: &StepLease,
    by: Duration,
) -> Result<bool, StoreError> {
    let mut invocation = core.invocation(&core.scripts.extend);
    invocation
        .arg(&lease.spec.tier)
        .arg(&lease.token)
        .arg(by.as_millis().max(1) as u64);
    let held: i64 = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("extend lease", e))?;
    Ok(held == 1)
}

pub(super) async fn release(core: &Core, lease: &StepLease) -> Result<(), StoreError> {
    let mut invocation = core.invocation(&core.scripts.release);
    invocation.arg(&lease.token);
    let released: i64 = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("release lease", e))?;
    if released < 0 {
        return Err(StoreError::TaskNotFound(lease.task_id.clone()));
    }
    Ok(())
}

pub(super) async fn get_task(
    core: &Core,
    task_id: &TaskId,
) -> Result<Option<TaskRecord>, StoreError> {
    let keys = &core.keys;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hgetall(keys.task(task_id))
        .hgetall(keys.steps(task_id))
        .lrange(keys.calls(task_id), 0, -1);
    let (task, steps, calls): (
        HashMap<String, String>,
        HashMap<String, String>,
        Vec<String>,
    ) = core
        .query_pipe(Retry::Idempotent, &pipe)
        .await
        .map_err(|e| unavailable("read task", e))?;
    codec::task_record(task_id, task, steps, calls)
}

/// `Store::task_summary`: the task hash's status and step count and the call records, without
/// the steps hash (whose results can be large).
pub(super) async fn task_summary(
    core: &Core,
    task_id: &TaskId,
) -> Result<Option<TaskSummary>, StoreError> {
    let keys = &core.keys;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("HMGET")
        .arg(keys.task(task_id))
        .arg("status")
        .arg("nsteps")
        .lrange(keys.calls(task_id), 0, -1);
    let ((status, steps), calls): ((Option<String>, Option<String>), Vec<String>) = core
        .query_pipe(Retry::Idempotent, &pipe)
        .await
        .map_err(|e| unavailable("read task summary", e))?;
    codec::task_summary(task_id, status, steps, calls)
}

pub(super) async fn queue_depth(core: &Core, tier: &str) -> Result<QueueDepth, StoreError> {
    let mut invocation = core.invocation(&core.scripts.depth);
    invocation.arg(tier);
    let (ready, in_flight): (u64, u64) = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("read queue depth", e))?;
    Ok(QueueDepth { ready, in_flight })
}

/// Deletes a stopped worker's consumer; false when it was kept (it still holds steps).
pub(super) async fn retire_worker(
    core: &Core,
    tier: &str,
    worker: &str,
) -> Result<bool, StoreError> {
    let mut invocation = core.invocation(&core.scripts.retire);
    invocation.arg(tier).arg(worker);
    let deleted: i64 = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("retire worker", e))?;
    Ok(deleted == 1)
}

pub(super) async fn retire_idle_workers(
    core: &Core,
    tier: &str,
    idle: Duration,
) -> Result<usize, StoreError> {
    let mut invocation = core.invocation(&core.scripts.prune);
    invocation
        .arg(tier)
        .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX));
    let pruned: i64 = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("remove idle workers", e))?;
    Ok(usize::try_from(pruned).unwrap_or(0))
}
