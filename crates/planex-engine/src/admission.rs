//! The admission stages of a task, each one function: **prepare** (check the request against the
//! engine's defaults), **reserve** (book the planner call's worst case), **plan or cache** (a cached
//! plan, or the planner with one re-plan on an invalid plan), and **fit budget** (one re-plan with
//! fewer steps when the estimate is over the task's own budget). `submit.rs` runs them in order and
//! then **starts** and **settles** the task; plan-only requests (`direct.rs`) reuse the same stages.

use crate::budget::Accounts;
use crate::{
    BudgetExceeded, BudgetGuard, Engine, EngineError, PlanningFailed, TaskRequest, plan_task,
    system_prompt,
};
use planex_core::{CallRecord, Catalog, Decimal, Plan, PlanLimits, Stage, TaskId};
use planex_llm::{CallContext, ChatModel};
use planex_store::{Account, Booking, Denial, LedgerError, StepSpec};
use std::sync::Arc;
use tracing::Instrument;

/// A request checked and resolved against the engine's defaults.
pub(crate) struct Prepared {
    pub(crate) task: String,
    pub(crate) task_id: TaskId,
    pub(crate) max_steps: usize,
    pub(crate) task_type: String,
    pub(crate) synthesis: bool,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) ctx: CallContext,
}

impl Prepared {
    /// The id of the reservation that books this task's planner calls.
    pub(crate) fn planning_reservation(&self) -> String {
        format!("{}/plan", self.task_id)
    }
}

/// The budget guard of a request (when budgets are on) and the accounts it charges.
pub(crate) struct Charge<'a> {
    pub(crate) guard: &'a Arc<BudgetGuard>,
    pub(crate) accounts: Accounts,
}

/// A validated plan and the step specs it becomes.
pub(crate) struct Admitted {
    pub(crate) plan: Plan,
    pub(crate) specs: Vec<StepSpec>,
    pub(crate) calls: Vec<CallRecord>,
    pub(crate) from_cache: bool,
    pub(crate) replanned: bool,
}

/// What admission decided for one task.
pub(crate) enum Admission {
    /// Start the task with this plan.
    Admitted(Admitted),
    /// The planner failed or returned invalid plans twice: the task ends `failed`.
    PlanningFailed(PlanningFailed),
    /// A budget refused the task: it ends `rejected`.
    Refused {
        refusal: Box<BudgetExceeded>,
        reason: String,
        calls: Vec<CallRecord>,
    },
}

impl Admission {
    /// The planner calls made, whatever was decided (they are paid).
    pub(crate) fn calls(&self) -> &[CallRecord] {
        match self {
            Admission::Admitted(admitted) => &admitted.calls,
            Admission::PlanningFailed(failed) => &failed.calls,
            Admission::Refused { calls, .. } => calls,
        }
    }

    pub(crate) fn refused(refusal: Box<BudgetExceeded>, calls: Vec<CallRecord>) -> Admission {
        let reason = refusal.to_string();
        Admission::Refused {
            refusal,
            reason,
            calls,
        }
    }
}

/// The total cost of `calls`.
pub(crate) fn cost_of(calls: &[CallRecord]) -> Decimal {
    calls.iter().map(|c| c.cost_usd).sum()
}

impl Engine {
    /// Stage **prepare**: checks the request and resolves it against the engine's defaults (and
    /// the drift guard's stricter `max_subtasks` for a drifting task type).
    pub(crate) async fn prepare(&self, request: &TaskRequest) -> Result<Prepared, EngineError> {
        let task = request.task.trim();
        if task.is_empty() {
            return Err(EngineError::InvalidRequest("the task text is empty".into()));
        }
        let max_steps = request.max_subtasks.unwrap_or(self.settings.max_subtasks);
        if max_steps == 0 || max_steps > self.settings.max_subtasks_limit {
            return Err(EngineError::InvalidRequest(format!(
                "max_subtasks must be between 1 and {}, got {max_steps}",
                self.settings.max_subtasks_limit
            )));
        }
        if let Some(budget) = request.budget_usd
            && budget <= Decimal::ZERO
        {
            return Err(EngineError::InvalidRequest(format!(
                "budget_usd must be greater than zero, got {budget}"
            )));
        }
        let task_type = crate::check_task_type(request.task_type.as_deref())?;
        let max_steps = self.drift_limit(&task_type, max_steps).await;
        let catalog = match &request.tools {
            Some(names) => Arc::new(self.executor.catalog.subset(names)?),
            None => self.executor.catalog.clone(),
        };
        Ok(Prepared {
            task: task.to_owned(),
            task_id: request.task_id.clone().unwrap_or_else(TaskId::new_random),
            max_steps,
            task_type,
            synthesis: request.synthesis.unwrap_or(self.settings.synthesis),
            catalog,
            ctx: CallContext {
                request_id: request.request_id.clone(),
            },
        })
    }

