//! Which tier runs each step, and the step specs handed to the store.
//!
//! Today a step runs on its tool's tier; the synthesis step runs on the planner tier. Routing rules
//! (by tool category, input size or planner hint) plug in here without touching the scheduler.

use crate::{Engine, SYNTHESIS_TOOL};
use planex_core::{Plan, Stage, StepId};
use planex_store::StepSpec;

impl Engine {
    /// Step specs for a validated plan: each step on its tool's tier, plus the synthesis step.
    pub fn step_specs(&self, plan: &Plan, synthesis: bool) -> Vec<StepSpec> {
        let mut specs: Vec<StepSpec> = plan
            .steps
            .iter()
            .map(|step| StepSpec {
                step_id: step.step_id,
                tool_name: step.tool_name.clone(),
                args: step.args.clone(),
                depends_on: step.depends_on.clone(),
                tier: self
                    .executor
                    .catalog
                    .get(&step.tool_name)
                    .map(|t| t.tier.clone())
                    .unwrap_or_default(),
                stage: Stage::Step,
                tolerate_failed_deps: false,
            })
            .collect();
        if synthesis {
            let next = plan.steps.iter().map(|s| s.step_id.0).max().unwrap_or(0) + 1;
            specs.push(StepSpec {
                step_id: StepId(next),
                tool_name: SYNTHESIS_TOOL.to_owned(),
                args: serde_json::Map::new(),
                depends_on: plan.steps.iter().map(|s| s.step_id).collect(),
                tier: self.settings.planner_tier.clone(),
                stage: Stage::Synthesis,
                tolerate_failed_deps: true,
            });
        }
        specs
    }
}
