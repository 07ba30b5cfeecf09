//! The records a store keeps and the messages it exchanges with workers and watchers.
//!
//! These are plain serde types so that every backend (memory, Redis) stores and returns the same
//! shapes, and the API can serialise them unchanged.

use planex_core::{CallRecord, CostBreakdown, Stage, Step, StepId, TaskId, dag, value_text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (store timestamps).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Lifecycle of a task (docs/ARCHITECTURE.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for (or running) the planner call.
    Planning,
    /// Steps are being executed.
    Running,
    /// Every step completed.
    Complete,
    /// Some steps failed or were skipped; the rest completed.
    Partial,
    /// Planning failed, or no step completed.
    Failed,
    /// Refused before execution (e.g. over budget).
    Rejected,
    /// Stopped by `POST /v1/tasks/{id}/cancel`: steps not started were skipped.
    Cancelled,
}

impl TaskStatus {
    /// True once the task will not change any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskStatus::Planning | TaskStatus::Running)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskStatus::Planning => "planning",
            TaskStatus::Running => "running",
            TaskStatus::Complete => "complete",
            TaskStatus::Partial => "partial",
            TaskStatus::Failed => "failed",
            TaskStatus::Rejected => "rejected",
            TaskStatus::Cancelled => "cancelled",
        })
    }
}

/// Lifecycle of a step (docs/ARCHITECTURE.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for dependencies.
    Pending,
    /// In its tier's ready queue.
    Ready,
    /// Leased by a worker.
    Running,
    /// Finished with a result.
    Complete,
    /// Finished with an error (and sent to the dead-letter queue).
    Failed,
    /// Not run because a dependency failed or was skipped, or its task was cancelled.
    Skipped,
}

impl StepState {
    /// True once the step will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Complete | StepState::Failed | StepState::Skipped
        )
    }
}

/// What a worker needs to run a step, fixed when the plan is accepted: the plan's step (or the
/// synthesis step) and where and how the store schedules it.
///
/// Stored as JSON (the Redis store keeps one string per step): `step`'s fields are flattened, so
/// the shape is `{step_id, tool_name, args, depends_on, tier, stage, tolerate_failed_deps}`. Specs
/// of tasks started by earlier versions are read back in this shape, so it must not change (a
/// test pins it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// The step: id, tool, arguments (possibly with `{step_N_result}` placeholders) and the steps
    /// whose results it needs. The synthesis step uses a reserved tool name.
    #[serde(flatten)]
    pub step: Step,
    /// The tier whose ready queue the step goes to.
    pub tier: String,
    /// `Step` for plan steps, `Synthesis` for the final synthesis step.
    pub stage: Stage,
    /// Run even when some dependencies failed or were skipped (the synthesis step: it summarises
    /// whatever was produced). Otherwise a failed dependency skips this step.
    #[serde(default)]
    pub tolerate_failed_deps: bool,
}

/// A step's stored state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// What the step is.
    pub spec: StepSpec,
    /// Where it is in its lifecycle.
    pub state: StepState,
    /// Model/tool call attempts made by the worker that completed it (retries included).
    pub attempts: u32,
    /// How many times the step was handed to a worker (redeliveries after lost leases included).
    pub deliveries: u32,
    /// The result, when complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The worker that last took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// When a worker first took it (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// When it reached a terminal state (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Set by a re-plan ([`crate::Store::supersede_steps`]): the step belongs to a plan that was
    /// discarded or routed around, so it no longer counts toward the task's status or answer. Its
    /// state, result and calls stay as they were (what it cost is still in the task's cost).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub superseded: bool,
}

impl StepRecord {
    /// A new step record, pending.
    pub fn new(spec: StepSpec) -> Self {
        StepRecord {
            spec,
            state: StepState::Pending,
            attempts: 0,
            deliveries: 0,
            result: None,
            error: None,
            worker: None,
            started_at_ms: None,
            finished_at_ms: None,
            superseded: false,
        }
    }
}

/// What the caller knows about a task when submitting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// The id to store it under.
    pub task_id: TaskId,
    /// The user's task text.
    pub task: String,
    /// Tenant that owns the task (API keys), if any.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Cost center the task's spend is attributed to, if any.
    #[serde(default)]
    pub cost_center: Option<String>,
    /// Task type for drift statistics (`default` when absent).
    #[serde(default)]
    pub task_type: Option<String>,
    /// The end user the task was run for (OpenAI `user`), for attribution.
    #[serde(default)]
    pub end_user: Option<String>,
    /// The task this one replays (a dead letter's replay, docs/ARCHITECTURE.md §4), if any.
    #[serde(default)]
    pub retry_of: Option<TaskId>,
    /// The W3C `traceparent` of the span that admitted the task, when traces are exported: its
    /// steps' leases carry it, so the workers that run them join the task's trace.
    #[serde(default)]
    pub trace_parent: Option<String>,
}

