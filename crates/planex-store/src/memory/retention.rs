//! How long the memory store keeps finished tasks: by age (`finished_task_ttl`), by count
//! (`max_finished_tasks`) and by bytes (`max_finished_bytes`), oldest finished first; tasks not
//! finished are never evicted.
//!
//! Key decision: each task is measured once, when it finishes, as the JSON of its record and event
//! history (what the store holds for it, within the allocator's overhead), so the byte cap costs one
//! serialisation per finished task, never a walk of the store. Eviction runs on each task
//! creation, so memory stays bounded without a background sweeper.

use super::options::MemoryStoreOptions;
use super::state::{Finished, Inner, TaskEntry};
use planex_core::TaskId;
use tokio::time::Instant;

/// What a task's entry takes, by the store's accounting: its record and events as JSON.
pub(super) fn entry_bytes(entry: &TaskEntry) -> usize {
    let record = serde_json::to_vec(&entry.record).map_or(0, |json| json.len());
    let events = serde_json::to_vec(&entry.events).map_or(0, |json| json.len());
    record + events
}

impl Inner {
    /// Remembers that `task_id` finished now, with what it takes, for eviction, and tells the
    /// readers of task changes.
    pub(super) fn record_finished(&mut self, task_id: &TaskId) {
        self.announce(task_id);
        let bytes = self.tasks.get(task_id).map_or(0, entry_bytes);
        self.finished_bytes += bytes;
        self.finished.push_back(Finished {
            at: Instant::now(),
            task_id: task_id.clone(),
            bytes,
        });
    }

    /// Drops finished tasks past `finished_task_ttl`, beyond `max_finished_tasks` or beyond
    /// `max_finished_bytes` (oldest finished first), and dead letters beyond `dead_letter_cap`.
    pub(super) fn evict(&mut self, options: &MemoryStoreOptions) {
        let now = Instant::now();
        while let Some(oldest) = self.finished.front() {
            let expired = options
                .finished_task_ttl
                .is_some_and(|ttl| now.duration_since(oldest.at) >= ttl);
            let over = self.finished.len() > options.max_finished_tasks
                || self.finished_bytes > options.max_finished_bytes;
            if !expired && !over {
                break;
            }
            let Some(gone) = self.finished.pop_front() else {
                break;
            };
            self.finished_bytes = self.finished_bytes.saturating_sub(gone.bytes);
            if let Some(entry) = self.tasks.remove(&gone.task_id) {
                let record = &entry.record;
                self.index
                    .remove(&record.tenant, record.created_at_ms, &record.task_id);
            }
        }
        let excess = self.dlq.len().saturating_sub(options.dead_letter_cap);
        self.dlq.drain(..excess);
    }

    /// Finished tasks kept now, and what they take by the store's accounting.
    pub(super) fn retained(&self) -> (usize, usize) {
        (self.finished.len(), self.finished_bytes)
    }
}
