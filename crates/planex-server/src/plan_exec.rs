//! `POST /v1/plan` (plan without running) and `POST /v1/execute` (one step on its tier).
//!
//! Key decision: `/v1/execute` validates the step by every rule a lone step can be held to (its
//! id, tool, args against the tool's input schema, placeholders only to its `depends_on`, each
//! with a result in `results`) before any model call and answers 422 naming the rule; only a
//! valid step reaches the tier, where it runs with the tier's retry policy and escalation exactly
//! as a plan step does. The old `{tool_name, args}` body is the same request with step id 1 and
//! no dependencies.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, RequestId};
use crate::views::{CostView, ExecuteRequest, ExecuteView, PlanRequest, PlanView};
use axum::extract::State;
use planex_core::{CostBreakdown, StepId};
use planex_engine::{PreviewError, StepRejected, TaskRequest};
use planex_llm::CallContext;
use serde_json::json;
use std::collections::BTreeMap;

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

/// Run one step: validated (422 naming the rule), its placeholders filled in from `results`, then
/// run on its tier with retries. Takes `{tool_name, args}` or the reference design's sub-task
/// `{step_id, tool_name, args, depends_on}` with optional `task_id` and `results`.
#[utoipa::path(post, path = "/v1/execute", tag = "plan",
    request_body = ExecuteRequest,
    responses(
        (status = 200, body = ExecuteView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The API key may not charge the `X-Cost-Center` named", body = ErrorBody),
        (status = 422, description = "The step breaks a rule (`details.rule`: `shape`, `step_id_out_of_range`, `unknown_tool`, `invalid_args`, `cycle`, `placeholder_not_in_depends_on`), or a placeholder's result is missing from `results` (`missing_result`, `missing_field`)", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 502, description = "The tier or tool failed after retries (a 4xx from an `http` tool is not retried)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    ApiJson(body): ApiJson<ExecuteRequest>,
) -> Result<axum::Json<ExecuteView>, ApiError> {
    let ctx = CallContext::with_request_id(request_id.0);
    let results = prior_results(body.results.unwrap_or_default())?;
    let step = json!({
        "step_id": body.step_id.unwrap_or_else(|| json!(1)),
        "tool_name": body.tool_name,
        "args": body.args,
        "depends_on": body.depends_on.unwrap_or_else(|| json!([])),
    });
    if let Some(task_id) = &body.task_id {
        tracing::info!(task = %task_id, "executing a sub-task of a client's task");
    }
    let run = state
        .engine()
        .execute_step(
            step,
            &results,
            caller.tenant.as_deref(),
            caller.cost_center.as_deref(),
            &ctx,
        )
        .await
        .map_err(|rejected| match rejected {
            StepRejected::Invalid(ref rule) => {
                ApiError::validation(rejected.to_string(), rule.details())
            }
            StepRejected::Placeholder(ref error) => ApiError::validation(
                rejected.to_string(),
                json!({"rule": error.rule(), "step_id": error.step().map(|s| s.0), "error": error.to_string()}),
            ),
            StepRejected::Engine(e) => ApiError::from(e),
        })?;
    let cost = CostView::new(
        &CostBreakdown::from_records(&run.calls),
        caller.cost_center.as_deref().unwrap_or("default"),
    );
    match run.result {
        Ok(result) => Ok(axum::Json(ExecuteView {
            step_id: run.step.step_id.0,
            task_id: body.task_id,
            tool_name: run.step.tool_name,
            args: run.step.args,
            result,
            attempts: run.attempts,
            cost,
        })),
        Err(error) => Err(ApiError::upstream(error)
            .with_details(json!({"attempts": run.attempts, "cost_usd": cost.total.cost_usd}))),
    }
}

/// `results` keyed by step id: each key a step id (`"2"`), else 422 naming the key.
fn prior_results(
    results: serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<StepId, serde_json::Value>, ApiError> {
    results
        .into_iter()
        .map(|(key, value)| match key.trim().parse::<u32>() {
            Ok(id) if (1..=StepId::MAX.0).contains(&id) => Ok((StepId(id), value)),
            _ => Err(ApiError::validation(
                format!(
                    "results key {key:?} is not a step id; key each prior result by its step id (1 to {})",
                    StepId::MAX
                ),
                json!({"rule": "results_key", "key": key}),
            )),
        })
        .collect()
}
