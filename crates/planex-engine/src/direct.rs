//! Calls outside a task: plan only (`POST /v1/plan`) and one step (`POST /v1/execute`), each
//! under the same budget guard as tasks.
//!
//! Key decision: both book an estimate in the spend ledger before any model call and settle it
//! with the real cost afterwards, so the single-call APIs cannot be used to slip past a tenant's
//! monthly budget; a step's args are validated against its tool's schema before anything is booked.

use crate::{Engine, EngineError, PlanningFailed, TaskRequest, plan_task, system_prompt};
use planex_core::{CallRecord, Decimal, Plan, PlanLimits, StepId};
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
    /// Plans a task without running it (cache first), charging the planner call to the caller.
    pub async fn plan_only(&self, request: &TaskRequest) -> Result<PlanPreview, PreviewError> {
        let p = self.prepare(request)?;
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
        let cache = self.plan_cache.as_ref().filter(|c| c.settings().enabled);
        let key = cache.map(|c| c.key(&p.task, planner.model_name(), &p.catalog, p.max_steps));
        let estimate = |plan: &Plan| match guard {
            Some(guard) => {
                guard.estimate_steps(&self.step_specs(plan, p.synthesis), &self.executor.models)
            }
            None => Decimal::ZERO,
        };
        if let (Some(cache), Some(key), false) = (cache, &key, request.bypass_cache)
            && let Some(mut plan) = cache.get(key, &p.catalog, limits).await
        {
            plan.task = p.task.clone();
            let estimate_usd = estimate(&plan);
            return Ok(PlanPreview {
                plan,
                calls: Vec::new(),
                cached: true,
                estimate_usd,
            });
        }
        let reservation = format!("{}/plan", p.task_id);
        if let (Some(guard), Some(accounts)) = (guard, &accounts) {
            let prompt = system_prompt(&p.catalog, p.max_steps).len() + p.task.len();
            let amount =
                guard.planning_estimate(prompt, self.settings.planner.max_tokens, planner.price());
            if let Some(denial) = guard
                .reserve(reservation.clone(), amount, None, accounts)
                .await
                .map_err(crate::budget::ledger_down)?
            {
                return Err(EngineError::Budget(Box::new(
                    guard.refusal(&denial, accounts, None, false),
                ))
                .into());
            }
        }
        let outcome = plan_task(
            planner.as_ref(),
            &p.catalog,
            &p.task,
            limits,
            &self.settings.planner,
            &p.ctx,
        )
        .await;
        let calls = match &outcome {
            Ok(planned) => &planned.calls,
            Err(failed) => &failed.calls,
        };
        if let Some(guard) = guard {
            let cost = calls.iter().map(|c| c.cost_usd).sum();
            let _ = guard.ledger().reconcile(&reservation, cost).await;
        }
        let planned = outcome.map_err(PreviewError::Planning)?;
        let mut plan = planned.plan;
        plan.task = p.task.clone();
        if let (Some(cache), Some(key)) = (cache, &key) {
            cache.put(key, &plan).await;
        }
        let estimate_usd = estimate(&plan);
        Ok(PlanPreview {
            plan,
            calls: planned.calls,
            cached: false,
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
                .map_err(crate::budget::ledger_down)?
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
            let cost = outcome.calls.iter().map(|c| c.cost_usd).sum();
            let _ = guard.ledger().reconcile(&reservation, cost).await;
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