    /// The planner tier's model.
    pub(crate) fn planner(&self) -> Result<Arc<dyn ChatModel>, EngineError> {
        Ok(self
            .executor
            .models
            .get(&self.settings.planner_tier)?
            .clone())
    }

    /// The budget guard and accounts of `request`, when budgets are enforced.
    pub(crate) fn charge(&self, request: &TaskRequest) -> Option<Charge<'_>> {
        let guard = self.budget.as_ref().filter(|g| g.settings().enabled)?;
        let accounts = guard.accounts(request.tenant.as_deref(), request.cost_center.as_deref());
        Some(Charge { guard, accounts })
    }

    /// The plan cache's key for this request (when the cache is on), and the cached plan unless
    /// the request bypasses the cache.
    pub(crate) async fn cached_plan(
        &self,
        request: &TaskRequest,
        p: &Prepared,
        planner_model: &str,
    ) -> (Option<String>, Option<Plan>) {
        let Some(cache) = self.plan_cache.as_ref().filter(|c| c.settings().enabled) else {
            return (None, None);
        };
        let key = cache.key(&p.task, planner_model, &p.catalog, p.max_steps);
        if request.bypass_cache {
            return (Some(key), None);
        }
        let limits = PlanLimits {
            max_steps: p.max_steps,
        };
        let plan = cache.get(&key, &p.catalog, limits).await;
        (Some(key), plan)
    }

    /// Stage **reserve**: books the planner call's worst case under `{task}/plan`; a denial is the
    /// refusal to answer with (nothing was recorded or spent).
    pub(crate) async fn reserve_planning(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        charge: &Charge<'_>,
    ) -> Result<(), EngineError> {
        let Charge { guard, accounts } = charge;
        let prompt = system_prompt(&p.catalog, p.max_steps).len() + p.task.len();
        let estimate =
            guard.planning_estimate(prompt, self.settings.planner.max_tokens, planner.price());
        let denied = guard
            .reserve(p.planning_reservation(), estimate, None, accounts)
            .await
            .map_err(crate::error::ledger_down)?;
        match denied {
            Some(denial) => Err(Box::new(guard.refusal(&denial, accounts, None, false)).into()),
            None => Ok(()),
        }
    }

    /// Stage **plan or cache**: the cached plan, or a planner call (with one re-plan on an invalid
    /// plan); the plan's steps become step specs on their tiers.
    pub(crate) async fn plan_or_cache(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        cached: Option<Plan>,
    ) -> Admission {
        if let Some(mut plan) = cached {
            plan.task = p.task.clone();
            let specs = self.step_specs(&plan, p.synthesis);
            return Admission::Admitted(Admitted {
                plan,
                specs,
                calls: Vec::new(),
                from_cache: true,
                replanned: false,
            });
        }
        let span = tracing::info_span!(
            "plan",
            otel.name = "plan planex",
            gen_ai.operation.name = "plan"
        );
        let limits = PlanLimits {
            max_steps: p.max_steps,
        };
        let settings = &self.settings.planner;
        match plan_task(planner, &p.catalog, &p.task, limits, settings, &p.ctx)
            .instrument(span)
            .await
        {
            Ok(planned) => {
                metrics::histogram!("plan_replans").record(f64::from(planned.replans));
                let mut plan = planned.plan;
                plan.task = p.task.clone();
                let specs = self.step_specs_with_hints(&plan, p.synthesis, &planned.tier_hints);
                Admission::Admitted(Admitted {
                    plan,
                    specs,
                    calls: planned.calls,
                    from_cache: false,
                    replanned: false,
                })
            }
            Err(failed) => Admission::PlanningFailed(failed),
        }
    }

    /// Stage **fit budget**: a plan whose estimate is over the task's own budget gets one re-plan
    /// with as many steps as fit (and the reason); still over, or none fit, it is refused.
    pub(crate) async fn fit_budget(
        &self,
        request: &TaskRequest,
        p: &Prepared,
        planner: &dyn ChatModel,
        admission: Admission,
        charge: Option<&Charge<'_>>,
    ) -> Admission {
        let (Some(charge), Some(budget)) = (charge, request.budget_usd) else {
            return admission;
        };
        let admitted = match admission {
            Admission::Admitted(admitted) => admitted,
            other => return other,
        };
        let estimate = charge
            .guard
            .estimate_steps(&admitted.specs, &self.executor.models);
        if estimate <= budget {
            return Admission::Admitted(admitted);
        }
        let fit = self.steps_that_fit(charge.guard, &admitted.specs, estimate, budget);
        let stricter = fit.min(admitted.plan.steps.len().saturating_sub(1));
        if stricter == 0 {
            let refusal = over_budget(charge, p, estimate, budget, false);
            return Admission::refused(refusal, admitted.calls);
        }
        let over = OverBudget {
            estimate,
            budget,
            stricter,
        };
        self.replan_within_budget(p, planner, admitted, charge, over)
            .await
    }

    /// How many plan steps fit in `budget`: what is left after synthesis, over the mean step
    /// estimate.
    fn steps_that_fit(
        &self,
        guard: &BudgetGuard,
        specs: &[StepSpec],
        estimate: Decimal,
        budget: Decimal,
    ) -> usize {
        let models = &self.executor.models;
        let (plan_specs, extra): (Vec<&StepSpec>, Vec<&StepSpec>) =
            specs.iter().partition(|s| s.stage == Stage::Step);
        let extra_cost: Decimal = extra
            .iter()
            .map(|s| guard.estimate_steps(std::slice::from_ref(*s), models))
            .sum();
        let per_step = (estimate - extra_cost) / Decimal::from(plan_specs.len().max(1) as u64);
        if per_step > Decimal::ZERO && budget > extra_cost {
            ((budget - extra_cost) / per_step)
                .floor()
                .try_into()
                .unwrap_or(0usize)
        } else {
            0
        }
    }
}

