//! Calls outside a task: plan only (`POST /v1/plan`) and one step (`POST /v1/execute`), each
//! under the same budget guard as tasks.
//!
//! Key decision: both book an estimate in the spend ledger before any model call and settle it
//! with the real cost afterwards, so the single-call APIs cannot be used to slip past a tenant's
//! monthly budget; a step's args are validated against its tool's schema before anything is booked.

use crate::admission::{Admission, cost_of};
use crate::{Engine, EngineError, PlanningFailed, TaskRequest};
use planex_core::{CallRecord, Decimal, Plan, StepId};
use planex_llm::CallContext;
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
    /// The result, or why it failed.
    pub result: Result<serde_json::Value, String>,
    /// Attempts made.
    pub attempts: u32,
    /// Priced calls made.
    pub calls: Vec<CallRecord>,
}

/// Why a single step was not run.
#[derive(Debug, thiserror::Error)]
pub enum StepRejected {
    /// The tool is not in the catalog.
    #[error("unknown tool {tool:?}; known tools: {}", .known.join(", "))]
    UnknownTool {
        /// The name given.
        tool: String,
        /// Every tool.
        known: Vec<String>,
    },
    /// The args do not match the tool's input schema.
    #[error("args of tool {tool} do not match its input schema: {}", .errors.join("; "))]
    InvalidArgs {
        /// The tool.
        tool: String,
        /// Each violation with its JSON path.
        errors: Vec<String>,
    },
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

    /// Validates one step's args against its tool's schema, then runs it on its tier (retries and
    /// escalation as in a plan), charging the caller's tenant and cost center.
    pub async fn execute_step(
        &self,
        tool_name: &str,
        args: &serde_json::Map<String, serde_json::Value>,
        tenant: Option<&str>,
        cost_center: Option<&str>,
        ctx: &CallContext,
    ) -> Result<StepRun, StepRejected> {
        let catalog = &self.executor.catalog;
        let Some(tool) = catalog.get(tool_name) else {
            return Err(StepRejected::UnknownTool {
                tool: tool_name.to_owned(),
                known: catalog.names(),
            });
        };
        catalog
            .validate_args(tool_name, args)
            .map_err(|errors| StepRejected::InvalidArgs {
                tool: tool_name.to_owned(),
                errors,
            })?;
        let guard: Option<&Arc<crate::BudgetGuard>> =
            self.budget.as_ref().filter(|g| g.settings().enabled);
        let reservation = format!("execute/{}", uuid_like());
        if let Some(guard) = guard {
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
            .call_tool(tool_name, args, StepId(1), ctx)
            .await;
        if let Some(guard) = guard {
            guard
                .settle_reservation(&reservation, cost_of(&outcome.calls))
                .await;
        }
        Ok(StepRun {
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
