//! A finished task as the agent endpoint answers it: the answer of a task that succeeded (or was
//! partial, with its missing steps), or an OpenAI-shaped error saying why there is none.
//!
//! The mapping (docs/ARCHITECTURE.md §7, "Agent endpoint"): a plan refused by a budget → 429 with
//! `Retry-After`; the planner or every step failed → 502; planning or the task passed its time
//! limit → 504; no healthy endpoint for a tier → 503; a cancelled task → 409; a partial task → 200
//! with `planex.failed_steps` (or 502 when `[server] agent_partial = "error"`). Messages never name
//! internal endpoints: the full cause is logged with the task id.

use crate::error::ApiError;
use crate::redact;
use planex_core::Stage;
use planex_store::{StepState, TaskRecord, TaskStatus};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a client is asked to wait before it retries a task refused for lack of budget or
/// endpoints.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The answer of a task that produced one.
#[derive(Debug)]
pub struct Answer {
    /// The final answer's text.
    pub content: String,
    /// `stop`, or `length` when the answer was cut at `max_tokens`.
    pub finish_reason: &'static str,
    /// The steps that did not complete (a partial task), for `planex.failed_steps`.
    pub failed_steps: Vec<Value>,
}

/// What the client gets for a finished task: its answer, or the error that replaces it.
pub fn answer(
    record: &TaskRecord,
    max_tokens: Option<u32>,
    partial_is_error: bool,
) -> Result<Answer, ApiError> {
    let failed_steps = failed_steps(record);
    let content = record.answer();
    match (record.status, content) {
        (TaskStatus::Complete, Some(content)) => Ok(Answer {
            finish_reason: finish_reason(record, max_tokens),
            content,
            failed_steps,
        }),
        (TaskStatus::Partial, Some(content)) if !partial_is_error => Ok(Answer {
            finish_reason: finish_reason(record, max_tokens),
            content,
            failed_steps,
        }),
        (TaskStatus::Partial, Some(_)) => Err(error_for(
            record,
            ApiError::upstream(format!(
                "task {} is partial: {} of its steps did not complete, and this server answers \
                 partial tasks with an error ([server] agent_partial = \"error\")",
                record.task_id,
                failed_steps.len()
            ))
            .with_code("task_partial"),
            failed_steps,
        )),
        _ => Err(error_for(record, failure(record), failed_steps)),
    }
}

/// Adds the task's id, status and missing steps to an error's details, and logs the full cause.
fn error_for(record: &TaskRecord, error: ApiError, failed_steps: Vec<Value>) -> ApiError {
    tracing::warn!(task = %record.task_id, status = %record.status,
        cause = record.error.as_deref().unwrap_or(""), "the agent endpoint answers an error for a task that did not succeed");
    error.with_details(json!({
        "task_id": record.task_id,
        "status": record.status,
        "failed_steps": failed_steps,
    }))
}

/// Why a task has no answer, as the error the client gets.
fn failure(record: &TaskRecord) -> ApiError {
    let id = &record.task_id;
    let cause = redact::urls(record.error.as_deref().unwrap_or("no reason was recorded"));
    let step_errors: Vec<&str> = record
        .steps
        .values()
        .filter(|s| s.state == StepState::Failed)
        .filter_map(|s| s.error.as_deref())
        .collect();
    let all_match =
        |needle: &str| !step_errors.is_empty() && step_errors.iter().all(|e| e.contains(needle));
    let planned = record.plan.is_some();
    match record.status {
        TaskStatus::Rejected => ApiError::over_budget(format!("task {id} was refused: {cause}"))
            .with_code("budget_exceeded")
            .with_retry_after(RETRY_AFTER),
        TaskStatus::Cancelled => {
            ApiError::conflict(format!("task {id} was cancelled before it finished"))
                .with_code("task_cancelled")
        }
        TaskStatus::Planning | TaskStatus::Running => ApiError::timeout(format!(
            "task {id} did not finish within the wait limit ([server] wait_timeout_secs); it runs \
             on: read it with GET /v1/tasks/{id}"
        ))
        .with_code("timeout"),
        _ if cause.contains("budget_exhausted") => {
            ApiError::over_budget(format!("task {id} ran out of budget: {cause}"))
                .with_code("budget_exhausted")
                .with_retry_after(RETRY_AFTER)
        }
        // These match the texts of `LlmError::NoUsableEndpoint`, `LlmError::Timeout` and the
        // planning deadline (planex-llm, planex-engine): the record keeps only the text.
        _ if cause.contains("no usable endpoint") || all_match("no usable endpoint") => {
            ApiError::unavailable(format!(
                "task {id} failed: a tier has no healthy endpoint: {cause}"
            ))
            .with_code("tier_unavailable")
            .with_retry_after(RETRY_AFTER)
        }
        _ if cause.contains("planning did not finish")
            || all_match("no complete answer within") =>
        {
            ApiError::timeout(format!("task {id} timed out: {cause}")).with_code("timeout")
        }
        _ if !planned => ApiError::upstream(format!("the planner failed for task {id}: {cause}"))
            .with_code("planner_failed"),
        _ => ApiError::upstream(format!("task {id} produced no answer: {cause}"))
            .with_code("steps_failed"),
    }
}

/// `length` when the synthesis call produced `max_tokens` tokens (it was cut), else `stop`.
fn finish_reason(record: &TaskRecord, max_tokens: Option<u32>) -> &'static str {
    let Some(limit) = max_tokens else {
        return "stop";
    };
    let cut = record
        .calls
        .iter()
        .filter(|c| c.stage == Stage::Synthesis && c.mark.is_none())
        .any(|c| c.usage.completion_tokens >= u64::from(limit));
    if cut { "length" } else { "stop" }
}

/// The steps of a task that did not complete, with their reasons (no internal URLs).
pub fn failed_steps(record: &TaskRecord) -> Vec<Value> {
    record
        .problems()
        .into_iter()
        .map(|(step_id, state, reason)| {
            json!({
                "step_id": step_id,
                "tool_name": record.steps.get(&step_id).map(|s| s.spec.step.tool_name.clone()),
                "state": state,
                "error": redact::urls(&reason),
            })
        })
        .collect()
}