/// A plan over the task's own budget: its estimate, the budget, and how many steps would fit.
pub(crate) struct OverBudget {
    pub(crate) estimate: Decimal,
    pub(crate) budget: Decimal,
    pub(crate) stricter: usize,
}

/// The refusal of a plan whose estimate is over the task's own budget.
pub(crate) fn over_budget(
    charge: &Charge<'_>,
    p: &Prepared,
    estimate: Decimal,
    budget: Decimal,
    replanned: bool,
) -> Box<BudgetExceeded> {
    let denial = Denial {
        account: Account::new("reservation", p.task_id.0.clone()),
        limit_usd: budget,
        spent_usd: Decimal::ZERO,
        reserved_usd: Decimal::ZERO,
        requested_usd: estimate,
        over_by_usd: estimate - budget,
    };
    Box::new(
        charge
            .guard
            .refusal(&denial, &charge.accounts, Some(&p.task_id), replanned),
    )
}

/// Grows the planning reservation by a re-plan's worst case, or opens it when the first plan came
/// from the cache; `Some` is the denial.
pub(crate) async fn extend_planning(
    charge: &Charge<'_>,
    id: String,
    estimate: Decimal,
) -> Result<Option<Denial>, LedgerError> {
    match charge.guard.ledger().extend(&id, estimate).await {
        Ok(Booking::Granted) => Ok(None),
        Ok(Booking::Denied(denial)) => Ok(Some(denial)),
        Err(LedgerError::UnknownReservation(_)) => {
            charge
                .guard
                .reserve(id, estimate, None, &charge.accounts)
                .await
        }
        Err(error) => Err(error),
    }
}
