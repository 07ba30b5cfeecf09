//! `POST /v1/chat/completions` with `model: "planex"`: the agent behind the OpenAI wire format,
//! so any OpenAI client can use it; and `GET /v1/models`.
//!
//! Key decisions: the last user message is the task; the answer is the task's answer, `usage` sums
//! every model call the task made, and the task id, status, cost breakdown and missing steps ride
//! in an extra `planex` field that OpenAI clients ignore. OpenAI's answer parameters (length,
//! sampling, stop, response format) are applied by the task's synthesis call. A task that does not
//! succeed is an OpenAI-shaped error (`outcome.rs`), never a `200` whose answer is an error text.
//! When streaming, step progress is sent as `delta.reasoning_content` (the field reasoning-model
//! UIs show as "thinking") so the `content` the client assembles is exactly the answer.

mod errors;
mod fields;
pub(crate) mod models;
mod outcome;
mod request;
mod stream;

pub use errors::openai_errors;
pub use models::{list_models, retrieve_model};
pub use request::{ChatCompletionRequest, ChatMessageIn, Stop, StreamOptions};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, RequestId};
use crate::idempotency::{self, Claim};
use crate::tasks::{task_request, wait_for};
use crate::views::SubmitTask;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use fields::{planex_extra, unix_now, usage_of};
use planex_core::TaskId;
use serde_json::json;

/// What one chat completion asks for, besides the task.
struct Asked {
    max_tokens: Option<u32>,
    partial_is_error: bool,
}

/// Run the last user message as a planex task and answer in the OpenAI format.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "An OpenAI `chat.completion` (or `chat.completion.chunk` events when streaming) with an extra `planex` field carrying the task id, status, cost breakdown and `failed_steps` (the steps of a partial task that did not complete)", body = Object),
        (status = 400, description = "Invalid or unsupported parameter (`error.param` names it)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The API key may not charge the `X-Cost-Center` named", body = ErrorBody),
        (status = 404, description = "Unknown model (`code: model_not_found`)", body = ErrorBody),
        (status = 409, description = "The task was cancelled (`code: task_cancelled`)", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 414, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "A budget refused the task (see `Retry-After`)", body = ErrorBody),
        (status = 502, description = "The planner or every step failed, or the answer did not match `response_format` (`code`: `planner_failed`, `steps_failed`, `task_partial`)", body = ErrorBody),
        (status = 503, description = "A tier has no healthy endpoint (`code: tier_unavailable`), or the planner tier failed", body = ErrorBody),
        (status = 504, description = "Planning or the task passed its time limit (`code: timeout`)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let agent = state.server_settings().agent_name.clone();
    if body.model != agent {
        return Err(ApiError::not_found(format!(
            "model {:?} is not served here; use model {agent:?} (GET /v1/models lists it)",
            body.model
        ))
        .with_param("model")
        .with_code("model_not_found"));
    }
    body.check_supported()?;
    let answer = body.answer_options()?;
    let submit = SubmitTask {
        task: body.task()?,
        plan: None,
        budget_usd: body.budget_usd,
        max_subtasks: body.max_subtasks,
        cost_center: None,
        tools: None,
        synthesis: None,
        cache: None,
        task_type: body.task_type()?,
    };
    let asked = Asked {
        max_tokens: answer.max_tokens,
        partial_is_error: state.server_settings().agent_partial_is_error,
    };
    let task_id = submit_once(
        &state,
        &caller,
        &request_id,
        &headers,
        &submit,
        (answer, body.user.clone()),
    )
    .await?;
    let id = format!("chatcmpl-{task_id}");
    if body.stream {
        return Ok(stream::respond(
            state,
            task_id,
            stream::Chunks::new(id, agent),
            body.include_usage(),
            (asked.max_tokens, asked.partial_is_error),
        ));
    }
    let timeout = state.server_settings().wait_timeout;
    let record = match wait_for(&state, &task_id, timeout).await? {
        Some(record) => record,
        None => {
            return Err(ApiError::timeout(format!(
                "task {task_id} is still running after {} s ([server] wait_timeout_secs); it runs on: read it with GET /v1/tasks/{task_id}",
                timeout.as_secs()
            ))
            .with_code("timeout")
            .with_details(json!({"task_id": task_id})));
        }
    };
    let done = outcome::answer(&record, asked.max_tokens, asked.partial_is_error)?;
    Ok(axum::Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": agent,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": done.content, "refusal": null},
            "logprobs": null,
            "finish_reason": done.finish_reason,
        }],
        "usage": usage_of(&record),
        "planex": planex_extra(&record, &done.failed_steps),
    }))
    .into_response())
}

/// Accepts the task and waits for its planning, or (a retry with the same `Idempotency-Key`)
/// finds the task the first attempt created.
async fn submit_once(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    headers: &HeaderMap,
    submit: &SubmitTask,
    (answer, end_user): (planex_core::AnswerOptions, Option<String>),
) -> Result<TaskId, ApiError> {
    let claim = idempotency::claim(
        state,
        caller,
        headers,
        "chat",
        &(submit, &caller.cost_center, &answer, &end_user),
    )
    .await?;
    if let Claim::Existing(task_id) = claim {
        return idempotency::existing_task(state, task_id).await;
    }
    let slot = match caller.task_slot(state) {
        Ok(slot) => slot,
        Err(error) => {
            claim.refused(state).await;
            return Err(error);
        }
    };
    let mut request = match task_request(submit, caller, request_id) {
        Ok(request) => request,
        Err(error) => {
            claim.refused(state).await;
            return Err(error);
        }
    };
    request.task_id = claim.task_id();
    request.answer = answer;
    request.end_user = end_user;
    // Accepted first, so planning runs on (and nothing is orphaned) if the client goes away.
    match state.engine().accept(request).await {
        Ok(accepted) => {
            claim.recorded(state).await;
            if let Some(slot) = slot {
                slot.hold_until_done(state.engine().store().clone(), accepted.task_id.clone());
            }
            Ok(accepted.admitted().await?)
        }
        Err(error) => {
            claim.refused(state).await;
            Err(error.into())
        }
    }
}
