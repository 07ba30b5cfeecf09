//! The API's request and response bodies (with their OpenAPI schemas).
//!
//! Key decision: the API has its own types rather than serialising store records directly, so the
//! wire format is documented in one place (`/openapi.json`) and store internals (lease tokens,
//! delivery bookkeeping) can change without breaking clients. Money is a decimal string.

use crate::redact;
use planex_core::{CostBreakdown, CostTotals, Decimal};
use planex_store::{StepRecord, TaskRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/tasks`: a task for the planner to plan, or (with `plan`) a plan to run as it is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitTask {
    /// The task, in plain words. Optional with `plan`: the plan's own `task`, else a short
    /// description of the plan, is used.
    #[serde(default)]
    pub task: String,
    /// A plan to run instead of calling the planner: `{"steps": [{step_id, tool_name, args,
    /// depends_on}, ...]}` (optionally with `task`). Validated by every plan rule (at most
    /// `[engine] max_client_plan_steps` steps, 64 by default) and refused with 422 naming the
    /// rule and the step before anything is recorded or billed; the plan cache is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
    /// Most the executor steps may cost, in USD (over it: one re-plan, then 429).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "0.05")]
    pub budget_usd: Option<Decimal>,
    /// Most steps the planner may use.
    #[serde(default)]
    pub max_subtasks: Option<usize>,
    /// Cost center to charge (overrides the key's default and `X-Cost-Center`).
    #[serde(default)]
    pub cost_center: Option<String>,
    /// Restrict the planner to these tools.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Append a synthesis step on the planner tier (server default when absent).
    #[serde(default)]
    pub synthesis: Option<bool>,
    /// `false` skips the plan cache lookup for this request.
    #[serde(default)]
    pub cache: Option<bool>,
    /// Task type for drift statistics and guards: 1 to 64 letters, digits, `-`, `_` or `.`
    /// (`default` when absent).
    #[serde(default)]
    pub task_type: Option<String>,
}

/// Query of `POST /v1/tasks`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubmitQuery {
    /// Block until the task finishes (up to `timeout_secs` or the server's limit).
    #[serde(default)]
    pub wait: bool,
    /// Longest wait in seconds (capped by `[server] wait_timeout_secs`).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// `POST /v1/plan`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The task.
    pub task: String,
    /// Most steps.
    #[serde(default)]
    pub max_subtasks: Option<usize>,
    /// Restrict the planner to these tools.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// `false` skips the plan cache lookup.
    #[serde(default)]
    pub cache: Option<bool>,
}

/// `POST /v1/execute`: one step, outside any plan. Either `{tool_name, args}`, or the reference
/// design's sub-task `{step_id, tool_name, args, depends_on}` with optional `task_id` and
/// `results` (the results of the steps in `depends_on`, for `{step_N_result}` placeholders).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The step's id in the caller's plan, 1 to 4294967294 (1 when absent); sent to `http` tools
    /// as `X-Step-ID`.
    #[serde(default)]
    #[schema(value_type = Option<u32>)]
    pub step_id: Option<serde_json::Value>,
    /// A tool of the catalog.
    pub tool_name: String,
    /// Its args, valid against the tool's input schema; string values may hold
    /// `{step_N_result}` (or `{step_N_result.field}`) placeholders to steps in `depends_on`.
    #[schema(value_type = Object)]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// Steps whose results the args use (none when absent).
    #[serde(default)]
    #[schema(value_type = Option<Vec<u32>>)]
    pub depends_on: Option<serde_json::Value>,
    /// The caller's task id, echoed in the answer and the log.
    #[serde(default)]
    pub task_id: Option<String>,
    /// Prior results by step id (`{"1": "text", "2": {"field": 3}}`), substituted into the
    /// placeholders with the templating plan steps use.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub results: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Tokens and money of a group of calls.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostLine {
    /// Model calls.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from the server's cache.
    pub cached_tokens: u64,
    /// Exact cost in USD.
    #[schema(value_type = String)]
    pub cost_usd: Decimal,
}

impl From<&CostTotals> for CostLine {
    fn from(t: &CostTotals) -> Self {
        CostLine {
            calls: t.calls,
            prompt_tokens: t.usage.prompt_tokens,
            completion_tokens: t.usage.completion_tokens,
            cached_tokens: t.usage.cached_tokens,
            cost_usd: t.cost_usd,
        }
    }
}

/// A cost breakdown by stage, tier and tool, with the cost center charged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostView {
    /// Everything.
    pub total: CostLine,
    /// By stage (`plan`, `step`, `synthesis`, `tool_call`, `replan`).
    pub by_stage: BTreeMap<String, CostLine>,
    /// By tier.
    pub by_tier: BTreeMap<String, CostLine>,
    /// By tool (step calls).
    pub by_tool: BTreeMap<String, CostLine>,
    /// The cost center charged.
    pub cost_center: String,
}

impl CostView {
    /// From a breakdown.
    pub fn new(cost: &CostBreakdown, cost_center: &str) -> Self {
        let map = |m: &BTreeMap<String, CostTotals>| {
            m.iter()
                .map(|(k, v)| (k.clone(), CostLine::from(v)))
                .collect()
        };
        CostView {
            total: CostLine::from(&cost.total),
            by_stage: map(&cost.by_stage),
            by_tier: map(&cost.by_tier),
            by_tool: map(&cost.by_tool),
            cost_center: cost_center.to_owned(),
        }
    }
}

