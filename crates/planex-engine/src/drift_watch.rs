//! The engine's side of the drift guard (docs/ARCHITECTURE.md §5): the `max_subtasks` a task type
//! is planned with, and the watcher that records each started task once it finishes.
//!
//! Key decision: this lives apart from `drift.rs` so that the guard itself does not know the engine
//! (`engine.rs` holds the guard; this file uses both).

use crate::{DriftGuard, Engine};
use planex_core::TaskId;
use planex_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How long the drift watcher of a task waits for it to finish.
const WATCH_WAIT: Duration = Duration::from_secs(24 * 3600);

impl Engine {
    /// The drift guard, if any.
    pub fn drift(&self) -> Option<&Arc<DriftGuard>> {
        self.drift.as_ref().filter(|d| d.settings().enabled)
    }

    /// The `max_subtasks` to plan with after the drift guard (prepare stage).
    pub(crate) async fn drift_limit(&self, task_type: &str, asked: usize) -> usize {
        match self.drift() {
            Some(guard) => guard.limit(task_type, asked).await,
            None => asked,
        }
    }

    /// Watches a started task until it finishes and records it in its type's drift statistics.
    pub(crate) fn watch_for_drift(&self, task_id: &TaskId) {
        let Some(guard) = self.drift().cloned() else {
            return;
        };
        let (store, id): (Arc<dyn Store>, TaskId) = (self.store.clone(), task_id.clone());
        tokio::spawn(async move {
            match planex_store::wait_for_task(store.as_ref(), &id, WATCH_WAIT).await {
                Ok(Some(record)) => guard.observe(&record).await,
                Ok(None) => {
                    tracing::warn!(task = %id, "task still running after a day; its drift sample is not recorded")
                }
                Err(error) => {
                    tracing::warn!(task = %id, error = %planex_core::cause::ErrorChain(&error), "could not watch the task for its drift sample")
                }
            }
        });
    }
}
