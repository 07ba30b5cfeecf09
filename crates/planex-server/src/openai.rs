//! `POST /v1/chat/completions` with `model: "planex"`: the agent behind the OpenAI wire format,
//! so any OpenAI client can use it.
//!
//! Key decisions: the last user message is the task; the answer is the task's answer, `usage` sums
//! every model call the task made, and the cost breakdown rides in an extra `planex` field that
//! OpenAI clients ignore. When streaming, step progress is sent as `delta.reasoning_content` (the
//! field reasoning-model UIs show as "thinking") so the `content` the client assembles is exactly
//! the answer.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, RequestId};
use crate::idempotency::{self, Claim};
use crate::tasks::{task_request, wait_for};
use crate::views::{CostView, SubmitTask};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use planex_core::TaskId;
use planex_store::{EventKind, TaskRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::ToSchema;

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatMessageIn {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// Text, or an array of content parts (`{type: "text", text}`).
    #[schema(value_type = Object)]
    pub content: Value,
}

/// The OpenAI chat completion request (other OpenAI fields are accepted and ignored).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Must be the configured agent name (`planex` by default).
    pub model: String,
    /// The conversation; the last user message is the task.
    pub messages: Vec<ChatMessageIn>,
    /// Stream progress and the answer as Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// `{include_usage: true}` adds a final usage chunk when streaming.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub stream_options: Option<Value>,
    /// planex extension: most steps.
    #[serde(default)]
    pub max_subtasks: Option<usize>,
    /// planex extension: the task's budget in USD.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub budget_usd: Option<planex_core::Decimal>,
    /// OpenAI `metadata` (string values); planex reads `task_type` (drift statistics and guards).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// `metadata.task_type` of a chat completion request; a non-string value is a 400.
fn metadata_task_type(body: &ChatCompletionRequest) -> Result<Option<String>, ApiError> {
    match body.metadata.as_ref().and_then(|m| m.get("task_type")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadata.task_type must be a string, got {other}"
        ))),
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn usage_of(record: &TaskRecord) -> Value {
    let total = record.cost().total.usage;
    json!({
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "total_tokens": total.total(),
        "prompt_tokens_details": {"cached_tokens": total.cached_tokens},
    })
}

fn planex_extra(record: &TaskRecord) -> Value {
    json!({
        "task_id": record.task_id,
        "status": record.status,
        "error": record.error,
        "cost": CostView::new(&record.cost(), record.cost_center.as_deref().unwrap_or("default")),
    })
}

fn answer_of(record: &TaskRecord) -> String {
    match (record.answer(), &record.error) {
        (Some(answer), _) => answer,
        (None, Some(error)) => format!(
            "The task did not produce an answer ({}): {error}",
            record.status
        ),
        (None, None) => format!("The task did not produce an answer ({}).", record.status),
    }
}

/// Run the last user message as a planex task and answer in the OpenAI format.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "An OpenAI `chat.completion` (or `chat.completion.chunk` events when streaming) with an extra `planex` field carrying the task id, status and cost breakdown", body = Object),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The API key may not charge the `X-Cost-Center` named", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, body = ErrorBody),
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
            "model {:?} is not served here; use model {agent:?}",
            body.model
        )));
    }
    let task = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| text_of(&m.content))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("messages has no non-empty user message to run as the task")
        })?;
    let submit = SubmitTask {
        task,
        plan: None,
        budget_usd: body.budget_usd,
        max_subtasks: body.max_subtasks,
        cost_center: None,
        tools: None,
        synthesis: None,
        cache: None,
        task_type: metadata_task_type(&body)?,
    };
    let task_id = submit_once(&state, &caller, &request_id, &headers, &submit).await?;
    let id = format!("chatcmpl-{task_id}");
    if body.stream {
        let include_usage = body
            .stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return Ok(stream(state, task_id, id, agent, include_usage));
    }
    let timeout = state.server_settings().wait_timeout;
    let record = match wait_for(&state, &task_id, timeout).await? {
        Some(record) => record,
        None => {
            return Err(ApiError::unavailable(format!(
                "task {task_id} is still running after {} s; read it with GET /v1/tasks/{task_id}",
                timeout.as_secs()
            )));
        }
    };
    Ok(axum::Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": agent,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer_of(&record)},
            "finish_reason": "stop",
        }],
        "usage": usage_of(&record),
        "planex": planex_extra(&record),
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
) -> Result<TaskId, ApiError> {
    let claim = idempotency::claim(
        state,
        caller,
        headers,
        "chat",
        &(submit, &caller.cost_center),
    )
    .await?;
    if let Claim::Existing(task_id) = claim {
        return Ok(task_id);
    }
    let mut request = match task_request(submit, caller, request_id) {
        Ok(request) => request,
        Err(error) => {
            claim.refused(state).await;
            return Err(error);
        }
    };
    request.task_id = claim.task_id();
    // Accepted first, so planning runs on (and nothing is orphaned) if the client goes away.
    match state.engine().accept(request).await {
        Ok(accepted) => Ok(accepted.admitted().await?),
        Err(error) => {
            claim.refused(state).await;
            Err(error.into())
        }
    }
}

