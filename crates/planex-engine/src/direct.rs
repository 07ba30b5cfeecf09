//! Calls outside a task: plan only (`POST /v1/plan`) and one step (`POST /v1/execute`), each
//! under the same budget guard as tasks.
//!
//! Key decision: both book an estimate in the spend ledger before any model call and settle it
//! with the real cost afterwards, so the single-call APIs cannot be used to slip past a tenant's
//! monthly budget; a step is validated (its shape, tool, args against the tool's schema, and
//! placeholders only to its dependencies, filled in from the results the caller passes) before
//! anything is booked.

use crate::admission::{Admission, cost_of};
use crate::{Engine, EngineError, PlanningFailed, TaskRequest};
use planex_core::{
    CallRecord, Decimal, Plan, PlanError, Step, StepId, TemplateError, substitute_args,
};
use planex_llm::CallContext;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A plan made without running it.
#[derive(Debug, Clone)]
pub struct PlanPreview {
    /// The validated plan.
    pub plan: Plan,
    /// Priced planner calls (none on a cache hit).
    pub calls: Vec<CallRecord>,
    /// Whether the plan came from the cache.
    pub cached: bool,
    /// Estimated executor cost of running it (synthesis included when the engine adds it).
    pub estimate_usd: Decimal,
}

/// Why a plan-only request failed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The request or a budget refused it.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The planner failed or returned invalid plans twice.
    #[error(transparent)]
    Planning(PlanningFailed),
}

/// What a single step did.
#[derive(Debug, Clone)]
pub struct StepRun {
    /// The step that ran (its placeholders filled in).
    pub step: Step,
    /// The result, or why it failed.
    pub result: Result<serde_json::Value, String>,
    /// Attempts made.
    pub attempts: u32,
    /// Priced calls made.
    pub calls: Vec<CallRecord>,
}

/// Why a single step was not run (nothing was booked or called).
#[derive(Debug, thiserror::Error)]
pub enum StepRejected {
    /// The step breaks a plan rule that needs no other step: its shape or id, an unknown tool,
    /// args not valid against the tool's schema, a placeholder to a step not in `depends_on`.
    #[error("the step was refused: {0}")]
    Invalid(#[source] PlanError),
    /// A placeholder names a dependency whose result was not given (or a field it lacks).
    #[error(
        "the step's placeholders cannot be filled in: {0}; pass each dependency's result in results"
    )]
    Placeholder(#[source] TemplateError),
    /// A budget refused it, or the ledger failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Plans a task without running it, through the same admission stages as a task (prepare,
    /// reserve, plan or cache), charging the planner call to the caller.
    pub async fn plan_only(&self, request: &TaskRequest) -> Result<PlanPreview, PreviewError> {
        let p = self.prepare(request).await?;
        let planner = self.planner()?;
        let charge = self.charge(request);
        let (cache_key, cached) = self.cached_plan(request, &p, planner.model_name()).await;
        if let Some(charge) = &charge {
            self.reserve_planning(&p, planner.as_ref(), charge, cached.is_some())
                .await?;
        }
        let metered = match &charge {
            Some(charge) => charge.metered(&planner, &p),
            None => planner.clone(),
        };
        let admission = self.plan_or_cache(&p, metered.as_ref(), cached).await;
        if let Some(charge) = &charge {
            let cost = cost_of(admission.calls());
            charge.guard.settle_reservation(&p.task_id.0, cost).await;
        }
        let admitted = match admission {
            Admission::Admitted(admitted) => admitted,
            Admission::PlanningFailed(failed) => return Err(PreviewError::Planning(failed)),
            Admission::Refused { refusal, .. } => return Err(EngineError::Budget(refusal).into()),
        };
        if let (Some(cache), Some(key), false) = (&self.plan_cache, &cache_key, admitted.from_cache)
        {
            cache.put(key, &admitted.plan).await;
        }
        let estimate_usd = match &charge {
            Some(charge) => charge
                .guard
                .estimate_steps(&admitted.specs, &self.executor.models),
            None => Decimal::ZERO,
        };
        Ok(PlanPreview {
            plan: admitted.plan,
            calls: admitted.calls,
            cached: admitted.from_cache,
            estimate_usd,
        })
    }

    /// Runs one step outside any task (`POST /v1/execute`): `step` is its JSON
    /// (`{step_id, tool_name, args, depends_on}`), validated by every rule a lone step can be
    /// held to ([`Step::validate`]); its `{step_N_result}` placeholders are filled in from
    /// `results` (prior results by step id) with the templating plan steps use, and the final
    /// args are checked against the tool's schema again. Only then is its estimate booked
    /// against the caller's tenant and cost center and the step run on its tier (retries and
    /// escalation as in a plan; an `http` tool gets `X-Step-ID` and `X-Request-ID`).
    pub async fn execute_step(
        &self,
        step: serde_json::Value,
        results: &BTreeMap<StepId, serde_json::Value>,
        tenant: Option<&str>,
        cost_center: Option<&str>,
        ctx: &CallContext,
    ) -> Result<StepRun, StepRejected> {
        let catalog = self.executor.catalog.current();
        let mut step = Step::validate(step, &catalog).map_err(StepRejected::Invalid)?;
        step.args = substitute_args(&step.args, results).map_err(StepRejected::Placeholder)?;
        catalog
            .validate_args(&step.tool_name, &step.args)
            .map_err(|errors| {
                StepRejected::Invalid(PlanError::InvalidArgs {
                    step_id: step.step_id,
                    tool: step.tool_name.clone(),
                    errors,
                })
            })?;
        let tool_name = step.tool_name.as_str();
        let guard: Option<&Arc<crate::BudgetGuard>> =
            self.budget.as_ref().filter(|g| g.settings().enabled);
        let reservation = format!("execute/{}", uuid_like());
        if let (Some(guard), Some(tool)) = (guard, catalog.get(tool_name)) {
            let accounts = guard.accounts(tenant, cost_center);
            let price = self
                .executor
                .models
                .get(&tool.tier)
                .map_err(StepRejected::Engine)?
                .price()
                .clone();
            let amount = guard.step_estimate(tool_name, &price);
            if let Some(denial) = guard
                .reserve(reservation.clone(), amount, None, &accounts)
                .await
                .map_err(crate::error::ledger_down)?
            {
                return Err(EngineError::Budget(Box::new(
                    guard.refusal(&denial, &accounts, None, false),
                ))
                .into());
            }
        }
        let outcome = self
            .executor
            .call_tool(tool_name, &step.args, step.step_id, ctx)
            .await;
        if let Some(guard) = guard {
            guard
                .settle_reservation(&reservation, cost_of(&outcome.calls))
                .await;
        }
        Ok(StepRun {
            step,
            result: outcome.result,
            attempts: outcome.attempts,
            calls: outcome.calls,
        })
    }
}

/// A unique id for a single-step reservation.
fn uuid_like() -> String {
    planex_core::TaskId::new_random().0
}
