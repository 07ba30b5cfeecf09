//! Drift statistics on Redis (`DriftStore` for `RedisStore`): recording is one script
//! (`lua/drift_record.lua`), reads are plain commands.
//!
//! Layout per task type (the type is the hash tag, so one type's keys share a slot):
//! `px:drift:{TYPE}` hash `steps_p95`, `cost_usd_mean`, `tasks` (the learned baseline, written
//! once); `px:drift:{TYPE}:recent` list of `STEPS:COST` samples, newest first, trimmed to the
//! window (`LPUSH` + `LTRIM`, in the record script); `px:drift:{TYPE}:learn` list of the learning
//! samples (`RPUSH`, deleted once learned); `px:drift:{TYPE}:seen:{TASK}` a 7-day marker that
//! makes recording idempotent (`SET NX`, in the same script as the push); `px:drift:types` the set of recorded types.
//!
//! Key decision: any recorder (first or duplicate) that finds no baseline and at least
//! `learn_tasks` learning samples learns the baseline from the list's first `learn_tasks`
//! entries (`lua/drift_learn.lua` writes it only if none is written); that is deterministic, so
//! racing replicas write the same values, and whoever's record call returns sees the baseline.
//! (Two separate steps raced: a task's waiter returned while its watcher had marked the task seen
//! but not pushed its sample yet.)

use super::RedisStore;
use super::errors::failed;
use super::shared::Retry;
use crate::drift::{
    DriftRecord, DriftSample, DriftSizes, DriftStore, DriftStoreError, LearnedBaseline,
    learn_baseline,
};
use async_trait::async_trait;
use planex_core::cause::SharedSource;
use planex_core::{Decimal, TaskId};
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;

/// How long a recorded task id is remembered (a task is settled within a day).
const SEEN_SECS: u64 = 7 * 24 * 3600;

fn unavailable(what: &str) -> impl FnOnce(redis::RedisError) -> DriftStoreError + '_ {
    move |e| DriftStoreError::Unavailable {
        what: failed(what),
        source: SharedSource::new(e),
    }
}

fn encode(sample: DriftSample) -> String {
    format!("{}:{}", sample.steps, sample.cost_usd)
}

fn decode(text: &str) -> Result<DriftSample, DriftStoreError> {
    let corrupt = || DriftStoreError::Corrupt {
        what: format!("drift sample {text:?} is not STEPS:COST"),
    };
    let (steps, cost) = text.split_once(':').ok_or_else(corrupt)?;
    Ok(DriftSample {
        steps: steps.parse().map_err(|_| corrupt())?,
        cost_usd: cost.parse().map_err(|_| corrupt())?,
    })
}

fn learned(hash: &HashMap<String, String>) -> Result<Option<LearnedBaseline>, DriftStoreError> {
    let Some(steps) = hash.get("steps_p95") else {
        return Ok(None);
    };
    let corrupt = |field: &str| DriftStoreError::Corrupt {
        what: format!("drift baseline field {field} is not a number"),
    };
    let cost: Decimal = hash
        .get("cost_usd_mean")
        .map(|c| c.parse())
        .transpose()
        .map_err(|_| corrupt("cost_usd_mean"))?
        .unwrap_or_default();
    let tasks: usize = hash
        .get("tasks")
        .map(|t| t.parse())
        .transpose()
        .map_err(|_| corrupt("tasks"))?
        .unwrap_or_default();
    Ok(Some(LearnedBaseline {
        steps_p95: steps.parse().map_err(|_| corrupt("steps_p95"))?,
        cost_usd_mean: cost,
        tasks,
    }))
}

/// The script that records one sample (`lua/drift_record.lua`), hashed once per process.
static RECORD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/drift_record.lua")));
/// The script that writes a learned baseline once (`lua/drift_learn.lua`).
static LEARN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/drift_learn.lua")));

impl RedisStore {
    /// Learns the baseline from the first `n` learning samples, unless another recorder learned
    /// it already (then the list is gone or the script finds the baseline written).
    async fn learn(&self, hash: &str, learn: &str, n: usize) -> Result<(), DriftStoreError> {
        let range = redis::cmd("LRANGE")
            .arg(learn)
            .arg(0)
            .arg(n.saturating_sub(1))
            .clone();
        let entries: Vec<String> = self
            .core
            .query(Retry::Idempotent, &range)
            .await
            .map_err(unavailable("read drift learning samples"))?;
        if entries.len() < n {
            return Ok(());
        }
        let samples = entries
            .iter()
            .map(|e| decode(e))
            .collect::<Result<Vec<_>, _>>()?;
        let baseline = learn_baseline(&samples);
        let mut invocation = LEARN.prepare_invoke();
        invocation
            .key(hash)
            .key(learn)
            .arg(baseline.steps_p95)
            .arg(baseline.cost_usd_mean.to_string())
            .arg(baseline.tasks);
        self.core
            .invoke::<i64>(Retry::Idempotent, &invocation)
            .await
            .map_err(unavailable("write drift baseline"))?;
        Ok(())
    }
}

#[async_trait]
impl DriftStore for RedisStore {
    async fn record_finished(
        &self,
        task_type: &str,
        task_id: &TaskId,
        sample: DriftSample,
        sizes: DriftSizes,
    ) -> Result<bool, DriftStoreError> {
        let keys = &self.core.keys;
        let hash = keys.drift(task_type);
        let learn = format!("{hash}:learn");
        let n = sizes.learn_tasks.max(1);
        let mut invocation = RECORD.prepare_invoke();
        invocation
            .key(format!("{hash}:seen:{}", task_id.0))
            .key(keys.drift_types())
            .key(format!("{hash}:recent"))
            .key(&hash)
            .key(&learn)
            .arg(task_type)
            .arg(encode(sample))
            .arg(sizes.window.max(1))
            .arg(SEEN_SECS)
            .arg(n);
        // Idempotent: the seen marker makes a resent call record nothing twice.
        let (recorded, ready): (bool, bool) = self
            .core
            .invoke(Retry::Idempotent, &invocation)
            .await
            .map_err(unavailable("record a drift sample"))?;
        // A duplicate call learns too when the baseline is due: its caller then reads a learned
        // baseline even if the first recorder is still between its two steps.
        if ready {
            self.learn(&hash, &learn, n).await?;
        }
        Ok(recorded)
    }

    async fn drift_record(&self, task_type: &str) -> Result<DriftRecord, DriftStoreError> {
        let hash = self.core.keys.drift(task_type);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HGETALL")
            .arg(&hash)
            .cmd("LRANGE")
            .arg(format!("{hash}:recent"))
            .arg(0)
            .arg(-1)
            .cmd("LLEN")
            .arg(format!("{hash}:learn"));
        let (fields, recent, learning): (HashMap<String, String>, Vec<String>, usize) = pipe
            .query_async(&mut self.core.conn())
            .await
            .map_err(unavailable("read drift statistics"))?;
        let learned = learned(&fields)?;
        Ok(DriftRecord {
            learning: if learned.is_some() { 0 } else { learning },
            learned,
            recent: recent.iter().map(|e| decode(e)).collect::<Result<_, _>>()?,
        })
    }

    async fn drift_types(&self) -> Result<Vec<String>, DriftStoreError> {
        let mut types: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.core.keys.drift_types())
            .query_async(&mut self.core.conn())
            .await
            .map_err(unavailable("read drift task types"))?;
        types.sort();
        Ok(types)
    }
}
