//! The plan cache: validated plans by key, each with a time to live (docs/ARCHITECTURE.md §5).
//!
//! Key decision: the cache stores plans as JSON under an opaque key the engine derives (sha256 of
//! task text, planner model and version, catalog hash and `max_subtasks`), so a backend needs no
//! knowledge of plans: memory keeps a map with deadlines, Redis a `px:plan:{key}` string with
//! `PX`. A hit is re-validated by the engine against the live catalog before use, so a stale or
//! corrupt entry can never run.

use async_trait::async_trait;
use planex_core::cause::SharedSource;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A plan cache failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanCacheError {
    /// The backend could not be reached; the engine then plans without the cache.
    #[error("plan cache unavailable: {what}; planning goes on without the cache")]
    Unavailable {
        /// What failed.
        what: String,
        /// The Redis (or other) error behind it.
        #[source]
        source: SharedSource,
    },
}

/// Plans by key, each with a time to live.
#[async_trait]
pub trait PlanCache: Send + Sync + 'static {
    /// The plan stored under `key`, unless it expired.
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, PlanCacheError>;

    /// Stores (or replaces) `plan` under `key` for `ttl`. A zero `ttl` stores nothing.
    async fn put(
        &self,
        key: &str,
        plan: serde_json::Value,
        ttl: Duration,
    ) -> Result<(), PlanCacheError>;
}

/// The in-process plan cache, bounded: when full, expired entries go first, then the entry
/// closest to expiry.
pub struct MemoryPlanCache {
    entries: Mutex<HashMap<String, (serde_json::Value, Instant)>>,
    max_entries: usize,
}

impl MemoryPlanCache {
    /// A cache holding at most `max_entries` plans (at least one).
    pub fn new(max_entries: usize) -> Self {
        MemoryPlanCache {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (serde_json::Value, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemoryPlanCache {
    fn default() -> Self {
        MemoryPlanCache::new(10_000)
    }
}

#[async_trait]
impl PlanCache for MemoryPlanCache {
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, PlanCacheError> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((plan, deadline)) if *deadline > Instant::now() => Ok(Some(plan.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(
        &self,
        key: &str,
        plan: serde_json::Value,
        ttl: Duration,
    ) -> Result<(), PlanCacheError> {
        if ttl.is_zero() {
            return Ok(());
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(key) {
            entries.retain(|_, (_, deadline)| *deadline > now);
            if entries.len() >= self.max_entries {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (_, deadline))| *deadline)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key.to_owned(), (plan, now + ttl));
        Ok(())
    }
}
