//! The joiner (docs/ARCHITECTURE.md §4): after a task's steps have run, an optional decision call
//! on the planner tier, as LLMCompiler's joiner: *finish* with what the steps produced, or
//! *replan*: new steps that may use the completed steps' results by id. At most
//! `[engine] max_replans` rounds; each decision call is billed to stage `replan`.
//!
//! Key decisions:
//! - Completed results are reused, never recomputed: new steps depend on them like on any step.
//! - A replan routes around what failed: the failed and skipped steps are superseded (they keep
//!   their errors in the record, but no longer make the task `partial`), so a task whose failed
//!   tool was replaced by one that worked ends `complete`.
//! - The joiner's answer is checked like a plan (tools, args, dependencies only on completed or
//!   earlier new steps, placeholders, the step cap); an answer that is not usable, or a decision
//!   call that fails, finishes the task with what it has, never fails it.
//! - The rounds end by the planning deadline, like planning itself: the plan is then closed and
//!   the task finishes as it is, so orphan recovery never closes the plan of a live replica.

use crate::planner::plan_call_record;
use crate::stream_state::Streaming;
use crate::{Engine, EngineError};
use futures::StreamExt;
use planex_core::{CallRecord, Plan, PlanBuilder, PlanLimits, Stage, StepId, clip_chars};
use planex_llm::{ChatMessage, ChatModel, ChatRequest};
use planex_store::{EventKind, StepState, TaskRecord};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The name of the joiner's structured-output schema (what the simulator answers as a joiner).
pub const JOIN_SCHEMA_NAME: &str = "join";

/// Most characters of one step's result or error shown to the joiner.
const SHOWN_CHARS: usize = 1_500;

/// What the joiner answered.
#[derive(Debug, serde::Deserialize)]
struct Decision {
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    steps: Vec<Value>,
}

impl Engine {
    /// Runs the joiner's rounds over the task's running plan `plan` (its steps as the task holds
    /// them), adding the steps of each replan; `plan` ends as the steps that count. True when a
    /// round re-planned; `Err` when the store failed.
    pub(crate) async fn join(
        &self,
        s: &mut Streaming<'_>,
        planner: &dyn ChatModel,
        plan: &mut Plan,
        calls: &mut Vec<CallRecord>,
    ) -> Result<bool, EngineError> {
        let rounds = self.settings.planner.max_replans;
        let mut replanned = false;
        for round in 1..=rounds {
            let Some(record) = self.settled(s).await? else {
                return Ok(replanned);
            };
            let request = join_request(s, plan, &record, round, rounds);
            let decided = tokio::time::timeout_at(s.deadline, planner.chat(&request, &s.p.ctx));
            let outcome = match decided.await {
                Ok(Ok(outcome)) => outcome,
                Err(_) => {
                    tracing::warn!(
                        round,
                        "the joiner's decision did not come within the planning deadline: the task finishes with what its steps produced"
                    );
                    return Ok(replanned);
                }
                Ok(Err(failure)) => {
                    tracing::warn!(round, error = %planex_core::cause::ErrorChain(&failure),
                        "the joiner's decision call failed: the task finishes with what its steps produced");
                    return Ok(replanned);
                }
            };
            calls.push(plan_call_record(planner, &outcome, Stage::Replan));
            let decision = match parse_decision(&outcome.content) {
                Ok(decision) if decision.decision == "replan" && !decision.steps.is_empty() => {
                    decision
                }
                Ok(_) => return Ok(replanned),
                Err(error) => {
                    tracing::warn!(round, %error, "the joiner's answer is not a decision: the task finishes");
                    return Ok(replanned);
                }
            };
            if !self.replan(s, plan, &record, round, decision).await? {
                return Ok(replanned);
            }
            replanned = true;
        }
        Ok(replanned)
    }

    /// Checks and adds a replan's steps, superseding the steps it routes around. False when the
    /// new steps are not usable (the task then finishes with what it has).
    async fn replan(
        &self,
        s: &mut Streaming<'_>,
        plan: &mut Plan,
        record: &TaskRecord,
        round: u32,
        decision: Decision,
    ) -> Result<bool, EngineError> {
        let completed: BTreeSet<StepId> = record
            .steps
            .values()
            .filter(|step| step.state == StepState::Complete && !step.superseded)
            .map(|step| step.spec.step.step_id)
            .collect();
        let failed: Vec<StepId> = plan
            .steps
            .iter()
            .map(|step| step.step_id)
            .filter(|id| !completed.contains(id))
            .collect();
        let limits = PlanLimits {
            max_steps: plan.steps.len() + s.p.max_steps,
        };
        let mut builder = PlanBuilder::new(s.p.task.clone(), &s.p.catalog, limits);
        for step in plan
            .steps
            .iter()
            .filter(|step| completed.contains(&step.step_id))
        {
            let value = serde_json::to_value(step).unwrap_or_default();
            if builder.push(value).is_err() {
                return Ok(false);
            }
        }
        let next = s.next_step_id();
        let kept = builder.len();
        let mut new_steps = Vec::new();
        for value in decision.steps.into_iter().take(s.p.max_steps) {
            match builder.push(value) {
                Ok(step) if step.step_id.0 >= next => new_steps.push(step.clone()),
                Ok(step) => {
                    tracing::warn!(round, step = %step.step_id, next, "the joiner reused a step id: its replan is not used");
                    return Ok(false);
                }
                Err(error) => {
                    tracing::warn!(round, %error, "the joiner's new steps are invalid: its replan is not used");
                    return Ok(false);
                }
            }
        }
        let reason = match decision.reason.trim() {
            "" => format!("the joiner re-planned (round {round})"),
            why => format!(
                "the joiner re-planned (round {round}): {}",
                clip_chars(why, 300)
            ),
        };
        self.store
            .supersede_steps(&s.p.task_id, s.next_replan_round(), &failed, &reason)
            .await?;
        s.start_join_round(builder, kept);
        let mut added = Vec::new();
        for step in new_steps {
            if let Err(error) = s.add_joined(&step).await {
                tracing::warn!(round, %error, "a replan's step could not be added");
                break;
            }
            added.push(step);
        }
        plan.steps.retain(|step| completed.contains(&step.step_id));
        plan.steps.extend(added);
        Ok(true)
    }

