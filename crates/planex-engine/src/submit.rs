//! Task submission: validate the request, plan (cache, then planner with one re-plan), apply the
//! budget guard, and hand the steps to the store.
//!
//! Key decisions: `submit` returns once the task is running (or has failed or been refused); the
//! outcome is read from the store by id, so the API can answer `202 Accepted` and any replica can
//! serve the task. Budgets are enforced by reservations booked *before* each spend (the planner
//! call, then the executor steps) and settled with real costs afterwards (see `budget.rs`); a plan
//! over the task's own budget gets one re-plan with a stricter `max_subtasks` and the reason.

use crate::budget::Accounts;
use crate::{
    BudgetExceeded, BudgetGuard, Engine, EngineError, TaskRequest, plan_task, system_prompt,
};
use planex_core::{CallRecord, Catalog, Decimal, Plan, PlanLimits, TaskId};
use planex_llm::{CallContext, ChatModel};
use planex_store::{Booking, LedgerError, NewTask, StepSpec, TaskRecord, TaskStatus};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How long the settlement of a task's spend waits for the task to finish.
const SETTLE_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What one submission decided, before the task is started.
struct Admitted {
    plan: Plan,
    specs: Vec<StepSpec>,
    calls: Vec<CallRecord>,
    from_cache: bool,
    replanned: bool,
}

/// Why a recorded task was not started: its terminal status, the reason, the planner calls made
/// and, for a budget refusal, the refusal.
type NotAdmitted = (
    TaskStatus,
    String,
    Vec<CallRecord>,
    Option<Box<BudgetExceeded>>,
);

/// A request checked and resolved against the engine's defaults.
pub(crate) struct Prepared {
    pub(crate) task: String,
    pub(crate) task_id: TaskId,
    pub(crate) max_steps: usize,
    pub(crate) synthesis: bool,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) ctx: CallContext,
}

impl Engine {
    pub(crate) fn prepare(&self, request: &TaskRequest) -> Result<Prepared, EngineError> {
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
        let catalog = match &request.tools {
            Some(names) => Arc::new(self.executor.catalog.subset(names)?),
            None => self.executor.catalog.clone(),
        };
        Ok(Prepared {
            task: task.to_owned(),
            task_id: request.task_id.clone().unwrap_or_else(TaskId::new_random),
            max_steps,
            synthesis: request.synthesis.unwrap_or(self.settings.synthesis),
            catalog,
            ctx: CallContext {
                request_id: request.request_id.clone(),
            },
        })
    }

    /// Records the task, plans it and hands its steps to the store. Returns once the task is
    /// running (or has failed planning). A budget refusal is `EngineError::Budget`; when the task
    /// was already recorded, it is left `rejected` with its planner calls.
    pub async fn submit(&self, request: TaskRequest) -> Result<TaskId, EngineError> {
        let prepared = self.prepare(&request)?;
        let span = tracing::info_span!(
            "invoke_agent",
            otel.name = "invoke_agent planex",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = "planex",
            planex.task_id = %prepared.task_id,
            planex.tenant = request.tenant.as_deref().unwrap_or(""),
        );
        self.submit_prepared(&request, prepared)
            .instrument(span)
            .await
    }

