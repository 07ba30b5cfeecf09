//! The admission stages of a task, each one function: **prepare** (check the request against the
//! engine's defaults), **reserve** (open the task's reservation holding the planner call's worst
//! case, waiting for room in the tenant's budget), **plan or cache** (a cached plan, or the planner
//! with one re-plan on an invalid plan; its calls draw from the reservation), and **fit budget**
//! (one re-plan with fewer steps when the estimate is over what is left of the task's budget). `submit.rs` runs them in order and
//! then **starts** and **settles** the task; plan-only requests (`direct.rs`) reuse the same stages.

use crate::budget::{Accounts, floor_usd};
use crate::{
    BudgetExceeded, BudgetGuard, Engine, EngineError, MeteredModel, PlanningFailed, TaskRequest,
    plan_task, system_prompt,
};
use planex_core::{CallRecord, Catalog, Decimal, Plan, PlanLimits, Stage, TaskId};
use planex_llm::{CallContext, ChatModel};
use planex_store::{Account, Denial, StepSpec};
use std::sync::Arc;
use tracing::Instrument;

/// A request checked and resolved against the engine's defaults.
pub(crate) struct Prepared {
    pub(crate) task: String,
    pub(crate) task_id: TaskId,
    pub(crate) max_steps: usize,
    pub(crate) task_type: String,
    pub(crate) synthesis: bool,
    /// The final answer's options, given to the synthesis step.
    pub(crate) answer: planex_core::AnswerOptions,
    pub(crate) catalog: Arc<Catalog>,
    /// The client's plan, validated (its `task` is the task text); `None` when the planner plans.
    pub(crate) client_plan: Option<Plan>,
    /// Results of plan steps a replay carries over (`TaskRequest::reuse`): not run, not estimated.
    pub(crate) reused: std::collections::BTreeMap<planex_core::StepId, serde_json::Value>,
    pub(crate) ctx: CallContext,
}

/// The budget guard of a request (when budgets are on), the accounts it charges and the task's
/// own budget (`None`: unlimited).
pub(crate) struct Charge<'a> {
    pub(crate) guard: &'a Arc<BudgetGuard>,
    pub(crate) accounts: Accounts,
    pub(crate) budget: Option<Decimal>,
}

