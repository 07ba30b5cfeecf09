//! `POST /v1/plan` (plan without running) and `POST /v1/execute` (one step on its tier).
//!
//! Key decision: `/v1/execute` validates the step against its tool's input schema before any model
//! call and answers 422 naming each violation; only a valid step reaches the tier, where it runs
//! with the tier's retry policy and escalation exactly as a plan step does.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, RequestId};
use crate::views::{CostView, ExecuteRequest, ExecuteView, PlanRequest, PlanView};
use axum::extract::State;
use planex_core::CostBreakdown;
use planex_engine::{PreviewError, StepRejected, TaskRequest};
use planex_llm::CallContext;
use serde_json::json;

/// Plan a task without running it (the plan cache is used; the planner call is charged).
#[utoipa::path(post, path = "/v1/plan", tag = "plan",
    request_body = PlanRequest,
    responses(
        (status = 200, body = PlanView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The API key may not charge the `X-Cost-Center` named", body = ErrorBody),
        (status = 422, description = "The planner returned invalid plans twice", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The planner tier failed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn plan(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    ApiJson(body): ApiJson<PlanRequest>,
) -> Result<axum::Json<PlanView>, ApiError> {
    let request = TaskRequest {
        task: body.task,
        max_subtasks: body.max_subtasks,
        tools: body.tools,
        tenant: caller.tenant.clone(),
        cost_center: caller.cost_center.clone(),
        request_id: Some(request_id.0),
        bypass_cache: body.cache == Some(false),
        ..TaskRequest::default()
    };
    let preview = state
        .engine()
        .plan_only(&request)
        .await
        .map_err(|error| match error {
            PreviewError::Engine(e) => ApiError::from(e),
            PreviewError::Planning(failed) => match &failed.plan_error {
                Some(rule) => ApiError::validation(
                    failed.reason.clone(),
                    json!({"rule": rule.rule(), "error": rule.to_string()}),
                ),
                None => ApiError::unavailable(failed.reason),
            },
        })?;
    let cost_center = caller.cost_center.as_deref().unwrap_or("default");
    Ok(axum::Json(PlanView {
        plan: serde_json::to_value(&preview.plan).unwrap_or_default(),
        cached: preview.cached,
        estimated_cost_usd: preview.estimate_usd,
        cost: CostView::new(&CostBreakdown::from_records(&preview.calls), cost_center),
    }))
}

/// Run one step: validated against its tool's schema (422), then run on its tier with retries.
#[utoipa::path(post, path = "/v1/execute", tag = "plan",
    request_body = ExecuteRequest,
    responses(
        (status = 200, body = ExecuteView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The API key may not charge the `X-Cost-Center` named", body = ErrorBody),
        (status = 422, description = "Unknown tool or args not valid against its schema", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 502, description = "The tier or tool failed after retries", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    ApiJson(body): ApiJson<ExecuteRequest>,
) -> Result<axum::Json<ExecuteView>, ApiError> {
    let ctx = CallContext::with_request_id(request_id.0);
    let run = state
        .engine()
        .execute_step(
            &body.tool_name,
            &body.args,
            caller.tenant.as_deref(),
            caller.cost_center.as_deref(),
            &ctx,
        )
        .await
        .map_err(|rejected| match rejected {
            StepRejected::UnknownTool {
                ref tool,
                ref known,
            } => ApiError::validation(
                rejected.to_string(),
                json!({"rule": "unknown_tool", "tool": tool, "known": known}),
            ),
            StepRejected::InvalidArgs {
                ref tool,
                ref errors,
            } => ApiError::validation(
                rejected.to_string(),
                json!({"rule": "invalid_args", "tool": tool, "errors": errors}),
            ),
            StepRejected::Engine(e) => ApiError::from(e),
        })?;
    let cost = CostView::new(
        &CostBreakdown::from_records(&run.calls),
        caller.cost_center.as_deref().unwrap_or("default"),
    );
    match run.result {
        Ok(result) => Ok(axum::Json(ExecuteView {
            tool_name: body.tool_name,
            result,
            attempts: run.attempts,
            cost,
        })),
        Err(error) => Err(ApiError::upstream(error)
            .with_details(json!({"attempts": run.attempts, "cost_usd": cost.total.cost_usd}))),
    }
}
