//! The synthesis step the engine appends to a plan: its reserved tool name and its step id.

use planex_core::{Plan, StepId};

/// The reserved tool name of the synthesis step the engine appends to a plan.
pub const SYNTHESIS_TOOL: &str = "planex.synthesize";

/// The synthesis step's id: one past the plan's highest step id. A validated plan's ids are at
/// most `StepId::MAX` (`u32::MAX - 1`), so this never saturates; saturating keeps it from
/// wrapping to 0 regardless.
pub(crate) fn synthesis_id(plan: &Plan) -> StepId {
    let highest = plan.steps.iter().map(|s| s.step_id.0).max().unwrap_or(0);
    StepId(highest.saturating_add(1))
}
