//! `POST /v1/tasks`, `GET /v1/tasks/{id}` and `GET /v1/tasks/{id}/events` (Server-Sent Events).
//!
//! Key decision: submission answers `202` with the task's id and location as soon as the task is
//! recorded, *before* planning (which runs in the background, so a client that disconnects never
//! cancels or orphans an accepted task), unless `?wait=true`, which waits for planning (a budget
//! refusal of the plan is its `429`) and then on the task's events (never by polling) up to a
//! capped timeout, answering `202` with the current state if the task is still running; waits and
//! event streams end early on shutdown so a graceful stop is not held open by clients.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestId};
use crate::idempotency::{self, Claim};
use crate::redact;
use crate::views::{Accepted, SubmitQuery, SubmitTask, TaskView};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use planex_core::{Stage, TaskId};
use planex_engine::{EngineError, TaskRequest};
use planex_store::{StoreError, TaskRecord, TaskStatus};
use std::time::Duration;

/// Builds the engine request of a submission (shared with the OpenAI endpoint).
pub(crate) fn task_request(
    body: &SubmitTask,
    caller: &Caller,
    request_id: &RequestId,
) -> Result<TaskRequest, ApiError> {
    let cost_center = match &body.cost_center {
        Some(cc) => Some(caller.charge(cc)?),
        None => caller.cost_center.clone(),
    };
    Ok(TaskRequest {
        task: body.task.clone(),
        plan: body.plan.clone(),
        max_subtasks: body.max_subtasks,
        synthesis: body.synthesis,
        tools: body.tools.clone(),
        tenant: caller.tenant.clone(),
        cost_center,
        request_id: Some(request_id.0.clone()),
        budget_usd: body.budget_usd,
        bypass_cache: body.cache == Some(false),
        task_type: body.task_type.clone(),
        ..TaskRequest::default()
    })
}

/// Waits for a task up to `timeout` (or shutdown); `None` when it is still running.
pub(crate) async fn wait_for(
    state: &AppState,
    task_id: &TaskId,
    timeout: Duration,
) -> Result<Option<TaskRecord>, ApiError> {
    let engine = state.engine();
    tokio::select! {
        waited = engine.wait(task_id, timeout) => match waited {
            Ok(record) => Ok(Some(record)),
            Err(EngineError::Timeout(_)) => Ok(None),
            Err(other) => Err(other.into()),
        },
        _ = state.shutdown_token().cancelled() => Ok(None),
    }
}

