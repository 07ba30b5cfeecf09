//! The engine's routing of a validated plan: its [`Router`] and the step specs handed to the store
//! (each plan step on its routed tier, plus the synthesis step on the planner tier).

use crate::synthesis::{SYNTHESIS_TOOL, synthesis_id};
use crate::{Engine, RouteSource, Router, TierHints};
use planex_core::{Plan, Stage, Step};
use planex_store::StepSpec;

impl Engine {
    /// The router of this engine over `catalog` (a snapshot of its live catalog).
    pub fn router<'a>(&'a self, catalog: &'a planex_core::Catalog) -> Router<'a> {
        Router::new(&self.settings.routing, catalog, &self.settings.planner_tier)
    }

    /// Step specs for a validated plan, routed by the engine's rules, plus the synthesis step.
    pub fn step_specs(&self, plan: &Plan, synthesis: bool) -> Vec<StepSpec> {
        let catalog = self.executor.catalog.current();
        self.step_specs_with_hints(&catalog, plan, synthesis, &TierHints::new())
    }

    /// The step specs of an admitted task: its plan's, and its synthesis step carrying the
    /// task's answer options (`planex_core::ANSWER_ARG`).
    pub(crate) fn task_specs(
        &self,
        p: &crate::admission::Prepared,
        plan: &Plan,
        hints: &TierHints,
    ) -> Vec<StepSpec> {
        let mut specs = self.step_specs_with_hints(&p.catalog, plan, p.synthesis, hints);
        if p.answer != planex_core::AnswerOptions::default()
            && let Some(synthesis) = specs.iter_mut().find(|s| s.stage == Stage::Synthesis)
            && let Ok(options) = serde_json::to_value(&p.answer)
        {
            synthesis
                .step
                .args
                .insert(planex_core::ANSWER_ARG.to_owned(), options);
        }
        specs
    }

    /// Step specs for a plan validated against `catalog` whose steps carried planner `tier`
    /// hints (routed over that same catalog, whatever the live catalog is now).
    pub fn step_specs_with_hints(
        &self,
        catalog: &planex_core::Catalog,
        plan: &Plan,
        synthesis: bool,
        hints: &TierHints,
    ) -> Vec<StepSpec> {
        let decisions = self.router(catalog).route_plan(plan, hints, synthesis);
        let mut specs: Vec<StepSpec> = plan
            .steps
            .iter()
            .zip(&decisions)
            .map(|(step, decision)| {
                if decision.source != RouteSource::Tool {
                    tracing::debug!(step = %step.step_id, tool = %step.tool_name, tier = %decision.tier,
                        reason = %decision.reason, "step routed");
                }
                StepSpec {
                    step: step.clone(),
                    tier: decision.tier.clone(),
                    stage: Stage::Step,
                    tolerate_failed_deps: false,
                }
            })
            .collect();
        if synthesis {
            specs.push(StepSpec {
                step: Step {
                    step_id: synthesis_id(plan),
                    tool_name: SYNTHESIS_TOOL.to_owned(),
                    args: serde_json::Map::new(),
                    depends_on: plan.steps.iter().map(|s| s.step_id).collect(),
                },
                tier: self.settings.planner_tier.clone(),
                stage: Stage::Synthesis,
                tolerate_failed_deps: true,
            });
        }
        specs
    }
}
