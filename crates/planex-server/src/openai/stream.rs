//! The streamed agent answer: `chat.completion.chunk` events over SSE.
//!
//! The first chunk carries the role; each step event of the task becomes a chunk whose
//! `delta.reasoning_content` says what happened (with the event itself in `planex.event`); when the
//! task ends, its answer is one `content` chunk and the finish chunk carries `finish_reason` and the
//! `planex` extension. Usage is sent once, only when `stream_options.include_usage` is true, in one
//! last chunk with `choices: []` (as OpenAI does); every other chunk has `usage: null`. A task that
//! produced no answer ends the stream with an OpenAI-shaped `{"error": …}` event, which OpenAI SDKs
//! raise as an error, then `[DONE]`.

use super::outcome;
use super::{planex_extra, unix_now, usage_of};
use crate::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use planex_core::TaskId;
use planex_store::EventKind;
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

/// Builds the chunks of one streamed completion.
pub struct Chunks {
    id: String,
    model: String,
    created: u64,
}

impl Chunks {
    /// Chunks of completion `id` answered by `model`.
    pub fn new(id: String, model: String) -> Self {
        Chunks {
            id,
            model,
            created: unix_now(),
        }
    }

    fn chunk(&self, choices: Value, extra: Option<(&str, Value)>) -> Event {
        let mut value = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices, "usage": null,
        });
        if let (Some((key, extra)), Some(map)) = (extra, value.as_object_mut()) {
            map.insert(key.to_owned(), extra);
        }
        Event::default().data(value.to_string())
    }

    fn delta(&self, delta: Value, finish: Option<&str>, extra: Option<(&str, Value)>) -> Event {
        self.chunk(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            extra,
        )
    }
}

fn progress_line(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Planned { steps } => format!("planned {steps} steps\n"),
        EventKind::StepStarted { step_id, tier, .. } => {
            format!("step {step_id} started on {tier}\n")
        }
        EventKind::StepCompleted { step_id } => format!("step {step_id} completed\n"),
        EventKind::StepFailed { step_id, .. } => format!("step {step_id} failed\n"),
        EventKind::StepSkipped { step_id, .. } => format!("step {step_id} skipped\n"),
        EventKind::TaskCompleted { .. } => return None,
    })
}

/// Streams task `task_id` as chunks; `asked` is the answer's `max_tokens` and whether a partial
/// task is an error.
pub fn respond(
    state: AppState,
    task_id: TaskId,
    chunks: Chunks,
    include_usage: bool,
    asked: (Option<u32>, bool),
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(32);
    tokio::spawn(async move {
        let first = chunks.delta(json!({"role": "assistant", "content": ""}), None, None);
        if tx.send(first).await.is_err() {
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
                // Step errors may name internal endpoints: the event goes without them.
                let mut shown = serde_json::to_value(&event).unwrap_or_default();
                if let Some(error) = shown.get_mut("error").filter(|e| e.is_string()) {
                    *error = json!(crate::redact::urls(error.as_str().unwrap_or_default()));
                }
                let progress = chunks.delta(
                    json!({"reasoning_content": line}),
                    None,
                    Some(("planex", json!({"event": shown}))),
                );
                if tx.send(progress).await.is_err() {
                    return;
                }
            }
        }
        let record = store.get_task(&task_id).await.ok().flatten();
        let finished = record.filter(|r| r.status.is_terminal());
        let Some(record) = finished else {
            let error = crate::error::ApiError::timeout(format!(
                "task {task_id} did not finish within the wait limit ([server] wait_timeout_secs); it runs on: read it with GET /v1/tasks/{task_id}"
            ))
            .with_code("timeout");
            let _ = tx.send(error_event(error)).await;
            let _ = tx.send(Event::default().data("[DONE]")).await;
            return;
        };
        match outcome::answer(&record, asked.0, asked.1) {
            Ok(done) => {
                let content = chunks.delta(json!({"content": done.content}), None, None);
                let finish = chunks.delta(
                    json!({}),
                    Some(done.finish_reason),
                    Some(("planex", planex_extra(&record, &done.failed_steps))),
                );
                if tx.send(content).await.is_err() || tx.send(finish).await.is_err() {
                    return;
                }
                if include_usage {
                    let usage = chunks.chunk(json!([]), Some(("usage", usage_of(&record))));
                    let _ = tx.send(usage).await;
                }
            }
            Err(error) => {
                let _ = tx.send(error_event(error)).await;
            }
        }
        let _ = tx.send(Event::default().data("[DONE]")).await;
    });
    let body = ReceiverStream::new(rx).map(Ok::<Event, std::convert::Infallible>);
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An error as a stream event: the OpenAI-shaped `{"error": …}` body of what the status would
/// have been.
fn error_event(error: crate::error::ApiError) -> Event {
    let status = error.status();
    Event::default().data(super::errors::openai_body(status, &error.body()).to_string())
}
