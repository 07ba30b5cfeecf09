//! Rate limits per API key: requests per second (a token bucket over the `POST` routes, which
//! create work) and concurrent tasks (tasks accepted and not yet finished). Both are off unless a
//! key's `[[api_keys]]` entry sets them.
//!
//! Key decisions: limits are kept per API replica, in memory (a deployment of N replicas behind a
//! balancer allows about N times the configured rate; the per-key budgets in the ledger are the
//! global money limit). A refusal is a `429` with `Retry-After` and OpenAI-style
//! `x-ratelimit-limit-*`, `x-ratelimit-remaining-*`, `x-ratelimit-reset-*` headers, so OpenAI
//! clients back off as they do for OpenAI. A concurrent-task slot is taken before the task is
//! accepted and released when the task ends (a watcher waits for it), or at once if the submission
//! is refused.

use crate::error::ApiError;
use planex_core::TaskId;
use planex_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The limits of one API key (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Most `POST` requests per second (bursts of up to this many).
    pub requests_per_second: Option<u32>,
    /// Most tasks accepted and not finished at once.
    pub concurrent_tasks: Option<u32>,
}

/// How long a finished task's slot watcher waits at most (a task running longer keeps its slot
/// until then, then frees it: a leak is worse than a late release).
const SLOT_WATCH: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

#[derive(Debug, Default)]
struct Usage {
    buckets: HashMap<usize, Bucket>,
    tasks: HashMap<usize, u32>,
}

/// The rate limiters of one API replica, per key (by its index in `[[api_keys]]`).
#[derive(Debug, Default)]
pub struct RateLimits {
    usage: Mutex<Usage>,
}

/// A concurrent-task slot of one key, released on drop.
#[derive(Debug)]
pub struct TaskSlot {
    limits: Arc<RateLimits>,
    key: usize,
}

fn reset_text(after: Duration) -> String {
    let ms = after.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", after.as_secs_f64().ceil())
    }
}

fn limited(what: &str, limit: u32, after: Duration, unit: &'static str) -> ApiError {
    ApiError::rate_limited(format!(
        "this API key is limited to {limit} {what}; retry after {} s (the limit is set in its \
         [[api_keys]] entry)",
        after.as_secs().max(1)
    ))
    .with_retry_after(after)
    .with_header(limit_header("limit", unit), limit.to_string())
    .with_header(limit_header("remaining", unit), "0".to_owned())
    .with_header(limit_header("reset", unit), reset_text(after))
}

/// `x-ratelimit-{which}-{unit}`.
fn limit_header(which: &str, unit: &'static str) -> &'static str {
    match (which, unit) {
        ("limit", "requests") => "x-ratelimit-limit-requests",
        ("remaining", "requests") => "x-ratelimit-remaining-requests",
        ("reset", "requests") => "x-ratelimit-reset-requests",
        ("limit", _) => "x-ratelimit-limit-tasks",
        ("remaining", _) => "x-ratelimit-remaining-tasks",
        _ => "x-ratelimit-reset-tasks",
    }
}

impl RateLimits {
    fn lock(&self) -> MutexGuard<'_, Usage> {
        // Every update leaves the maps consistent, so a poisoned lock is still usable.
        self.usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one request of key `key` from its bucket of `per_second`; a 429 when it is empty.
    pub fn request(&self, key: usize, per_second: u32) -> Result<(), ApiError> {
        let rate = f64::from(per_second.max(1));
        let now = Instant::now();
        let mut usage = self.lock();
        let bucket = usage.buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let after = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
        Err(limited(
            &format!("requests per second ({per_second})"),
            per_second,
            after,
            "requests",
        ))
    }

    /// Takes one of key `key`'s `limit` concurrent-task slots; a 429 when all are taken.
    pub fn task_slot(self: &Arc<Self>, key: usize, limit: u32) -> Result<TaskSlot, ApiError> {
        let mut usage = self.lock();
        let running = usage.tasks.entry(key).or_insert(0);
        if *running >= limit {
            return Err(limited(
                &format!("concurrent tasks ({limit} running)"),
                limit,
                Duration::from_secs(1),
                "tasks",
            ));
        }
        *running += 1;
        Ok(TaskSlot {
            limits: self.clone(),
            key,
        })
    }

    /// Tasks of key `key` holding a slot now.
    pub fn running(&self, key: usize) -> u32 {
        self.lock().tasks.get(&key).copied().unwrap_or(0)
    }
}

impl TaskSlot {
    /// Keeps the slot until task `task_id` ends (or [`SLOT_WATCH`] passes).
    pub fn hold_until_done(self, store: Arc<dyn Store>, task_id: TaskId) {
        tokio::spawn(async move {
            let _ = planex_store::wait_for_task(store.as_ref(), &task_id, SLOT_WATCH).await;
            drop(self);
        });
    }
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        let mut usage = self.limits.lock();
        if let Some(running) = usage.tasks.get_mut(&self.key) {
            *running = running.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_headers() {
        let limits = RateLimits::default();
        assert!(limits.request(0, 2).is_ok());
        assert!(limits.request(0, 2).is_ok());
        let refused = limits.request(0, 2).unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            limits.request(1, 2).is_ok(),
            "another key has its own bucket"
        );
    }

    #[tokio::test]
    async fn task_slots_are_counted_and_released_on_drop() {
        let limits = Arc::new(RateLimits::default());
        let first = limits.task_slot(0, 1).unwrap();
        assert!(limits.task_slot(0, 1).is_err());
        assert_eq!(limits.running(0), 1);
        drop(first);
        assert!(limits.task_slot(0, 1).is_ok());
    }
}
