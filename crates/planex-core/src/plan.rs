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

impl Step {
    /// This step with its id, its dependencies and the steps its placeholders name moved up by
    /// `offset`: a re-plan's step 1 becomes step `offset + 1`, so a task that already holds steps
    /// `1..=offset` keeps every id unique.
    ///
    /// ```
    /// use planex_core::{Step, StepId};
    /// let step = Step {
    ///     step_id: StepId(2),
    ///     tool_name: "summarize".into(),
    ///     args: serde_json::json!({"text": "{step_1_result.title}!"}).as_object().unwrap().clone(),
    ///     depends_on: vec![StepId(1)],
    /// };
    /// let moved = step.renumbered(10);
    /// assert_eq!((moved.step_id, moved.depends_on.clone()), (StepId(12), vec![StepId(11)]));
    /// assert_eq!(moved.args["text"], "{step_11_result.title}!");
    /// ```
    pub fn renumbered(&self, offset: u32) -> Step {
        let shift = |id: StepId| StepId(id.0.saturating_add(offset));
        Step {
            step_id: shift(self.step_id),
            tool_name: self.tool_name.clone(),
            args: crate::template::rename_placeholders(&self.args, &shift),
            depends_on: self.depends_on.iter().map(|d| shift(*d)).collect(),
        }
    }
}

/// Who wrote a plan: the planner tier (the default, also for cached plans) or the client that
/// submitted it (`POST /v1/tasks` with `plan`, `planex run --plan`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanSource {
    /// Written by the planner tier (or read back from the plan cache).
    #[default]
    Planner,
    /// Supplied by the client with the task: no planner call was made.
    Client,
}

impl PlanSource {
    /// Whether the planner wrote the plan (its serialized form then omits `source`).
    pub fn is_planner(&self) -> bool {
        *self == PlanSource::Planner
    }

    /// `planner` or `client`, as the API and the task record show it.
    pub fn as_str(&self) -> &'static str {
        match self {
            PlanSource::Planner => "planner",
            PlanSource::Client => "client",
        }
    }
}

/// A validated plan: a DAG of steps over known tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The task text the plan answers.
    pub task: String,
    /// Steps in the order the planner wrote them.
    pub steps: Vec<Step>,
    /// Who wrote it. Serialized (as `"source": "client"`) only for client plans, so a planner
    /// plan's stored and cached form is exactly `{task, steps}`.
    #[serde(default, skip_serializing_if = "PlanSource::is_planner")]
    pub source: PlanSource,
}

/// Why a plan was refused. One variant per rule of docs/ARCHITECTURE.md §3; each message names the culprit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The text is not JSON, or not shaped like `{"steps": [{step_id, tool_name, args, depends_on}]}`.
    #[error("plan is not valid JSON of the expected shape: {detail}")]
    Shape {
        /// What was wrong, with a JSON path where known.
        detail: String,
        /// Position of the offending step in the `steps` array, when the fault is inside one.
        step_index: Option<usize>,
    },
    /// A step id (or a `depends_on` entry) is an integer outside 1 to [`StepId::MAX`]: no room
    /// would be left for the synthesis step's id, which is one past the plan's highest.
    #[error(
        "{path}: step id {value} is out of range; step ids run from 1 to {max} (the id above the highest step id is kept for the synthesis step)",
        max = StepId::MAX
    )]
    StepIdOutOfRange {
        /// The JSON path of the id (`steps[2].step_id`, `steps[2].depends_on[0]`).
        path: String,
        /// The id as written.
        value: String,
        /// Position of the step in the `steps` array (absent for a lone step).
        step_index: Option<usize>,
    },
    /// The plan has no steps.
    #[error("plan has no steps; a plan needs at least one step")]
    Empty,
    /// More steps than the plan's limit (`max_subtasks` for a planner's plan,
    /// `max_client_plan_steps` for a client's).
    #[error("plan has {count} steps but at most {max} are allowed; merge or drop steps")]
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
            PlanError::StepIdOutOfRange { .. } => "step_id_out_of_range",
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

impl PlanError {
    /// The step the rule failed on, when one is to blame (for a cycle, its first step).
    pub fn step_id(&self) -> Option<StepId> {
        match self {
            PlanError::Shape { .. }
            | PlanError::StepIdOutOfRange { .. }
            | PlanError::Empty
            | PlanError::TooManySteps { .. } => None,
            PlanError::DuplicateStepId { step_id }
            | PlanError::UnknownDependency { step_id, .. }
            | PlanError::UnknownTool { step_id, .. }
            | PlanError::InvalidArgs { step_id, .. }
            | PlanError::PlaceholderNotInDependsOn { step_id, .. }
            | PlanError::ForwardDependency { step_id, .. } => Some(*step_id),
            PlanError::Cycle { cycle } => cycle.first().copied(),
        }
    }

    /// Position in the `steps` array of a step whose shape or id is wrong (its id may be
    /// unreadable, so it is named by position).
    pub fn step_index(&self) -> Option<usize> {
        match self {
            PlanError::Shape { step_index, .. }
            | PlanError::StepIdOutOfRange { step_index, .. } => *step_index,
            _ => None,
        }
    }

    /// The structured details an API error or a CLI report carries: `rule`, `step_id`,
    /// `step_index` (each `null` when no step is to blame) and the message as `error`.
    /// The culprit's own fields are added where the rule has them: `tool` and `known` (unknown
    /// tool), `tool` and `errors` (invalid args), `missing`, `referenced`, `dependency`, `cycle`,
    /// `count` and `max`, `path` and `value` (an id out of range).
    pub fn details(&self) -> serde_json::Value {
        let mut details = serde_json::json!({
            "rule": self.rule(),
            "step_id": self.step_id().map(|s| s.0),
            "step_index": self.step_index(),
            "error": self.to_string(),
        });
        let extra = match self {
            PlanError::Shape { .. } | PlanError::Empty | PlanError::DuplicateStepId { .. } => {
                serde_json::json!({})
            }
            PlanError::StepIdOutOfRange { path, value, .. } => {
                serde_json::json!({"path": path, "value": value})
            }
            PlanError::TooManySteps { count, max } => {
                serde_json::json!({"count": count, "max": max})
            }
            PlanError::UnknownDependency { missing, .. } => serde_json::json!({"missing": missing}),
            PlanError::Cycle { cycle } => serde_json::json!({"cycle": cycle}),
            PlanError::UnknownTool { tool, known, .. } => {
                serde_json::json!({"tool": tool, "known": known})
            }
            PlanError::InvalidArgs { tool, errors, .. } => {
                serde_json::json!({"tool": tool, "errors": errors})
            }
            PlanError::PlaceholderNotInDependsOn { referenced, .. } => {
                serde_json::json!({"referenced": referenced})
            }
            PlanError::ForwardDependency { dependency, .. } => {
                serde_json::json!({"dependency": dependency})
            }
        };
        if let (Some(details), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra)
        {
            details.extend(extra);
        }
        details
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