/// What recording a finished task's metrics needs: its status, step count and cost, without the
/// step results (see [`crate::Store::task_summary`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    /// The task's status.
    pub status: TaskStatus,
    /// How many steps its plan has (0 before planning).
    pub steps: usize,
    /// Its cost, from its call records.
    pub cost: CostBreakdown,
}

/// Everything a store knows about a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Its id.
    pub task_id: TaskId,
    /// The user's task text.
    pub task: String,
    /// Lifecycle state.
    pub status: TaskStatus,
    /// Owning tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Cost center.
    #[serde(default)]
    pub cost_center: Option<String>,
    /// Task type (drift statistics), when one was named.
    #[serde(default)]
    pub task_type: Option<String>,
    /// The end user the task was run for (OpenAI `user`), when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// The task this one replays (a dead letter's replay), when it is a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<TaskId>,
    /// The W3C `traceparent` the task was admitted under, when traces are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
    /// The accepted plan as JSON, once planned.
    #[serde(default)]
    pub plan: Option<serde_json::Value>,
    /// Steps by id (plan steps and the synthesis step).
    pub steps: BTreeMap<StepId, StepRecord>,
    /// Every priced model call made for this task.
    pub calls: Vec<CallRecord>,
    /// Why the task failed, was rejected, or is partial.
    #[serde(default)]
    pub error: Option<String>,
    /// Creation time (ms since epoch).
    pub created_at_ms: u64,
    /// Time it reached a terminal status (ms since epoch).
    #[serde(default)]
    pub finished_at_ms: Option<u64>,
}

impl TaskRecord {
    /// A new task in `planning`.
    pub fn new(task: NewTask) -> Self {
        TaskRecord {
            task_id: task.task_id,
            task: task.task,
            status: TaskStatus::Planning,
            tenant: task.tenant,
            cost_center: task.cost_center,
            task_type: task.task_type,
            end_user: task.end_user,
            retry_of: task.retry_of,
            trace_parent: task.trace_parent,
            plan: None,
            steps: BTreeMap::new(),
            calls: Vec::new(),
            error: None,
            created_at_ms: now_ms(),
            finished_at_ms: None,
        }
    }

    /// The task's cost, derived from its call records.
    pub fn cost(&self) -> CostBreakdown {
        CostBreakdown::from_records(&self.calls)
    }

    /// The final answer: the synthesis step's result when it completed, else the results of the
    /// plan steps nothing depends on (the synthesis step depends on every plan step, so this
    /// fallback answers only when there is no synthesis step), in step order.
    pub fn answer(&self) -> Option<String> {
        let synthesis = self
            .steps
            .values()
            .find(|s| s.spec.stage == Stage::Synthesis);
        if let Some(result) = synthesis.and_then(|s| s.result.as_ref()) {
            return Some(value_text(result));
        }
        let counted = self.steps.values().filter(|s| !s.superseded);
        let parts: Vec<String> = dag::sinks(counted.map(|s| &s.spec.step))
            .iter()
            .filter_map(|id| self.steps.get(id))
            .filter(|s| s.spec.stage == Stage::Step)
            .filter_map(|s| s.result.as_ref().map(value_text))
            .collect();
        if parts.is_empty() {
            None
        } else {
            Some(parts.join("\n\n"))
        }
    }