impl Charge<'_> {
    /// `planner`, with every call drawn from task `p`'s reservation.
    pub(crate) fn metered(&self, planner: &Arc<dyn ChatModel>, p: &Prepared) -> Arc<dyn ChatModel> {
        let prefix = format!("plan/0/0/{}/", planner.tier_name());
        Arc::new(MeteredModel::new(
            planner.clone(),
            self.guard.clone(),
            p.task_id.clone(),
            prefix,
        ))
    }
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
    /// the drift guard's stricter `max_subtasks` for a drifting task type). A client plan is
    /// validated here, last, so every error knowable at submission is refused before anything is
    /// recorded or booked (`client_plan.rs`).
    pub(crate) async fn prepare(&self, request: &TaskRequest) -> Result<Prepared, EngineError> {
        let task = request.task.trim();
        self.check_task_chars(task, "the task text")?;
        if task.is_empty() && request.plan.is_none() {
            return Err(EngineError::InvalidRequest(
                "the task text is empty; give a task (or a plan to run)".into(),
            ));
        }
        let max_steps = match (&request.plan, request.max_subtasks) {
            (Some(_), Some(_)) => {
                return Err(EngineError::InvalidRequest(format!(
                    "max_subtasks bounds the plans the planner writes; a client plan is bounded by [engine] max_client_plan_steps ({}): drop max_subtasks",
                    self.settings.max_client_plan_steps
                )));
            }
            (Some(_), None) => self.settings.max_client_plan_steps,
            (None, asked) => asked.unwrap_or(self.settings.max_subtasks),
        };
        if request.plan.is_none()
            && (max_steps == 0 || max_steps > self.settings.max_subtasks_limit)
        {
            return Err(EngineError::InvalidRequest(format!(
                "max_subtasks must be between 1 and {}, got {max_steps}",
                self.settings.max_subtasks_limit
            )));
        }
        if let Some(budget) = request.budget_usd
            && budget < Decimal::ZERO
        {
            return Err(EngineError::InvalidRequest(format!(
                "budget_usd must be 0 (unlimited) or more, got {budget}"
            )));
        }
        request
            .answer
            .check()
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        let task_type = crate::check_task_type(request.task_type.as_deref())?;
        let catalog = self.request_catalog(request)?;
        let client_plan = self.client_plan(request, &catalog)?;
        // Tools of MCP servers that are down: a client plan needing one is refused, the planner
        // is not offered them (`tool_availability.rs`).
        let catalog = match &client_plan {
            Some(plan) => {
                self.check_plan_servers(plan, &catalog).await?;
                catalog
            }
            None => self.available_catalog(catalog).await?,
        };
        let (task, max_steps) = match &client_plan {
            Some(plan) => (plan.task.clone(), max_steps),
            None => (
                task.to_owned(),
                self.drift_limit(&task_type, max_steps).await,
            ),
        };
        Ok(Prepared {
            task,
            task_id: request.task_id.clone().unwrap_or_else(TaskId::new_random),
            max_steps,
            task_type,
            // Answer options are applied by the synthesis, so they ask for one.
            synthesis: request.synthesis.unwrap_or(self.settings.synthesis)
                || !request.answer.is_empty(),
            answer: request.answer.clone(),
            catalog,
            client_plan,
            reused: request
                .reuse
                .as_ref()
                .map(|r| r.results.clone())
                .unwrap_or_default(),
            ctx: CallContext {
                request_id: request.request_id.clone(),
                deltas: None,
            },
        })
    }

    /// The tools a request may use: the catalog, or the subset its `tools` names (never empty).
    fn request_catalog(&self, request: &TaskRequest) -> Result<Arc<Catalog>, EngineError> {
        let current = self.executor.catalog.current();
        let catalog = match &request.tools {
            Some(names) => Arc::new(current.subset(names)?),
            None => current.clone(),
        };
        if !catalog.is_empty() {
            return Ok(catalog);
        }
        Err(EngineError::InvalidRequest(match request.tools {
            Some(_) => format!(
                "no tools are available: tools is empty; name at least one of {}",
                current.names().join(", ")
            ),
            None => "no tools are available: the catalog is empty; configure [[tools]]".into(),
        }))
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
        // At the ledger's precision, so that a booking of the whole budget (rounded up) fits it.
        let budget = guard
            .settings()
            .task_budget(request.budget_usd, &accounts.tenant, &accounts.cost_center)
            .map(floor_usd);
        Some(Charge {
            guard,
            accounts,
            budget,
        })
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

    /// Stage **reserve**: opens the task's reservation, capped by its budget and holding the
    /// planner call's worst case (none for a cached plan). When an account has no room for that
    /// only because other tasks hold money, it waits for them (bounded, in arrival order); when
    /// waiting cannot help, it holds what is free if that covers an expected planner call (which
    /// is then made with the `max_tokens` it pays for). A denial is the refusal to answer with
    /// (nothing was recorded or spent).
    pub(crate) async fn reserve_planning(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        charge: &Charge<'_>,
        cached: bool,
    ) -> Result<(), EngineError> {
        let Charge {
            guard,
            accounts,
            budget,
        } = charge;
        let prompt = system_prompt(&p.catalog, p.max_steps).len() + p.task.len();
        // What a planner call is expected to cost: learned while this submission waits.
        let expected = || match cached {
            true => Decimal::ZERO,
            false => guard.planning_expected(planner.tier_name(), prompt, planner.price()),
        };
        let mut worst = match cached {
            true => Decimal::ZERO,
            false => guard.planning_estimate(
                planner.tier_name(),
                prompt,
                self.settings.planner.max_tokens,
                planner.price(),
            ),
        };
        if let Some(budget) = budget {
            if *budget < expected() {
                // Refused before the task is recorded: no task id to look up.
                let mut refusal = over_budget(charge, p, Decimal::ZERO, expected(), *budget, false);
                refusal.task_id = None;
                return Err(refusal.into());
            }
            worst = worst.min(*budget);
        }
        let id = &p.task_id.0;
        let reserve = |amount| guard.reserve(id.clone(), amount, *budget, accounts);
        // The worst case, else what is free in the accounts if it pays for an expected call.
        let attempt = || async {
            let Some(denial) = reserve(worst).await? else {
                return Ok(None);
            };
            let free = floor_usd(denial.limit_usd - denial.spent_usd - denial.reserved_usd);
            if denial.account.scope == "reservation" || free < expected() || free.is_zero() {
                return Ok(Some(denial));
            }
            reserve(free.min(worst)).await
        };
        let denied = guard
            .book_with_wait(expected, attempt)
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
            let specs = self.task_specs(p, &plan, &crate::TierHints::new());
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
                let specs = self.task_specs(p, &plan, &planned.tier_hints);
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
        p: &Prepared,
        planner: &dyn ChatModel,
        admission: Admission,
        charge: Option<&Charge<'_>>,
    ) -> Admission {
        let (Some(charge), Some(budget)) = (charge, charge.and_then(|c| c.budget)) else {
            return admission;
        };
        let admitted = match admission {
            Admission::Admitted(admitted) => admitted,
            other => return other,
        };
        let estimate = charge
            .guard
            .estimate_steps(&admitted.specs, &self.executor.models);
        let planning = cost_of(&admitted.calls);
        if planning + estimate <= budget {
            return Admission::Admitted(admitted);
        }
        // What a re-plan leaves for the steps: the budget less this planning and one more like it.
        let left = budget - planning - planning;
        let fit = self.steps_that_fit(charge.guard, &admitted.specs, estimate, left);
        let stricter = fit
            .min(MAX_BUDGET_REPLAN_STEPS)
            .min(admitted.plan.steps.len().saturating_sub(1));
        if stricter == 0 {
            let refusal = over_budget(charge, p, planning, estimate, budget, false);
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

    /// How many plan steps fit in `budget`: what is left after the synthesis's own part, over
    /// the mean estimate of a step (its synthesis input included).
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
        // The synthesis without inputs: its inputs grow with the steps, so they count per step.
        let extra_cost: Decimal = extra
            .iter()
            .map(|s| {
                let mut bare = (*s).clone();
                bare.step.depends_on.clear();
                guard.estimate_steps(std::slice::from_ref(&bare), models)
            })
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

/// The most steps a re-plan for budget may have (the reference design's stricter `max_subtasks`).
const MAX_BUDGET_REPLAN_STEPS: usize = 5;

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
    spent: Decimal,
    estimate: Decimal,
    budget: Decimal,
    replanned: bool,
) -> Box<BudgetExceeded> {
    let denial = Denial {
        account: Account::new("reservation", p.task_id.0.clone()),
        limit_usd: budget,
        spent_usd: spent,
        reserved_usd: Decimal::ZERO,
        requested_usd: estimate,
        over_by_usd: spent + estimate - budget,
    };
    Box::new(
        charge
            .guard
            .refusal(&denial, &charge.accounts, Some(&p.task_id), replanned),
    )
}
