//! How long the steps a killed worker held took to be handed out again: read from the store
//! before the kill (`RedisStore::steps_held_by`), then followed in the task records until each
//! step was claimed again or ended.

use super::procs::Worker;
use planex_core::{StepId, TaskId};
use planex_store::{RedisStore, Store};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most a redelivery is followed (far beyond the heartbeat's lapse and the 30 s lease).
const FOLLOW_FOR: Duration = Duration::from_secs(90);
/// How often a followed step's record is read.
const POLL: Duration = Duration::from_millis(100);

/// One kill and what came of the steps its victim held.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    /// The worker killed.
    pub victim: String,
    /// Steps it held (claimed, not finished) when it was killed.
    pub held: usize,
    /// From the kill until the last of them was claimed again or ended, in ms (`None`: it held
    /// nothing, or not all were redelivered within 90 s).
    pub redelivered_after_ms: Option<u64>,
    /// Held steps neither claimed again nor ended within 90 s.
    pub not_redelivered: usize,
}

/// The steps `worker` holds now (`RedisStore::steps_held_by`); empty when Redis cannot say.
pub async fn held_by(store: &RedisStore, worker: &Worker) -> Vec<(TaskId, StepId)> {
    store
        .steps_held_by(&worker.tier, &worker.proc.name)
        .await
        .unwrap_or_default()
}

/// A kill being followed.
pub struct Redelivery(tokio::task::JoinHandle<KillReport>);

impl Redelivery {
    /// Follows `held` (steps of `victim`, killed at `killed_at`) in the background.
    pub fn watch(
        store: Arc<RedisStore>,
        victim: String,
        held: Vec<(TaskId, StepId)>,
        killed_at: Instant,
    ) -> Redelivery {
        Redelivery(tokio::spawn(async move {
            let count = held.len();
            let mut latest = Duration::ZERO;
            let mut missing = 0;
            for (task, step) in held {
                match redelivered(&store, &task, step, &victim, killed_at).await {
                    Some(after) => latest = latest.max(after),
                    None => missing += 1,
                }
            }
            KillReport {
                victim,
                held: count,
                redelivered_after_ms: (count > 0 && missing == 0)
                    .then(|| u64::try_from(latest.as_millis()).unwrap_or(u64::MAX)),
                not_redelivered: missing,
            }
        }))
    }

    /// The report, once every held step was followed.
    pub async fn finish(self) -> KillReport {
        self.0.await.unwrap_or_else(|_| KillReport {
            victim: "?".into(),
            held: 0,
            redelivered_after_ms: None,
            not_redelivered: 0,
        })
    }
}

/// When (after `killed_at`) step `step` of `task` was claimed by another worker or ended.
async fn redelivered(
    store: &RedisStore,
    task: &TaskId,
    step: StepId,
    victim: &str,
    killed_at: Instant,
) -> Option<Duration> {
    while killed_at.elapsed() < FOLLOW_FOR {
        if let Ok(Some(record)) = store.get_task(task).await {
            let moved_on = record.steps.get(&step).is_none_or(|s| {
                s.state.is_terminal() || s.worker.as_deref().is_some_and(|w| w != victim)
            });
            if moved_on || record.status.is_terminal() {
                return Some(killed_at.elapsed());
            }
        }
        tokio::time::sleep(POLL).await;
    }
    None
}
