//! [`Submission`]: what an `Idempotency-Key` names, so a retried `POST /v1/tasks` finds the task
//! its first attempt created instead of creating (and billing) another.
//!
//! Key decision: the store keeps the key's digest (the caller hashes the header, so any bytes make
//! a safe key name) with the task id and a fingerprint of the request body, scoped by tenant and
//! remembered for a TTL; remembering is one atomic "set if absent, else read" in every backend, so
//! two concurrent retries agree on one task.

use planex_core::TaskId;
use serde::{Deserialize, Serialize};

/// The task an idempotency key names, and the request it was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The task the first submission created.
    pub task_id: TaskId,
    /// A digest of the first submission's request (a retry with another body is refused).
    pub fingerprint: String,
}