    /// Waits (on the task's events) until every step in the task is terminal; the task's record
    /// then, or `None` when the task ended meanwhile (cancelled) or the planning deadline passed
    /// first (the joiner then lets the task finish as it is).
    async fn settled(&self, s: &Streaming<'_>) -> Result<Option<TaskRecord>, EngineError> {
        let mut open: BTreeSet<StepId> = s.step_ids().into_iter().collect();
        let mut events = self.store.events(&s.p.task_id).await?;
        while !open.is_empty() {
            let next = tokio::time::timeout_at(s.deadline, events.next()).await;
            let Ok(next) = next else {
                tracing::warn!(task = %s.p.task_id, "the plan's steps did not finish within the planning deadline ([engine] planning_deadline_secs): the joiner lets the task finish as it is");
                return Ok(None);
            };
            let Some(event) = next else {
                return Ok(None);
            };
            match event.kind {
                EventKind::StepCompleted { step_id }
                | EventKind::StepFailed { step_id, .. }
                | EventKind::StepSkipped { step_id, .. } => {
                    open.remove(&step_id);
                }
                EventKind::TaskCompleted { .. } => return Ok(None),
                _ => {}
            }
        }
        Ok(self.store.get_task(&s.p.task_id).await?)
    }
}

/// The joiner's request: its instructions, the task and what every step of the plan produced,
/// answered in the plan format with a decision (`JOIN_SCHEMA_NAME`).
fn join_request(
    s: &Streaming<'_>,
    plan: &Plan,
    record: &TaskRecord,
    round: u32,
    rounds: u32,
) -> ChatRequest {
    let next = s.next_step_id();
    let max_new = s.p.max_steps;
    let system = format!(
        "You are the joiner of an agent. A plan ran to answer the user's task; each step's result or error is below. \
         If the results are enough to answer the task, answer {{\"decision\": \"finish\"}}. Otherwise answer \
         {{\"decision\": \"replan\", \"reason\": \"...\", \"steps\": [...]}} with at most {max_new} new steps in the plan \
         format, numbered from {next}. A new step may depend on completed steps by their step_id and use their results \
         with {{step_N_result}}; never repeat a completed step. A failed step's tool failed: use another tool or other \
         arguments. This is round {round} of {rounds}.\nTools:\n{}",
        s.p.catalog.prompt_listing()
    );
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .filter_map(|step| record.steps.get(&step.step_id))
        .map(|step| {
            let mut shown = json!({
                "step_id": step.spec.step.step_id,
                "tool_name": step.spec.step.tool_name,
                "args": step.spec.step.args,
                "depends_on": step.spec.step.depends_on,
                "state": step.state,
            });
            if let Some(result) = &step.result {
                shown["result"] = json!(clip_chars(&planex_core::value_text(result), SHOWN_CHARS));
            }
            if let Some(error) = &step.error {
                shown["error"] = json!(clip_chars(error, SHOWN_CHARS));
            }
            shown
        })
        .collect();
    let input = json!({
        "task": s.p.task,
        "round": round,
        "max_rounds": rounds,
        "next_step_id": next,
        "steps": steps,
    });
    let mut schema = s.p.catalog.plan_schema(max_new);
    if let Some(object) = schema.as_object_mut() {
        if let Some(props) = object.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert(
                "decision".into(),
                json!({"type": "string", "enum": ["finish", "replan"]}),
            );
            props.insert("reason".into(), json!({"type": "string"}));
        }
        object.insert("required".into(), json!(["decision"]));
    }
    let settings = &s.engine().settings.planner;
    ChatRequest::new(vec![
        ChatMessage::system(system),
        ChatMessage::user(input.to_string()),
    ])
    .with_max_tokens(settings.max_tokens)
    .with_temperature(settings.temperature)
    .with_response_format(json!({
        "type": "json_schema",
        "json_schema": {"name": JOIN_SCHEMA_NAME, "strict": false, "schema": schema},
    }))
}

/// Reads the joiner's answer (a JSON object, possibly fenced).
fn parse_decision(text: &str) -> Result<Decision, serde_json::Error> {
    serde_json::from_str(planex_core::strip_fence(text))
}
