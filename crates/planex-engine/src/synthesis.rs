//! The synthesis step the engine appends to a plan: its reserved tool name and its step id.

use planex_core::{Plan, StepId};

/// The reserved tool name of the synthesis step the engine appends to a plan.
pub const SYNTHESIS_TOOL: &str = "planex.synthesize";

/// The synthesis step's id: one past the plan's highest step id.
pub(crate) fn synthesis_id(plan: &Plan) -> StepId {
    StepId(plan.steps.iter().map(|s| s.step_id.0).max().unwrap_or(0) + 1)
}