/// One step of a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    /// Its id.
    pub step_id: u32,
    /// Its tool (`planex.synthesize` for the synthesis step).
    pub tool_name: String,
    /// The tier it runs on.
    pub tier: String,
    /// `step` or `synthesis`.
    pub stage: String,
    /// Steps it needs.
    pub depends_on: Vec<u32>,
    /// `pending`, `ready`, `running`, `complete`, `failed` or `skipped`.
    pub state: String,
    /// Attempts (retries and escalation included).
    pub attempts: u32,
    /// Times handed to a worker.
    pub deliveries: u32,
    /// Its result, when complete: any JSON value (the text of an LLM tool is a string).
    pub result: Option<serde_json::Value>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// The worker that last took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// When a worker first took it (ms since epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// When it reached a terminal state (ms since epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
}

fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl From<&StepRecord> for StepView {
    fn from(step: &StepRecord) -> Self {
        StepView {
            step_id: step.spec.step.step_id.0,
            tool_name: step.spec.step.tool_name.clone(),
            tier: step.spec.tier.clone(),
            stage: step.spec.stage.to_string(),
            depends_on: step.spec.step.depends_on.iter().map(|d| d.0).collect(),
            state: word(&step.state),
            attempts: step.attempts,
            deliveries: step.deliveries,
            result: step.result.clone(),
            error: step.error.as_deref().map(redact::urls),
            worker: step.worker.clone(),
            started_at_ms: step.started_at_ms,
            finished_at_ms: step.finished_at_ms,
        }
    }
}

/// A task: status, plan, steps, answer and cost.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    /// Its id.
    pub task_id: String,
    /// The task text.
    pub task: String,
    /// `planning`, `running`, `complete`, `partial`, `failed`, `rejected` or `cancelled`.
    pub status: String,
    /// The owning tenant.
    pub tenant: Option<String>,
    /// The task type its drift statistics count it under.
    pub task_type: String,
    /// The final answer, once there is one.
    pub answer: Option<String>,
    /// Why the task failed, was rejected or is partial.
    pub error: Option<String>,
    /// The accepted plan.
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
    /// Who wrote the plan: `planner` (also for a plan from the cache) or `client` (submitted
    /// with the task; no planner call was made). Absent until the task is planned.
    pub plan_source: Option<String>,
    /// Every step.
    pub steps: Vec<StepView>,
    /// Cost by stage, tier, tool and cost center.
    pub cost: CostView,
    /// Creation time (ms since epoch).
    pub created_at_ms: u64,
    /// Finish time (ms since epoch).
    pub finished_at_ms: Option<u64>,
    /// The task this one replays (`POST /v1/dead-letters/{id}/replay`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

impl From<&TaskRecord> for TaskView {
    fn from(record: &TaskRecord) -> Self {
        TaskView {
            task_id: record.task_id.0.clone(),
            task: record.task.clone(),
            status: record.status.to_string(),
            tenant: record.tenant.clone(),
            task_type: record
                .task_type
                .clone()
                .unwrap_or_else(|| planex_engine::DEFAULT_TASK_TYPE.to_owned()),
            answer: record.answer(),
            error: record.error.as_deref().map(redact::urls),
            plan: record.plan.clone(),
            plan_source: record.plan.as_ref().map(plan_source),
            steps: record.steps.values().map(StepView::from).collect(),
            cost: CostView::new(
                &record.cost(),
                record.cost_center.as_deref().unwrap_or("default"),
            ),
            created_at_ms: record.created_at_ms,
            finished_at_ms: record.finished_at_ms,
            retry_of: record.retry_of.as_ref().map(|id| id.0.clone()),
        }
    }
}

/// Who wrote a stored plan: its `source` (written only for client plans), else the planner.
fn plan_source(plan: &serde_json::Value) -> String {
    plan.get("source")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(planex_core::PlanSource::Planner.as_str())
        .to_owned()
}

/// `POST /v1/tasks` without waiting.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    /// The task id.
    pub task_id: String,
    /// Its status now: `planning` when just accepted (`running`, `failed`, … after a wait or for a
    /// repeated `Idempotency-Key`).
    pub status: String,
    /// Where to read it.
    pub location: String,
    /// Where its events stream.
    pub events: String,
}

/// `POST /v1/plan`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    /// The validated plan.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    /// Whether it came from the plan cache (no planner call).
    pub cached: bool,
    /// The estimated executor cost of running it, in USD.
    #[schema(value_type = String)]
    pub estimated_cost_usd: Decimal,
    /// What planning cost.
    pub cost: CostView,
}

/// `POST /v1/execute`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExecuteView {
    /// The step's id (1 unless the request gave one).
    pub step_id: u32,
    /// The caller's task id, when the request gave one.
    pub task_id: Option<String>,
    /// The tool run.
    pub tool_name: String,
    /// The args it ran with, placeholders filled in.
    #[schema(value_type = Object)]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// Its result: any JSON value (the text of an LLM tool is a string).
    pub result: serde_json::Value,
    /// Attempts made (retries and escalation included).
    pub attempts: u32,
    /// What it cost.
    pub cost: CostView,
}

/// One account's spend this month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpendLine {
    /// Settled spend in USD.
    #[schema(value_type = String)]
    pub spent_usd: Decimal,
    /// Reserved by requests in flight.
    #[schema(value_type = String)]
    pub reserved_usd: Decimal,
    /// The monthly budget, if any.
    #[schema(value_type = Option<String>)]
    pub budget_usd: Option<Decimal>,
}

/// `GET /v1/spend`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpendView {
    /// The tenant.
    pub tenant: String,
    /// The month (`YYYY-MM`, UTC).
    pub month: String,
    /// The tenant's totals.
    pub total: SpendLine,
    /// By cost center.
    pub cost_centers: BTreeMap<String, SpendLine>,
}

/// `GET /v1/spend` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpendQuery {
    /// `YYYY-MM` (default: this month, UTC).
    #[serde(default)]
    pub month: Option<String>,
}
