//! [`TaskRequest`]: one task to plan and run, as a caller asks for it.

use planex_core::{StepId, TaskId};
use std::collections::BTreeMap;

/// One task to plan and run.
#[derive(Debug, Clone, Default)]
pub struct TaskRequest {
    /// The user's task. May be empty when `plan` is given (the plan's own `task`, else a short
    /// description of the plan, is used).
    pub task: String,
    /// A plan the client wrote, as JSON (`{"steps": [...]}`, optionally with `task`): validated
    /// with every plan rule at admission (up to `max_client_plan_steps` steps) and run instead
    /// of calling the planner; the plan cache is neither read nor written for it.
    pub plan: Option<serde_json::Value>,
    /// Id to use (a random one when absent).
    pub task_id: Option<TaskId>,
    /// Most plan steps (the engine default when absent).
    pub max_subtasks: Option<usize>,
    /// Append a synthesis step (the engine default when absent).
    pub synthesis: Option<bool>,
    /// Restrict the planner to these tools.
    pub tools: Option<Vec<String>>,
    /// Owning tenant.
    pub tenant: Option<String>,
    /// Cost center for attribution.
    pub cost_center: Option<String>,
    /// Propagated to model servers as `X-Request-ID`.
    pub request_id: Option<String>,
    /// Most the whole task may cost, in USD (`0`: unlimited; absent: the per-task budget of its
    /// cost center, tenant or the default). The budget guard re-plans or refuses above it, and
    /// no model call is made past it.
    pub budget_usd: Option<planex_core::Decimal>,
    /// Skip the plan cache lookup for this request.
    pub bypass_cache: bool,
    /// Task type for drift statistics and guards (`default` when absent; see `check_task_type`).
    pub task_type: Option<String>,
    /// How the final answer is written (the agent endpoint's OpenAI parameters); when any is set
    /// the task gets a synthesis step, which applies them.
    pub answer: planex_core::AnswerOptions,
    /// The end user the request is made for (OpenAI `user`), recorded on the task.
    pub end_user: Option<String>,
    /// Set by [`crate::Engine::replay`] only: the task repeats an earlier one, with these of its
    /// plan steps complete from the start (`plan` must be given).
    pub reuse: Option<Reuse>,
}

/// What a replayed task carries over from the task it repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct Reuse {
    /// The task repeated (recorded as the new task's `retry_of`).
    pub retry_of: TaskId,
    /// Results of its completed plan steps, by step id: those steps are not run again.
    pub results: BTreeMap<StepId, serde_json::Value>,
}
