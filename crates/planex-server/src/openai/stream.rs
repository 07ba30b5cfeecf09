//! The streamed agent answer: `chat.completion.chunk` events over SSE.
//!
//! The first chunk carries the role; each step event of the task becomes a chunk whose
//! `delta.reasoning_content` says what happened (with the event itself in `planex.event`); the
//! synthesis call's text comes as `content` chunks as the model writes it (the task's transient
//! `answer_delta` events); when the task ends, whatever of its answer was not streamed yet (all of
//! it for a task without a synthesis step) is one more `content` chunk, and the finish chunk
//! carries `finish_reason` and the `planex` extension. If the synthesis call was retried after it
//! had begun streaming, the stream ends with a `stream_restarted` error instead (the text sent is
//! not the answer). Usage is sent once, only when `stream_options.include_usage` is true, in one
//! last chunk with `choices: []` (as OpenAI does); every other chunk has `usage: null`. A task that
//! produced no answer ends the stream with an OpenAI-shaped `{"error": …}` event, which OpenAI SDKs
//! raise as an error, then `[DONE]`.

use super::fields::{planex_extra, unix_now, usage_of};
use super::outcome;
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
        EventKind::StepPlanned {
            step_id, tool_name, ..
        } => format!("step {step_id} planned: {tool_name}\n"),
        EventKind::Replanned { round, reason, .. } => {
            format!(
                "re-plan {round}: {}\n",
                planex_core::clip_chars(reason, 200)
            )
        }
        EventKind::StepStarted { step_id, tier, .. } => {
            format!("step {step_id} started on {tier}\n")
        }
        EventKind::StepCompleted { step_id } => format!("step {step_id} completed\n"),
        EventKind::StepFailed { step_id, .. } => format!("step {step_id} failed\n"),
        EventKind::StepSkipped { step_id, .. } => format!("step {step_id} skipped\n"),
        EventKind::AnswerDelta { .. } | EventKind::TaskCompleted { .. } => return None,
    })
}

/// The answer text streamed to the client so far, from the synthesis call's first attempt.
#[derive(Default)]
struct Streamed {
    text: String,
    attempt: Option<u32>,
    /// No more deltas are passed on: the call was retried after it had begun (later text is not
    /// a continuation), or a delta was missed (the rest is sent from the answer at the end).
    stopped: bool,
}

impl Streamed {
    /// Whether a delta of `attempt` starting at `offset` is passed on (then it is counted).
    fn take(&mut self, attempt: u32, offset: usize, text: &str) -> bool {
        if self.stopped || self.attempt.is_some_and(|first| first != attempt) {
            self.stopped = true;
            return false;
        }
        if offset != self.text.len() {
            // A delta was missed (or the first ones came before this client followed).
            self.stopped = true;
            return false;
        }
        self.attempt = Some(attempt);
        self.text.push_str(text);
        true
    }

    /// What is left to send of the final `answer`; `None` when the streamed text is not its
    /// beginning (the call restarted mid-stream).
    fn rest<'a>(&self, answer: &'a str) -> Option<&'a str> {
        answer.strip_prefix(self.text.as_str())
    }
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
        let mut streamed = Streamed::default();
        let deadline = tokio::time::Instant::now() + state.server_settings().wait_timeout;
        if let Ok(mut events) = store.events(&task_id).await {
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, events.next()) => next,
                    _ = state.shutdown_token().cancelled() => break,
                };
                let Ok(Some(event)) = next else { break };
                if let EventKind::AnswerDelta {
                    attempt,
                    offset,
                    text,
                    ..
                } = &event.kind
                {
                    if streamed.take(*attempt, *offset, text) {
                        let chunk = chunks.delta(json!({"content": text}), None, None);
                        if tx.send(chunk).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
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
                let Some(rest) = streamed.rest(&done.content) else {
                    let error = crate::error::ApiError::upstream(format!(
                        "the answer's model call was retried after it had begun streaming, so the text streamed is not the answer; read the answer with GET /v1/tasks/{task_id}"
                    ))
                    .with_code("stream_restarted");
                    let _ = tx.send(error_event(error)).await;
                    let _ = tx.send(Event::default().data("[DONE]")).await;
                    return;
                };
                if !rest.is_empty() {
                    let content = chunks.delta(json!({"content": rest}), None, None);
                    if tx.send(content).await.is_err() {
                        return;
                    }
                }
                let finish = chunks.delta(
                    json!({}),
                    Some(done.finish_reason),
                    Some(("planex", planex_extra(&record, &done.failed_steps))),
                );
                if tx.send(finish).await.is_err() {
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
