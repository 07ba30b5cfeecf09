//! Which steps of a finished task were escalated to another tier, read back from its record.
//!
//! Key decision: nothing extra is stored. A step's priced calls name the tier that served each one,
//! so a call on a tier other than the step's routed tier *is* an escalation (and both tiers are
//! charged for what they did); a step that failed on both tiers without any priced call is found by
//! the executor's error text, which always names the escalation tier.

use planex_core::{Stage, StepId};
use planex_store::{StepState, TaskRecord};
use serde::Serialize;

/// One escalated step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalation {
    /// The step.
    pub step_id: StepId,
    /// Its tool.
    pub tool: String,
    /// The tier it was routed to and failed on.
    pub from: String,
    /// The tier it was retried on.
    pub to: String,
    /// Whether the retry succeeded.
    pub succeeded: bool,
}

/// The text the executor puts in a step error after a failed escalation.
const AFTER_ESCALATION: &str = "after escalation to tier ";

/// Every escalated step of `record`, in step order.
pub fn escalations(record: &TaskRecord) -> Vec<Escalation> {
    record
        .steps
        .values()
        .filter(|step| step.spec.stage == Stage::Step)
        .filter_map(|step| {
            let from = &step.spec.tier;
            let by_call = record
                .calls
                .iter()
                .filter(|c| c.step_id == Some(step.spec.step.step_id) && c.stage == Stage::Step)
                .map(|c| c.tier.clone())
                .find(|tier| tier != from);
            let by_error = || {
                let error = step.error.as_deref()?;
                let rest = &error[error.find(AFTER_ESCALATION)? + AFTER_ESCALATION.len()..];
                Some(rest.split(':').next().unwrap_or(rest).trim().to_owned())
            };
            let to = by_call.or_else(by_error)?;
            Some(Escalation {
                step_id: step.spec.step.step_id,
                tool: step.spec.step.tool_name.clone(),
                from: from.clone(),
                to,
                succeeded: step.state == StepState::Complete,
            })
        })
        .collect()
}
