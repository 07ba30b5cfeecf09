//! Task events in the memory store: a task's history followed by its live events, ending with
//! its completion (`Store::events`), and transient events sent to the watchers only.

use super::state::Inner;
use crate::EventStream;
use crate::error::StoreError;
use crate::types::{EventKind, TaskEvent, now_ms};
use futures::StreamExt;
use planex_core::TaskId;
use tokio::sync::mpsc;

impl Inner {
    /// `Store::events`: the history, then live events until `TaskCompleted` (only the history
    /// for a finished task).
    pub(super) fn event_stream(&mut self, task_id: &TaskId) -> Result<EventStream, StoreError> {
        let entry = self.task(task_id)?;
        let history = futures::stream::iter(entry.events.clone());
        if entry.record.status.is_terminal() {
            return Ok(history.boxed());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        entry.subscribers.push(tx);
        let live = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        Ok(history
            .chain(live)
            .scan(false, |done, event| {
                let out = if *done { None } else { Some(event) };
                if let Some(e) = &out {
                    *done = matches!(e.kind, EventKind::TaskCompleted { .. });
                }
                futures::future::ready(out)
            })
            .boxed())
    }

    /// `Store::publish_transient`: sent to the task's watchers now, kept nowhere.
    pub(super) fn publish_transient(&mut self, task_id: &TaskId, kind: EventKind) {
        if let Some(entry) = self.tasks.get_mut(task_id) {
            let event = TaskEvent {
                seq: 0,
                at_ms: now_ms(),
                kind,
            };
            entry
                .subscribers
                .retain(|tx| tx.send(event.clone()).is_ok());
        }
    }
}
