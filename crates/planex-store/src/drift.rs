//! Drift statistics per task type (docs/ARCHITECTURE.md §5 "Drift"): the baseline learned from a
//! type's first finished tasks and a rolling window of its most recent ones.
//!
//! Key decisions: the store keeps raw samples (steps and cost per finished task) and the learned
//! baseline, never a verdict, so every API replica and a restart read the same numbers and the
//! engine decides what drift means. Recording is idempotent per task id (a task settled by two
//! replicas counts once). The baseline is learned exactly once: from the first `learn_tasks`
//! samples, as their p95 step count (nearest rank) and mean cost, and never changes afterwards.
//! Memory keeps a map; Redis uses plain commands on `px:drift:{TYPE}` keys (no script).

use async_trait::async_trait;
use planex_core::cause::SharedSource;
use planex_core::{Decimal, TaskId};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// A drift store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriftStoreError {
    /// The backend could not be reached; drift guards then leave tasks as they are.
    #[error("drift statistics unavailable: {what}; tasks are planned without the drift guard")]
    Unavailable {
        /// What failed.
        what: String,
        /// The Redis (or other) error behind it.
        #[source]
        source: SharedSource,
    },
    /// A stored value could not be read back.
    #[error("drift statistics corrupt: {what}; delete the task type's drift keys to relearn it")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
}

/// One finished task of a type: how many plan steps it had and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftSample {
    /// Plan steps of the task.
    pub steps: u32,
    /// Its total cost in USD.
    pub cost_usd: Decimal,
}

/// How many samples learn a baseline and how many recent ones are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftSizes {
    /// The first this many finished tasks of a type learn its baseline (at least 1).
    pub learn_tasks: usize,
    /// The rolling window of recent finished tasks (at least 1).
    pub window: usize,
}

/// A baseline learned from a type's first finished tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnedBaseline {
    /// The p95 step count (nearest rank) of the learning samples.
    pub steps_p95: u32,
    /// Their mean cost per task in USD.
    pub cost_usd_mean: Decimal,
    /// How many tasks it was learned from.
    pub tasks: usize,
}

/// What the store knows about one task type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftRecord {
    /// The learned baseline, once `learn_tasks` tasks finished.
    pub learned: Option<LearnedBaseline>,
    /// Samples collected towards the baseline while it is not learned yet.
    pub learning: usize,
    /// The most recent finished tasks, newest first, at most `window` of them.
    pub recent: Vec<DriftSample>,
}

/// Baselines and recent samples of finished tasks, per task type.
#[async_trait]
pub trait DriftStore: Send + Sync + 'static {
    /// Records finished task `task_id` of `task_type`: into the recent window, and towards the
    /// baseline while it is being learned. Returns false (changing nothing) when this task was
    /// recorded before.
    async fn record_finished(
        &self,
        task_type: &str,
        task_id: &TaskId,
        sample: DriftSample,
        sizes: DriftSizes,
    ) -> Result<bool, DriftStoreError>;

    /// The baseline and recent samples of `task_type` (empty when nothing was recorded).
    async fn drift_record(&self, task_type: &str) -> Result<DriftRecord, DriftStoreError>;

    /// Every task type with a recorded task, sorted.
    async fn drift_types(&self) -> Result<Vec<String>, DriftStoreError>;
}

/// The p95 of `steps` by nearest rank (0 when empty).
pub fn p95_steps(steps: &[u32]) -> u32 {
    let mut sorted = steps.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * 95).div_ceil(100);
    rank.checked_sub(1)
        .and_then(|i| sorted.get(i).copied())
        .unwrap_or(0)
}

/// The mean cost of `samples` (0 when empty).
pub fn mean_cost(samples: &[DriftSample]) -> Decimal {
    if samples.is_empty() {
        return Decimal::ZERO;
    }
    let total: Decimal = samples.iter().map(|s| s.cost_usd).sum();
    total / Decimal::from(samples.len() as u64)
}

/// The baseline learned from `samples`.
pub fn learn_baseline(samples: &[DriftSample]) -> LearnedBaseline {
    let steps: Vec<u32> = samples.iter().map(|s| s.steps).collect();
    LearnedBaseline {
        steps_p95: p95_steps(&steps),
        cost_usd_mean: mean_cost(samples),
        tasks: samples.len(),
    }
}

/// How many recorded task ids the memory store remembers to keep recording idempotent.
const SEEN_CAP: usize = 100_000;

#[derive(Default)]
struct TypeState {
    learned: Option<LearnedBaseline>,
    learning: Vec<DriftSample>,
    recent: VecDeque<DriftSample>,
}

#[derive(Default)]
struct MemoryState {
    types: BTreeMap<String, TypeState>,
    seen: HashSet<(String, String)>,
    seen_order: VecDeque<(String, String)>,
}

/// The in-process drift store (one process's view; use Redis to share it between replicas).
#[derive(Default)]
pub struct MemoryDriftStore {
    state: Mutex<MemoryState>,
}

impl MemoryDriftStore {
    /// An empty drift store.
    pub fn new() -> Self {
        MemoryDriftStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl DriftStore for MemoryDriftStore {
    async fn record_finished(
        &self,
        task_type: &str,
        task_id: &TaskId,
        sample: DriftSample,
        sizes: DriftSizes,
    ) -> Result<bool, DriftStoreError> {
        let mut state = self.lock();
        let key = (task_type.to_owned(), task_id.0.clone());
        if !state.seen.insert(key.clone()) {
            return Ok(false);
        }
        state.seen_order.push_back(key);
        if state.seen_order.len() > SEEN_CAP
            && let Some(oldest) = state.seen_order.pop_front()
        {
            state.seen.remove(&oldest);
        }
        let entry = state.types.entry(task_type.to_owned()).or_default();
        entry.recent.push_front(sample);
        entry.recent.truncate(sizes.window.max(1));
        if entry.learned.is_none() {
            entry.learning.push(sample);
            if entry.learning.len() >= sizes.learn_tasks.max(1) {
                entry.learned = Some(learn_baseline(&entry.learning));
                entry.learning.clear();
            }
        }
        Ok(true)
    }

    async fn drift_record(&self, task_type: &str) -> Result<DriftRecord, DriftStoreError> {
        let state = self.lock();
        Ok(state
            .types
            .get(task_type)
            .map(|t| DriftRecord {
                learned: t.learned,
                learning: t.learning.len(),
                recent: t.recent.iter().copied().collect(),
            })
            .unwrap_or_default())
    }

    async fn drift_types(&self) -> Result<Vec<String>, DriftStoreError> {
        Ok(self.lock().types.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_the_nearest_rank() {
        assert_eq!(p95_steps(&[]), 0);
        assert_eq!(p95_steps(&[7]), 7);
        let twenty: Vec<u32> = (1..=20).collect();
        assert_eq!(p95_steps(&twenty), 19);
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(p95_steps(&hundred), 95);
    }

    #[test]
    fn mean_cost_of_nothing_is_zero() {
        assert_eq!(mean_cost(&[]), Decimal::ZERO);
        let samples = [
            DriftSample {
                steps: 1,
                cost_usd: Decimal::new(1, 2),
            },
            DriftSample {
                steps: 3,
                cost_usd: Decimal::new(3, 2),
            },
        ];
        assert_eq!(mean_cost(&samples), Decimal::new(2, 2));
    }
}