fn progress_line(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Planned { steps } => format!("planned {steps} steps\n"),
        EventKind::StepStarted { step_id, tier, .. } => {
            format!("step {step_id} started on {tier}\n")
        }
        EventKind::StepCompleted { step_id } => format!("step {step_id} completed\n"),
        EventKind::StepFailed { step_id, error } => format!("step {step_id} failed: {error}\n"),
        EventKind::StepSkipped { step_id, .. } => format!("step {step_id} skipped\n"),
        EventKind::TaskCompleted { .. } => return None,
    })
}

fn stream(
    state: AppState,
    task_id: TaskId,
    id: String,
    model: String,
    include_usage: bool,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(32);
    let created = unix_now();
    let chunk = move |delta: Value, finish: Option<&str>, extra: Option<(&str, Value)>| {
        let mut value = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if let (Some((key, extra)), Some(map)) = (extra, value.as_object_mut()) {
            map.insert(key.to_owned(), extra);
        }
        value
    };
    tokio::spawn(async move {
        let send = |value: Value| Event::default().data(value.to_string());
        if tx
            .send(send(chunk(
                json!({"role": "assistant", "content": ""}),
                None,
                None,
            )))
            .await
            .is_err()
        {
            return;
        }
        let store = state.engine().store().clone();
        let deadline = tokio::time::Instant::now() + state.server_settings().wait_timeout;
        if let Ok(mut events) = store.events(&task_id).await {
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, events.next()) => next,
                    _ = state.shutdown_token().cancelled() => break,
                };
                let Ok(Some(event)) = next else { break };
                let Some(line) = progress_line(&event.kind) else {
                    break;
                };
                let extra = serde_json::to_value(&event).unwrap_or_default();
                let value = chunk(
                    json!({"reasoning_content": line}),
                    None,
                    Some(("planex", json!({"event": extra}))),
                );
                if tx.send(send(value)).await.is_err() {
                    return;
                }
            }
        }
        let record = match state
            .engine()
            .wait(&task_id, std::time::Duration::from_secs(5))
            .await
        {
            Ok(record) => Some(record),
            Err(_) => store.get_task(&task_id).await.ok().flatten(),
        };
        let (content, usage, extra, finish) = match &record {
            Some(r) if r.status.is_terminal() => {
                (answer_of(r), usage_of(r), planex_extra(r), "stop")
            }
            Some(r) => (
                format!("The task is still running; read it with GET /v1/tasks/{task_id}."),
                usage_of(r),
                planex_extra(r),
                "length",
            ),
            None => (
                format!("Task {task_id} could not be read."),
                Value::Null,
                Value::Null,
                "stop",
            ),
        };
        let _ = tx
            .send(send(chunk(json!({"content": content}), None, None)))
            .await;
        let mut last = chunk(json!({}), Some(finish), Some(("planex", extra)));
        if let Some(map) = last.as_object_mut() {
            map.insert("usage".into(), usage.clone());
        }
        let _ = tx.send(send(last)).await;
        if include_usage {
            let mut usage_chunk = chunk(json!({}), None, Some(("usage", usage)));
            if let Some(map) = usage_chunk.as_object_mut() {
                map.insert("choices".into(), json!([]));
            }
            let _ = tx.send(send(usage_chunk)).await;
        }
        let _ = tx.send(Event::default().data("[DONE]")).await;
    });
    let body = ReceiverStream::new(rx).map(Ok::<Event, std::convert::Infallible>);
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
}
