//! The budget re-plan of the **fit budget** admission stage (`admission.rs`): a plan over the
//! task's own budget is planned again once, with at most as many steps as fit and the reason.

use crate::admission::{Admission, Admitted, Charge, OverBudget, Prepared, cost_of, over_budget};
use crate::{Engine, plan_task};
use planex_core::PlanLimits;
use planex_llm::ChatModel;
use tracing::Instrument;

impl Engine {
    /// Re-plans `admitted` within `over.stricter` steps (the re-plan draws from the task's
    /// reservation like every planner call). Still over budget, or a failed re-plan, is a refusal.
    pub(crate) async fn replan_within_budget(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        admitted: Admitted,
        charge: &Charge<'_>,
        over: OverBudget,
    ) -> Admission {
        let Admitted {
            plan, mut calls, ..
        } = admitted;
        metrics::counter!("budget_replans_total").increment(1);
        let reason = format!(
            "Budget note: the previous plan had {} steps with an estimated cost of ${}, over what is left of this task's budget of ${}. Plan again with at most {} steps.",
            plan.steps.len(),
            over.estimate.round_dp(9),
            over.budget,
            over.stricter,
        );
        tracing::info!(task = %p.task_id, stricter = over.stricter, %reason, "re-planning within the budget");
        let limits = PlanLimits {
            max_steps: over.stricter,
        };
        let text = format!("{}\n\n{reason}", p.task);
        let span = tracing::info_span!(
            "plan",
            otel.name = "plan planex",
            gen_ai.operation.name = "plan",
            planex.replan = "budget"
        );
        let settings = &self.settings.planner;
        let replanned = plan_task(planner, &p.catalog, &text, limits, settings, &p.ctx)
            .instrument(span)
            .await;
        match replanned {
            Ok(planned) => {
                calls.extend(planned.calls);
                let mut plan = planned.plan;
                plan.task = p.task.clone();
                let specs = self.task_specs(p, &plan, &planned.tier_hints);
                let estimate = charge.guard.estimate_steps(&specs, &self.executor.models);
                let spent = cost_of(&calls);
                if spent + estimate > over.budget {
                    let refusal = over_budget(charge, p, spent, estimate, over.budget, true);
                    return Admission::refused(refusal, calls);
                }
                Admission::Admitted(Admitted {
                    plan,
                    specs,
                    calls,
                    from_cache: false,
                    replanned: true,
                })
            }
            Err(failed) => {
                calls.extend(failed.calls);
                let spent = cost_of(&calls);
                let refusal = over_budget(charge, p, spent, over.estimate, over.budget, true);
                let reason = format!("{refusal}; the re-plan failed: {}", failed.reason);
                Admission::Refused {
                    refusal,
                    reason,
                    calls,
                }
            }
        }
    }
}
