//! Replaying a dead letter ([`Engine::replay`]): a new task that repeats a finished one, reusing
//! the results of its completed plan steps and running the rest again.
//!
//! Key decisions: a task ends exactly once, so a replay never reopens the original; it submits a
//! new task linked to it (`retry_of`) through the client-plan path, so it is checked, estimated
//! and booked like any submission. The plan is the original's plan steps (their arguments and
//! dependencies as accepted); steps that completed are started `complete` with their results
//! (`Store::start_task_reusing`) and neither run nor cost again; every other plan step (the dead
//! step, its skipped dependents, any other failure) and the synthesis step run. Steps are routed
//! by today's rules and tools are checked against today's catalog: a tool removed since is a
//! refusal, as for any client plan. A task a re-plan changed while it ran is refused: its plans
//! were several and no single one can be repeated.

use crate::request::Reuse;
use crate::{Accepted, Engine, EngineError, TaskRequest};
use planex_core::{AnswerOptions, Stage, StepId};
use planex_store::{StepState, StoreError, TaskRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A replay accepted by [`Engine::replay`].
pub struct Replayed {
    /// The new task (recorded, planning its start in the background like [`Engine::accept`]).
    pub accepted: Accepted,
    /// The plan steps started complete with the original's results.
    pub reused: Vec<StepId>,
    /// The steps that run again (the synthesis step included, when the task has one).
    pub rerun: Vec<StepId>,
}

impl Engine {
    /// Submits a new task repeating `record` (a finished task with some step not complete: a
    /// plan step or the synthesis; the caller read it, e.g. to check who may replay it), reusing
    /// its completed plan steps' results; the new task's `retry_of` names it. Its tenant, cost
    /// center, task type and end user are the original's; `request_id` is passed to the model
    /// servers.
    ///
    /// # Errors
    /// `StoreError::WrongStatus` for a task still running, [`EngineError::InvalidRequest`] for
    /// one that never ran, completed every step or was re-planned, and any refusal of submission
    /// (a tool gone, a budget).
    pub async fn replay(
        self: &Arc<Self>,
        record: &TaskRecord,
        request_id: Option<String>,
    ) -> Result<Replayed, EngineError> {
        let original = &record.task_id;
        let request = replay_request(record, request_id)?;
        let reused: Vec<StepId> = request
            .reuse
            .as_ref()
            .map(|r| r.results.keys().copied().collect())
            .unwrap_or_default();
        let rerun = record
            .steps
            .keys()
            .filter(|id| !reused.contains(id))
            .copied()
            .collect();
        let accepted = self.accept(request).await?;
        tracing::info!(task = %accepted.task_id, retry_of = %original, reused = reused.len(),
            "dead letter replayed as a new task");
        Ok(Replayed {
            accepted,
            reused,
            rerun,
        })
    }
}

/// The request that repeats `record`: its plan steps as a client plan, the completed ones reused.
fn replay_request(
    record: &TaskRecord,
    request_id: Option<String>,
) -> Result<TaskRequest, EngineError> {
    let id = &record.task_id;
    if !record.status.is_terminal() {
        return Err(StoreError::WrongStatus {
            task_id: id.clone(),
            status: record.status,
            action: "replay it before it ends (wait for it to finish, then replay)",
        }
        .into());
    }
    if record.plan.is_none() || record.steps.is_empty() {
        return Err(EngineError::InvalidRequest(format!(
            "task {id} never ran a plan ({}), so there is nothing to replay: submit it again",
            record.status
        )));
    }
    if record.steps.values().any(|s| s.superseded) {
        return Err(EngineError::InvalidRequest(format!(
            "task {id} was re-planned while it ran, so it has no single plan to repeat: submit it again"
        )));
    }
    let plan_steps: Vec<_> = record
        .steps
        .values()
        .filter(|s| s.spec.stage == Stage::Step)
        .collect();
    let results: BTreeMap<StepId, serde_json::Value> = plan_steps
        .iter()
        .filter(|s| s.state == StepState::Complete)
        .filter_map(|s| Some((s.spec.step.step_id, s.result.clone()?)))
        .collect();
    let synthesis = record
        .steps
        .values()
        .find(|s| s.spec.stage == Stage::Synthesis);
    let synthesis_done = synthesis.is_none_or(|s| s.state == StepState::Complete);
    if results.len() == plan_steps.len() && synthesis_done {
        return Err(EngineError::InvalidRequest(format!(
            "every step of task {id} completed, so there is nothing to replay; submit the task again to run it anew"
        )));
    }
    let answer = synthesis
        .and_then(|s| s.spec.step.args.get(planex_core::ANSWER_ARG))
        .and_then(|options| serde_json::from_value::<AnswerOptions>(options.clone()).ok())
        .unwrap_or_default();
    let steps: Vec<_> = plan_steps.iter().map(|s| &s.spec.step).collect();
    let plan = serde_json::json!({ "task": record.task, "steps": steps });
    Ok(TaskRequest {
        task: record.task.clone(),
        plan: Some(plan),
        synthesis: Some(synthesis.is_some()),
        tenant: record.tenant.clone(),
        cost_center: record.cost_center.clone(),
        task_type: record.task_type.clone(),
        end_user: record.end_user.clone(),
        request_id,
        answer,
        reuse: Some(Reuse {
            retry_of: id.clone(),
            results,
        }),
        ..TaskRequest::default()
    })
}
