//! Passing a streamed answer on: when a synthesis step's answer options ask for it
//! (`AnswerOptions::stream`, the agent endpoint's `stream: true`), the worker gives the call a
//! [`DeltaSink`] and this forwarder publishes what arrives as transient `answer_delta` events
//! (`Store::publish_transient`), which the API replica following the task streams to its client.
//!
//! Key decisions: deltas are batched by the store's own pace (whatever arrived while one publish
//! was in flight goes in the next), so a fast model costs fewer publishes than tokens without a
//! timer; the worker waits for the forwarder before it records the outcome, so every delta is
//! published before the task's completion event. Each delta says where it starts in its attempt's
//! text, so a follower that missed one (a lost publish) stops streaming and sends the rest of the
//! answer, which is in the step's result, at the end.

use crate::synthesis::SYNTHESIS_TOOL;
use planex_core::{ANSWER_ARG, AnswerOptions, TaskId};
use planex_llm::{ContentDelta, DeltaSink};
use planex_store::{EventKind, StepLease, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// How long a worker waits for the last deltas to be published before recording the outcome.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A running forwarder of one step's deltas.
pub(crate) struct AnswerStream {
    forwarder: JoinHandle<()>,
}

/// Whether `lease` is a synthesis step whose answer someone follows.
fn is_streamed(lease: &StepLease) -> bool {
    lease.spec.step.tool_name == SYNTHESIS_TOOL
        && lease
            .spec
            .step
            .args
            .get(ANSWER_ARG)
            .and_then(|value| serde_json::from_value::<AnswerOptions>(value.clone()).ok())
            .is_some_and(|options| options.stream)
}

/// For a streamed synthesis step, the sink its call writes to and the forwarder publishing it.
pub(crate) fn start(
    store: &Arc<dyn Store>,
    lease: &StepLease,
) -> Option<(DeltaSink, AnswerStream)> {
    if !is_streamed(lease) {
        return None;
    }
    let (sink, deltas) = DeltaSink::channel();
    let forwarder = tokio::spawn(forward(
        store.clone(),
        lease.task_id.clone(),
        lease.spec.step.step_id,
        deltas,
    ));
    Some((sink, AnswerStream { forwarder }))
}

impl AnswerStream {
    /// Waits until everything sent before the sink was dropped is published (bounded).
    pub(crate) async fn flushed(mut self) {
        if tokio::time::timeout(FLUSH_TIMEOUT, &mut self.forwarder)
            .await
            .is_err()
        {
            // Stopped, so no delta is published after the completion.
            self.forwarder.abort();
            tracing::warn!(
                "answer deltas were still being published after {FLUSH_TIMEOUT:?}; the answer itself is recorded"
            );
        }
    }
}

async fn forward(
    store: Arc<dyn Store>,
    task_id: TaskId,
    step_id: planex_core::StepId,
    mut deltas: UnboundedReceiver<ContentDelta>,
) {
    let mut pending: Option<ContentDelta> = None;
    // The attempt being forwarded and how many bytes of its text went out.
    let mut position: (u32, usize) = (0, 0);
    loop {
        let next = match pending.take() {
            Some(delta) => delta,
            None => match deltas.recv().await {
                Some(delta) => delta,
                None => return,
            },
        };
        let mut batch = next;
        // Join what arrived meanwhile, up to a change of attempt.
        while let Ok(more) = deltas.try_recv() {
            if more.attempt == batch.attempt {
                batch.text.push_str(&more.text);
            } else {
                pending = Some(more);
                break;
            }
        }
        if position.0 != batch.attempt {
            position = (batch.attempt, 0);
        }
        let offset = position.1;
        position.1 += batch.text.len();
        let kind = EventKind::AnswerDelta {
            step_id,
            attempt: batch.attempt,
            offset,
            text: batch.text,
        };
        if let Err(error) = store.publish_transient(&task_id, kind).await {
            tracing::debug!(task = %task_id, error = %planex_core::cause::ErrorChain(&error), "an answer delta was not published");
        }
    }
}
