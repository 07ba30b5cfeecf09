//! The plan: typed steps parsed from the planner's JSON, and every validation rule of docs/ARCHITECTURE.md §3.
//!
//! A `Plan` that exists has passed validation; downstream code never re-checks. Each rule has its own
//! `PlanError` variant whose message names the culprit, because the message is sent back to the planner
//! in the one re-plan and shown to users as a 422.

use crate::StepId;
use serde::{Deserialize, Serialize};

/// Limits applied to a whole plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Most steps a plan may have (`max_subtasks`).
    pub max_steps: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits { max_steps: 16 }
    }
}

/// One validated step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The planner's id for this step.
    pub step_id: StepId,
    /// A tool from the catalog.
    pub tool_name: String,
    /// Arguments, valid against the tool's input schema; string values may hold placeholders.
    pub args: serde_json::Map<String, serde_json::Value>,
    /// Steps whose results this step needs.
    pub depends_on: Vec<StepId>,
}

/// A validated plan: a DAG of steps over known tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The task text the plan answers.
    pub task: String,
    /// Steps in the order the planner wrote them.
    pub steps: Vec<Step>,
}

/// Why a plan was refused. One variant per rule of docs/ARCHITECTURE.md §3; each message names the culprit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The text is not JSON, or not shaped like `{"steps": [{step_id, tool_name, args, depends_on}]}`.
    #[error("plan is not valid JSON of the expected shape: {detail}")]
    Shape {
        /// What was wrong, with a JSON path where known.
        detail: String,
    },
    /// The plan has no steps.
    #[error("plan has no steps; a plan needs at least one step")]
    Empty,
    /// More steps than `max_subtasks`.
    #[error(
        "plan has {count} steps but at most {max} are allowed (max_subtasks); merge or drop steps"
    )]
    TooManySteps {
        /// Steps in the plan.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two steps share an id.
    #[error("step_id {step_id} is used by more than one step; step ids must be unique")]
    DuplicateStepId {
        /// The repeated id.
        step_id: StepId,
    },
    /// A `depends_on` entry names no step of the plan.
    #[error("step {step_id} depends on step {missing}, which is not in the plan")]
    UnknownDependency {
        /// The step with the bad dependency.
        step_id: StepId,
        /// The id it names.
        missing: StepId,
    },
    /// The dependencies form a cycle.
    #[error("dependency cycle: {}", format_cycle(.cycle))]
    Cycle {
        /// The steps on the cycle, in order, first repeated at the end.
        cycle: Vec<StepId>,
    },
    /// The tool is not in the catalog.
    #[error("step {step_id} uses unknown tool {tool:?}; known tools: {}", .known.join(", "))]
    UnknownTool {
        /// The step.
        step_id: StepId,
        /// The unknown name.
        tool: String,
        /// Every tool the catalog has.
        known: Vec<String>,
    },
    /// The args do not match the tool's input schema.
    #[error("step {step_id} args do not match the input schema of tool {tool:?}: {}", .errors.join("; "))]
    InvalidArgs {
        /// The step.
        step_id: StepId,
        /// Its tool.
        tool: String,
        /// Schema violations, each with its JSON path.
        errors: Vec<String>,
    },
    /// A `{step_N_result}` placeholder names a step missing from `depends_on`.
    #[error(
        "step {step_id} uses the placeholder {{step_{referenced}_result}} but step {referenced} is not in its depends_on"
    )]
    PlaceholderNotInDependsOn {
        /// The step with the placeholder.
        step_id: StepId,
        /// The step the placeholder refers to.
        referenced: StepId,
    },
    /// In a streamed plan, a step depends on a step that has not been accepted yet.
    #[error("step {step_id} depends on step {dependency}, which does not come before it")]
    ForwardDependency {
        /// The step.
        step_id: StepId,
        /// The later (or unknown) step it names.
        dependency: StepId,
    },
}

impl PlanError {
    /// A stable machine-readable name for the rule that failed (used in API error `details`).
    pub fn rule(&self) -> &'static str {
        match self {
            PlanError::Shape { .. } => "shape",
            PlanError::Empty => "empty",
            PlanError::TooManySteps { .. } => "too_many_steps",
            PlanError::DuplicateStepId { .. } => "duplicate_step_id",
            PlanError::UnknownDependency { .. } => "unknown_dependency",
            PlanError::Cycle { .. } => "cycle",
            PlanError::UnknownTool { .. } => "unknown_tool",
            PlanError::InvalidArgs { .. } => "invalid_args",
            PlanError::PlaceholderNotInDependsOn { .. } => "placeholder_not_in_depends_on",
            PlanError::ForwardDependency { .. } => "forward_dependency",
        }
    }
}

/// `step 1 -> step 2 -> step 1`: a cycle as error messages show it.
pub(crate) fn format_cycle(cycle: &[StepId]) -> String {
    cycle
        .iter()
        .map(|s| format!("step {s}"))
        .collect::<Vec<_>>()
        .join(" -> ")
}
