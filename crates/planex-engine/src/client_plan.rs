//! Client plans: a task submitted with the plan to run (`TaskRequest::plan`), which skips the
//! planner call.
//!
//! Key decision: the plan is known at submission, so everything about it is decided there, before
//! the task is recorded or a cent is booked: every plan rule (up to
//! `EngineSettings::max_client_plan_steps` steps, a limit of its own because a client may
//! legitimately pin longer plans than a planner should write), then the budget estimate of its
//! steps (over the task's budget: refused at once, there is no planner to re-plan with fewer
//! steps). The admitted plan then runs exactly like a planned one; the plan cache is neither read
//! nor written for it (it was not the planner's answer to the task text).

use crate::admission::{Charge, Prepared, over_budget};
use crate::{Engine, EngineError, TaskRequest};
use planex_core::{Catalog, Decimal, Plan, PlanLimits, PlanSource};
use planex_store::StepSpec;
use std::collections::BTreeSet;

impl Engine {
    /// Checks a request the way submission does, without recording or booking anything, and
    /// returns the plan it would run: the validated client plan, or `None` when the planner would
    /// write one. `planex run --plans` checks a whole file this way before running any of it.
    ///
    /// # Errors
    /// What submission would refuse before planning: [`EngineError::InvalidPlan`] for a plan
    /// that breaks a rule, [`EngineError::InvalidRequest`] or [`EngineError::Catalog`] for the
    /// rest of the request.
    pub async fn check(&self, request: &TaskRequest) -> Result<Option<Plan>, EngineError> {
        Ok(self.prepare(request).await?.client_plan)
    }

    /// A task text within `[engine] max_task_chars`.
    pub(crate) fn check_task_chars(&self, text: &str, what: &str) -> Result<(), EngineError> {
        let chars = text.chars().count();
        let max = self.settings.max_task_chars;
        if chars > max {
            return Err(EngineError::InvalidRequest(format!(
                "{what} is {chars} characters long; at most {max} are allowed ([engine] max_task_chars): shorten it"
            )));
        }
        Ok(())
    }

    /// The request's plan, validated against the tools it may use (stage **prepare**). Its task
    /// text is the request's, else the plan's own `task`, else a short description of the plan.
    pub(crate) fn client_plan(
        &self,
        request: &TaskRequest,
        catalog: &Catalog,
    ) -> Result<Option<Plan>, EngineError> {
        let Some(value) = &request.plan else {
            return Ok(None);
        };
        let limits = PlanLimits {
            max_steps: self.settings.max_client_plan_steps,
        };
        let mut plan =
            Plan::from_value(value.clone(), catalog, limits).map_err(EngineError::InvalidPlan)?;
        let given = request.task.trim();
        let own = plan.task.trim();
        plan.task = if !given.is_empty() {
            given.to_owned()
        } else if !own.is_empty() {
            self.check_task_chars(own, "the plan's task text")?;
            own.to_owned()
        } else {
            describe(&plan)
        };
        plan.source = PlanSource::Client;
        Ok(Some(plan))
    }

    /// Stage **reserve** for a client plan: the estimate of its steps (the synthesis included)
    /// against the task's budget, then the task's reservation holding that estimate (waiting for
    /// room in the accounts like a planner call does). A refusal is returned before the task is
    /// recorded, so it carries no task id.
    pub(crate) async fn reserve_client_plan(
        &self,
        p: &Prepared,
        specs: &[StepSpec],
        charge: &Charge<'_>,
    ) -> Result<(), EngineError> {
        let Charge {
            guard,
            accounts,
            budget,
        } = charge;
        // A replay's reused steps cost nothing again (their outputs still feed the synthesis).
        let estimate = guard.estimate_steps_except(specs, &self.executor.models, |id| {
            p.reused.contains_key(&id)
        });
        if let Some(budget) = budget
            && estimate > *budget
        {
            let mut refusal = over_budget(charge, p, Decimal::ZERO, estimate, *budget, false);
            refusal.task_id = None;
            return Err(refusal.into());
        }
        let id = &p.task_id.0;
        let denied = guard
            .book_with_wait(
                || estimate,
                || guard.reserve(id.clone(), estimate, *budget, accounts),
            )
            .await
            .map_err(crate::error::ledger_down)?;
        match denied {
            Some(denial) => Err(Box::new(guard.refusal(&denial, accounts, None, false)).into()),
            None => Ok(()),
        }
    }
}

/// The task text of a client plan that came without one: what it runs, in a line.
fn describe(plan: &Plan) -> String {
    let tools: BTreeSet<&str> = plan.steps.iter().map(|s| s.tool_name.as_str()).collect();
    let steps = plan.steps.len();
    let noun = if steps == 1 { "step" } else { "steps" };
    format!(
        "Run the client-supplied plan of {steps} {noun} ({})",
        tools.into_iter().collect::<Vec<_>>().join(", ")
    )
}