    async fn submit_prepared(
        &self,
        request: &TaskRequest,
        p: Prepared,
    ) -> Result<TaskId, EngineError> {
        let planner = self
            .executor
            .models
            .get(&self.settings.planner_tier)?
            .clone();
        let limits = PlanLimits {
            max_steps: p.max_steps,
        };
        let guard = self.budget.as_ref().filter(|g| g.settings().enabled);
        let accounts =
            guard.map(|g| g.accounts(request.tenant.as_deref(), request.cost_center.as_deref()));
        let cache_key = self
            .plan_cache
            .as_ref()
            .filter(|c| c.settings().enabled)
            .map(|c| c.key(&p.task, planner.model_name(), &p.catalog, p.max_steps));
        let mut cached = None;
        if let (Some(cache), Some(key), false) =
            (&self.plan_cache, &cache_key, request.bypass_cache)
        {
            cached = cache.get(key, &p.catalog, limits).await;
        }
        let plan_reservation = format!("{}/plan", p.task_id);
        if let (Some(guard), Some(accounts), None) = (guard, &accounts, &cached) {
            let prompt = system_prompt(&p.catalog, p.max_steps).len() + p.task.len();
            let estimate =
                guard.planning_estimate(prompt, self.settings.planner.max_tokens, planner.price());
            let denied = guard
                .reserve(plan_reservation.clone(), estimate, None, accounts)
                .await
                .map_err(crate::budget::ledger_down)?;
            if let Some(denial) = denied {
                return Err(Box::new(guard.refusal(&denial, accounts, None, false)).into());
            }
        }
        let created = self
            .store
            .create_task(NewTask {
                task_id: p.task_id.clone(),
                task: p.task.clone(),
                tenant: request.tenant.clone(),
                cost_center: request.cost_center.clone(),
            })
            .await;
        if let Err(error) = created {
            if let Some(guard) = guard {
                let _ = guard.ledger().release(&plan_reservation).await;
            }
            return Err(error.into());
        }
        let admitted = self
            .admit(
                request,
                &p,
                planner.as_ref(),
                cached,
                guard.zip(accounts.as_ref()),
            )
            .await;
        // The planner calls are paid now, whatever the outcome.
        let planner_cost = |calls: &[CallRecord]| calls.iter().map(|c| c.cost_usd).sum::<Decimal>();
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err((status, reason, calls, refusal)) => {
                if let Some(guard) = guard {
                    let _ = guard
                        .ledger()
                        .reconcile(&plan_reservation, planner_cost(&calls))
                        .await;
                }
                tracing::warn!(task = %p.task_id, %reason, "task not started");
                self.store
                    .finish_unplanned(&p.task_id, status, reason, calls)
                    .await?;
                return match refusal {
                    Some(refusal) => Err(EngineError::Budget(refusal)),
                    None => Ok(p.task_id),
                };
            }
        };
        if let (Some(guard), Some(accounts)) = (guard, &accounts) {
            let _ = guard
                .ledger()
                .reconcile(&plan_reservation, planner_cost(&admitted.calls))
                .await;
            let estimate = guard.estimate_steps(&admitted.specs, &self.executor.models);
            let denied = guard
                .reserve(p.task_id.0.clone(), estimate, request.budget_usd, accounts)
                .await
                .map_err(crate::budget::ledger_down);
            let refusal = match denied {
                Ok(None) => None,
                Ok(Some(denial)) => {
                    Some(guard.refusal(&denial, accounts, Some(&p.task_id), admitted.replanned))
                }
                Err(error) => return Err(error),
            };
            if let Some(refusal) = refusal {
                self.store
                    .finish_unplanned(
                        &p.task_id,
                        TaskStatus::Rejected,
                        refusal.to_string(),
                        admitted.calls,
                    )
                    .await?;
                return Err(EngineError::Budget(Box::new(refusal)));
            }
        }
        if let (Some(cache), Some(key), false, false) = (
            &self.plan_cache,
            &cache_key,
            admitted.from_cache,
            admitted.replanned,
        ) {
            cache.put(key, &admitted.plan).await;
        }
        if let Err(error) = self
            .store
            .start_task(&p.task_id, &admitted.plan, admitted.specs, admitted.calls)
            .await
        {
            if let Some(guard) = guard {
                let _ = guard.ledger().release(&p.task_id.0).await;
            }
            return Err(error.into());
        }
        if let Some(guard) = guard {
            let (guard, store, task_id) = (guard.clone(), self.store.clone(), p.task_id.clone());
            // Settles the reservation however the task ends; a waiter may settle first (idempotent).
            tokio::spawn(async move {
                if let Ok(Some(record)) =
                    planex_store::wait_for_task(store.as_ref(), &task_id, SETTLE_WAIT).await
                {
                    guard.settle(&record).await;
                }
            });
        }
        Ok(p.task_id)
    }

    /// Plans the task (or takes the cached plan) and applies the task's own budget: one re-plan
    /// with fewer steps when the estimate is over it. `Err` carries the terminal status, the
    /// reason, the planner calls made and, for a budget refusal, the refusal.
    async fn admit(
        &self,
        request: &TaskRequest,
        p: &Prepared,
        planner: &dyn ChatModel,
        cached: Option<Plan>,
        guard: Option<(&Arc<BudgetGuard>, &Accounts)>,
    ) -> Result<Admitted, NotAdmitted> {
        let mut calls = Vec::new();
        let mut hints = crate::routing::TierHints::new();
        let from_cache = cached.is_some();
        let mut plan = match cached {
            Some(plan) => plan,
            None => {
                let span = tracing::info_span!(
                    "plan",
                    otel.name = "plan planex",
                    gen_ai.operation.name = "plan"
                );
                let limits = PlanLimits {
                    max_steps: p.max_steps,
                };
                match plan_task(
                    planner,
                    &p.catalog,
                    &p.task,
                    limits,
                    &self.settings.planner,
                    &p.ctx,
                )
                .instrument(span)
                .await
                {
                    Ok(planned) => {
                        metrics::histogram!("plan_replans").record(f64::from(planned.replans));
                        calls.extend(planned.calls);
                        hints = planned.tier_hints;
                        planned.plan
                    }
                    Err(failed) => {
                        calls.extend(failed.calls);
                        return Err((TaskStatus::Failed, failed.reason, calls, None));
                    }
                }
            }
        };
        plan.task = p.task.clone();
        let mut specs = self.step_specs_with_hints(&plan, p.synthesis, &hints);
        let (Some((guard, accounts)), Some(budget)) = (guard, request.budget_usd) else {
            return Ok(Admitted {
                plan,
                specs,
                calls,
                from_cache,
                replanned: false,
            });
        };
        let models = &self.executor.models;
        let mut estimate = guard.estimate_steps(&specs, models);
        if estimate <= budget {
            return Ok(Admitted {
                plan,
                specs,
                calls,
                from_cache,
                replanned: false,
            });
        }
        let over = |estimate: Decimal, replanned: bool| {
            let denial = planex_store::Denial {
                account: planex_store::Account::new("reservation", p.task_id.0.clone()),
                limit_usd: budget,
                spent_usd: Decimal::ZERO,
                reserved_usd: Decimal::ZERO,
                requested_usd: estimate,
                over_by_usd: estimate - budget,
            };
            Box::new(guard.refusal(&denial, accounts, Some(&p.task_id), replanned))
        };
        // How many plan steps fit: the budget left after synthesis, over the mean step estimate.
        let (plan_specs, extra): (Vec<&StepSpec>, Vec<&StepSpec>) = specs
            .iter()
            .partition(|s| s.stage == planex_core::Stage::Step);
        let extra_cost: Decimal = extra
            .iter()
            .map(|s| guard.estimate_steps(std::slice::from_ref(*s), models))
            .sum();
        let per_step = (estimate - extra_cost) / Decimal::from(plan_specs.len().max(1) as u64);
        let fit = if per_step > Decimal::ZERO && budget > extra_cost {
            ((budget - extra_cost) / per_step)
                .floor()
                .try_into()
                .unwrap_or(0usize)
        } else {
            0
        };
        let stricter = fit.min(plan.steps.len().saturating_sub(1));
        if stricter == 0 {
            let refusal = over(estimate, false);
            return Err((
                TaskStatus::Rejected,
                refusal.to_string(),
                calls,
                Some(refusal),
            ));
        }
        metrics::counter!("budget_replans_total").increment(1);
        let reason = format!(
            "Budget note: the previous plan had {} steps with an estimated executor cost of ${}, over this task's budget of ${budget}. Plan again with at most {stricter} steps.",
            plan.steps.len(),
            estimate.round_dp(9),
        );
        tracing::info!(task = %p.task_id, stricter, %reason, "re-planning within the budget");
        // The re-plan grows the planning reservation (settled with every planner call at once),
        // or opens it when the first plan came from the cache.
        let plan_id = format!("{}/plan", p.task_id);
        let prompt = system_prompt(&p.catalog, stricter).len() + p.task.len() + reason.len();
        let replan_estimate =
            guard.planning_estimate(prompt, self.settings.planner.max_tokens, planner.price());
        let booked = match guard.ledger().extend(&plan_id, replan_estimate).await {
            Ok(Booking::Granted) => Ok(None),
            Ok(Booking::Denied(denial)) => Ok(Some(denial)),
            Err(LedgerError::UnknownReservation(_)) => {
                guard
                    .reserve(plan_id, replan_estimate, None, accounts)
                    .await
            }
            Err(error) => Err(error),
        };
        match booked {
            Ok(None) => {}
            Ok(Some(denial)) => {
                let refusal = Box::new(guard.refusal(&denial, accounts, Some(&p.task_id), false));
                return Err((
                    TaskStatus::Rejected,
                    refusal.to_string(),
                    calls,
                    Some(refusal),
                ));
            }
            Err(error) => {
                return Err((
                    TaskStatus::Failed,
                    format!("budget check failed: {error}"),
                    calls,
                    None,
                ));
            }
        }
        let limits = PlanLimits {
            max_steps: stricter,
        };
        let text = format!("{}\n\n{reason}", p.task);
        let span = tracing::info_span!(
            "plan",
            otel.name = "plan planex",
            gen_ai.operation.name = "plan",
            planex.replan = "budget"
        );
        let replanned = plan_task(
            planner,
            &p.catalog,
            &text,
            limits,
            &self.settings.planner,
            &p.ctx,
        )
        .instrument(span)
        .await;
        calls.extend(match &replanned {
            Ok(planned) => planned.calls.clone(),
            Err(failed) => failed.calls.clone(),
        });
        match replanned {
            Ok(planned) => {
                plan = planned.plan;
                plan.task = p.task.clone();
                specs = self.step_specs_with_hints(&plan, p.synthesis, &planned.tier_hints);
                estimate = guard.estimate_steps(&specs, models);
                if estimate > budget {
                    let refusal = over(estimate, true);
                    return Err((
                        TaskStatus::Rejected,
                        refusal.to_string(),
                        calls,
                        Some(refusal),
                    ));
                }
                Ok(Admitted {
                    plan,
                    specs,
                    calls,
                    from_cache: false,
                    replanned: true,
                })
            }
            Err(failed) => {
                let refusal = over(estimate, true);
                let reason = format!("{refusal}; the re-plan failed: {}", failed.reason);
                Err((TaskStatus::Rejected, reason, calls, Some(refusal)))
            }
        }
    }

    /// Submits a task and waits for its final record (event driven) up to `timeout`.
    pub async fn run(
        &self,
        request: TaskRequest,
        timeout: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let task_id = self.submit(request).await?;
        self.wait(&task_id, timeout).await
    }

    /// Waits for a task's final record (event driven) up to `timeout`, and settles its spend.
    pub async fn wait(
        &self,
        task_id: &TaskId,
        timeout: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let record = planex_store::wait_for_task(self.store.as_ref(), task_id, timeout)
            .await?
            .ok_or_else(|| EngineError::Timeout(task_id.clone()))?;
        if let Some(guard) = &self.budget {
            guard.settle(&record).await;
        }
        Ok(record)
    }
}