/// Reads a task the caller owns; another tenant's task is "not found".
pub(crate) async fn owned_task(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<TaskRecord, ApiError> {
    let not_found = || ApiError::not_found(format!("no task {id}"));
    let record = state
        .engine()
        .store()
        .get_task(&TaskId::from(id))
        .await?
        .ok_or_else(not_found)?;
    if !caller.owns(record.tenant.as_deref()) {
        return Err(not_found());
    }
    Ok(record)
}

/// Submit a task: accept it (`202` with its id before planning), plan it and run it in the
/// background (optionally waiting for the result). With `plan`, the client's plan is validated
/// at once (422 naming the rule and the step) and run without a planner call.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks",
    request_body = SubmitTask, params(SubmitQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key (per tenant, remembered 24 h) return the first task instead of creating another")),
    responses(
        (status = 200, description = "Finished (`?wait=true`)", body = TaskView),
        (status = 202, description = "Accepted: planning (or running, or still running after the wait); without `?wait=true` a plan over budget ends the task `rejected`. A retry with the same `Idempotency-Key` answers the same task again", body = Accepted),
        (status = 400, description = "Malformed request: unknown fields, an empty or over-long task text (`[engine] max_task_chars`), no tools available (`tools: []`), unknown tools, `max_subtasks` out of range or given with a `plan`", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 403, description = "The API key may not charge the cost center named by `X-Cost-Center` or the body", body = ErrorBody),
        (status = 409, description = "`submission_in_progress`: the first submission with this `Idempotency-Key` has not recorded its task yet (or was cut off before it did); retry after `Retry-After`", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 422, description = "The `plan` breaks a plan rule (`validation_failed`; `details.rule`, `details.step_id` / `details.step_index` name the rule and the step; nothing was recorded or billed), or the `Idempotency-Key` was used for another request (`idempotency_key_reused`)", body = ErrorBody),
        (status = 429, description = "A budget refused the task (see `Retry-After`); for a `plan`, decided at once from its estimate", body = ErrorBody),
        (status = 503, description = "With `?wait=true`: no planner call succeeded (the planner tier failed or planning passed its deadline); submit again after `Retry-After`. The task stays `failed` under the id in `details.task_id`", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    ApiJson(body): ApiJson<SubmitTask>,
) -> Result<Response, ApiError> {
    let claim = idempotency::claim(
        &state,
        &caller,
        &headers,
        "tasks",
        &(&body, &caller.cost_center),
    )
    .await?;
    let task_id = match &claim {
        // A retry: the task exists (or is being accepted by the first request); nothing new.
        Claim::Existing(task_id) => idempotency::existing_task(&state, task_id.clone()).await?,
        _ => {
            let accepted = match accept(&state, &body, &caller, &request_id, &claim).await {
                Ok(accepted) => accepted,
                Err(error) => {
                    claim.refused(&state).await;
                    return Err(error);
                }
            };
            claim.recorded(&state).await;
            let task_id = accepted.task_id.clone();
            if query.wait {
                // Planning runs on without this request: a client that gives up here orphans
                // nothing.
                accepted.admitted().await?;
            }
            task_id
        }
    };
    if query.wait {
        let limit = state.server_settings().wait_timeout;
        let timeout = query
            .timeout_secs
            .map_or(limit, |s| Duration::from_secs(s).min(limit));
        if let Some(record) = wait_for(&state, &task_id, timeout).await? {
            if let Some(error) = planner_unavailable(&record) {
                return Err(error);
            }
            return Ok((StatusCode::OK, axum::Json(TaskView::from(&record))).into_response());
        }
    }
    accepted_response(&state, &task_id).await
}

/// How long a client is asked to wait before it submits again after the planner tier failed.
const PLANNER_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A task that failed because no planner call succeeded (the planner tier answered errors, or
/// planning passed its deadline) is a retryable `503` to a waiting client, not a `200` with status
/// `failed`: the planner tier is not retried by planex itself (re-planning beats retrying), so the
/// client decides. The record keeps the cause (it may name internal endpoints, so the answer does
/// not); the task stays `failed` under its id.
fn planner_unavailable(record: &TaskRecord) -> Option<ApiError> {
    let failed_planning = record.status == TaskStatus::Failed
        && record.plan.is_none()
        && record.calls.iter().all(|c| c.stage != Stage::Plan);
    let cause = record.error.as_deref().unwrap_or_default();
    if !failed_planning || cause.contains("budget_exhausted") {
        return None;
    }
    tracing::warn!(task = %record.task_id, cause, "the planner tier failed; answering 503");
    Some(
        ApiError::unavailable(format!(
            "the planner tier failed, so task {} was not planned; submit it again after {} s \
             (the failed task stays readable at GET /v1/tasks/{})",
            record.task_id,
            PLANNER_RETRY_AFTER.as_secs(),
            record.task_id
        ))
        .with_retry_after(PLANNER_RETRY_AFTER)
        .with_details(serde_json::json!({"task_id": record.task_id, "status": record.status})),
    )
}

/// Accepts a submission (under the task id its idempotency claim chose, if any).
async fn accept(
    state: &AppState,
    body: &SubmitTask,
    caller: &Caller,
    request_id: &RequestId,
    claim: &Claim,
) -> Result<planex_engine::Accepted, ApiError> {
    let slot = caller.task_slot(state)?;
    let mut request = task_request(body, caller, request_id)?;
    request.task_id = claim.task_id();
    let accepted = state.engine().accept(request).await?;
    if let Some(slot) = slot {
        slot.hold_until_done(state.engine().store().clone(), accepted.task_id.clone());
    }
    Ok(accepted)
}

/// The `202 Accepted` answer for a task: its id, current status and where to read it.
pub(crate) async fn accepted_response(
    state: &AppState,
    task_id: &TaskId,
) -> Result<Response, ApiError> {
    let location = format!("/v1/tasks/{task_id}");
    let status = state
        .engine()
        .store()
        .get_task(task_id)
        .await?
        .map(|r| r.status.to_string())
        .unwrap_or_default();
    let accepted = Accepted {
        task_id: task_id.0.clone(),
        status,
        events: format!("{location}/events"),
        location: location.clone(),
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(accepted),
    )
        .into_response())
}

/// Read a task: status, plan, steps, answer and cost breakdown.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task for this tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let record = owned_task(&state, &caller, &id).await?;
    Ok(axum::Json(TaskView::from(&record)))
}

/// Cancel a task: no step is started any more (steps not started become `skipped`, reason
/// `cancelled`), the task ends `cancelled` with its cost so far. Steps already running finish and
/// their calls are recorded (billed), but their results start no dependents.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled: the task as it is now (status `cancelled`)", body = TaskView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task for this tenant", body = ErrorBody),
        (status = 409, description = "The task had finished already (`details.status` says how); nothing changed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let record = owned_task(&state, &caller, &id).await?;
    match state.engine().cancel(&record.task_id).await {
        Ok(record) => Ok(axum::Json(TaskView::from(&record))),
        Err(EngineError::Store(StoreError::WrongStatus { status, .. })) => {
            Err(ApiError::conflict(format!(
                "task {id} is {status} already; only a planning or running task can be cancelled"
            ))
            .with_details(serde_json::json!({"status": status})))
        }
        Err(error) => Err(error.into()),
    }
}

/// Stream a task's events: its history, then live events, ending after `task_completed`.
#[utoipa::path(get, path = "/v1/tasks/{id}/events", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "text/event-stream; event names: step_planned (a streamed plan's step accepted), replanned, planned, step_started, step_completed, step_failed, step_skipped, answer_delta, task_completed", content_type = "text/event-stream", body = String),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = owned_task(&state, &caller, &id).await?;
    let stream = state.engine().store().events(&record.task_id).await?;
    let shutdown = state.shutdown_token().clone().cancelled_owned();
    let sse = stream
        .map(|event| {
            let mut value = serde_json::to_value(&event).unwrap_or_default();
            redact::error_fields(&mut value);
            let name = value
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("event")
                .to_owned();
            let mut sse = Event::default().event(name);
            // Transient events (seq 0, `answer_delta`) are not in the history: no id to resume at.
            if event.seq != 0 {
                sse = sse.id(event.seq.to_string());
            }
            Ok::<Event, std::convert::Infallible>(sse.data(value.to_string()))
        })
        .take_until(shutdown);
    Ok(Sse::new(sse)
        .keep_alive(KeepAlive::default())
        .into_response())
}
