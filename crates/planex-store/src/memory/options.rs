//! Settings of the memory store.

use std::time::Duration;

/// How long either store keeps a finished task by default: a day.
pub const DEFAULT_FINISHED_TASK_TTL: Duration = Duration::from_secs(24 * 3600);

/// Settings of the memory store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreOptions {
    /// A step handed out this many times without completing is a poison step: it goes to the
    /// dead-letter queue instead of another worker.
    pub max_deliveries: u32,
    /// How long a finished task is kept (`None`: until `max_finished_tasks` pushes it out), as the
    /// Redis store's `finished_task_ttl`.
    pub finished_task_ttl: Option<Duration>,
    /// Most finished tasks kept; the oldest finished go first. Tasks not yet finished are never
    /// evicted. Keeps a long-running `planex serve --store memory` from growing without bound.
    pub max_finished_tasks: usize,
    /// Most bytes the finished tasks kept may take, by the store's own accounting (each task's
    /// record and events as JSON, measured when it finishes); the oldest finished go first. The
    /// process holds them in about 4-5 times that (docs/BENCHMARKS.md, retention): the default,
    /// 48 MiB, keeps a `planex serve` near 256 MiB of RSS.
    pub max_finished_bytes: usize,
    /// Most dead letters kept; the oldest go first.
    pub dead_letter_cap: usize,
    /// Most idempotency keys remembered; beyond it the oldest is forgotten before it expires.
    pub max_idempotency_keys: usize,
}

impl Default for MemoryStoreOptions {
    fn default() -> Self {
        MemoryStoreOptions {
            max_deliveries: 5,
            finished_task_ttl: Some(DEFAULT_FINISHED_TASK_TTL),
            max_finished_tasks: 20_000,
            max_finished_bytes: 48 * 1024 * 1024,
            dead_letter_cap: 10_000,
            max_idempotency_keys: 100_000,
        }
    }
}