    /// Steps that did not complete, with their state and reason (for `partial` results); steps
    /// a re-plan superseded are not among them.
    pub fn problems(&self) -> Vec<(StepId, StepState, String)> {
        self.steps
            .values()
            .filter(|s| !s.superseded && matches!(s.state, StepState::Failed | StepState::Skipped))
            .map(|s| {
                (
                    s.spec.step.step_id,
                    s.state,
                    s.error.clone().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// A step handed to a worker. The worker must `complete` (or `release`) it before the lease expires,
/// or the step is redelivered to another worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLease {
    /// The task.
    pub task_id: TaskId,
    /// The task's text (for prompts that need context).
    pub task_text: String,
    /// What to run.
    pub spec: StepSpec,
    /// Results of the step's completed dependencies, for placeholder substitution.
    pub dep_results: BTreeMap<StepId, serde_json::Value>,
    /// Identifies this delivery; completions carry it.
    pub token: String,
    /// 1 for the first delivery, 2 after one lost lease, …
    pub delivery: u32,
    /// An earlier claim of this step ran and recorded no outcome (its lease was lost, or it was
    /// released at shutdown): what it spent may be left in the task's budget reservation.
    pub resumed: bool,
    /// The task's W3C `traceparent` ([`NewTask::trace_parent`]): the step's span is its child.
    #[serde(default)]
    pub trace_parent: Option<String>,
}

/// What a worker reports for a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step produced a result.
    Succeeded {
        /// The tool's result (text as a JSON string, or structured JSON).
        result: serde_json::Value,
        /// Attempts it took (retries and escalation included).
        attempts: u32,
        /// Priced model calls made.
        calls: Vec<CallRecord>,
    },
    /// The step failed for good (retries and escalation exhausted, or a non-retryable error).
    Failed {
        /// What went wrong, for people.
        error: String,
        /// Attempts made.
        attempts: u32,
        /// Priced model calls made (failed calls may still have used tokens).
        calls: Vec<CallRecord>,
        /// What each attempt before the last one failed with, in order (retries, then the
        /// escalation's): the dead letter lists them.
        #[serde(default)]
        attempt_errors: Vec<String>,
    },
}

/// What a completion changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completion {
    /// The outcome was recorded.
    Applied {
        /// Dependents that became ready and were enqueued.
        newly_ready: Vec<StepId>,
        /// Dependents skipped because this step failed.
        skipped: Vec<StepId>,
        /// The task's final status, when this completion finished it.
        task_finished: Option<TaskStatus>,
    },
    /// The step was already terminal: a late duplicate delivery. Nothing changed.
    Duplicate,
}

/// Steps waiting and running on one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Steps in the ready queue.
    pub ready: u64,
    /// Steps leased by workers.
    pub in_flight: u64,
}

/// A progress event of one task. `seq` counts from 1 per task, with no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// Position in the task's event history.
    pub seq: u64,
    /// When it happened (ms since epoch).
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The plan was accepted.
    Planned {
        /// Steps in the plan (synthesis included).
        steps: usize,
    },
    /// A step of a plan that is still being written (a streamed plan, or a re-plan's new step)
    /// was accepted into the running task. A step that can run at once is enqueued with it.
    StepPlanned {
        /// The step.
        step_id: StepId,
        /// Its tool.
        tool_name: String,
        /// Its tier.
        tier: String,
        /// The steps it waits for.
        depends_on: Vec<StepId>,
    },
    /// A re-plan began: `superseded` steps no longer count toward the task's status or answer
    /// (a streamed plan that turned invalid is discarded; the joiner routes around failed steps).
    Replanned {
        /// The re-plan's round (1 = the first).
        round: u32,
        /// Why.
        reason: String,
        /// The steps set aside.
        superseded: Vec<StepId>,
    },
    /// A worker took a step.
    StepStarted {
        /// The step.
        step_id: StepId,
        /// Its tier.
        tier: String,
        /// The worker.
        worker: String,
        /// Delivery number (2+ means redelivered).
        delivery: u32,
    },
    /// A step produced its result.
    StepCompleted {
        /// The step.
        step_id: StepId,
    },
    /// A step failed for good.
    StepFailed {
        /// The step.
        step_id: StepId,
        /// Why.
        error: String,
    },
    /// A step will not run.
    StepSkipped {
        /// The step.
        step_id: StepId,
        /// Why.
        reason: String,
    },
    /// Text the synthesis step's model wrote just now, for a task whose answer is streamed
    /// (`planex_core::AnswerOptions::stream`). Transient: sent to whoever follows the task now
    /// with `seq` 0 and never kept in the history (`Store::publish_transient`). A new `attempt`
    /// means the call was retried and its text starts over.
    AnswerDelta {
        /// The synthesis step.
        step_id: StepId,
        /// The call's attempt that wrote it (1 = the first).
        attempt: u32,
        /// Where `text` starts in that attempt's text (bytes), so a follower can tell a lost delta.
        offset: usize,
        /// The new text.
        text: String,
    },
    /// The task reached a terminal status.
    TaskCompleted {
        /// Its final status.
        status: TaskStatus,
    },
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
