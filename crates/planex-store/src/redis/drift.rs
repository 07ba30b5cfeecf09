//! Drift statistics on Redis (`DriftStore` for `RedisStore`), with plain commands only.
//!
//! Layout per task type (the type is the hash tag, so one type's keys share a slot):
//! `px:drift:{TYPE}` hash `steps_p95`, `cost_usd_mean`, `tasks` (the learned baseline, written
//! once); `px:drift:{TYPE}:recent` list of `STEPS:COST` samples, newest first, trimmed to the
//! window (`LPUSH` + `LTRIM` in one `MULTI`); `px:drift:{TYPE}:learn` list of the learning
//! samples (`RPUSH`, deleted once learned); `px:drift:{TYPE}:seen:{TASK}` a 7-day marker that
//! makes recording idempotent (`SET NX`); `px:drift:types` the set of recorded types.
//!
//! Key decision: whoever's `RPUSH` makes the learning list reach `learn_tasks` (or finds it
//! longer with no baseline yet, after a crash) learns the baseline from the list's first
//! `learn_tasks` entries; that is deterministic, so racing replicas write the same values.

use super::RedisStore;
use super::errors::failed;
use crate::drift::{
    DriftRecord, DriftSample, DriftSizes, DriftStore, DriftStoreError, LearnedBaseline,
    learn_baseline,
};
use async_trait::async_trait;
use planex_core::cause::SharedSource;
use planex_core::{Decimal, TaskId};
use std::collections::HashMap;

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

impl RedisStore {
    /// Learns the baseline from the first `n` learning samples, unless one is learned already.
    async fn learn(&self, hash: &str, learn: &str, n: usize) -> Result<(), DriftStoreError> {
        let mut conn = self.core.conn();
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(learn)
            .arg(0)
            .arg(n.saturating_sub(1))
            .query_async(&mut conn)
            .await
            .map_err(unavailable("read drift learning samples"))?;
        let samples = entries
            .iter()
            .map(|e| decode(e))
            .collect::<Result<Vec<_>, _>>()?;
        let baseline = learn_baseline(&samples);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(hash)
            .arg("steps_p95")
            .arg(baseline.steps_p95)
            .arg("cost_usd_mean")
            .arg(baseline.cost_usd_mean.to_string())
            .arg("tasks")
            .arg(baseline.tasks)
            .ignore()
            .cmd("DEL")
            .arg(learn)
            .ignore();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(unavailable("write drift baseline"))
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
        let mut conn = self.core.conn();
        let first: Option<String> = redis::cmd("SET")
            .arg(format!("{hash}:seen:{}", task_id.0))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(SEEN_SECS)
            .query_async(&mut conn)
            .await
            .map_err(unavailable("mark a drift sample recorded"))?;
        if first.is_none() {
            return Ok(false);
        }
        let entry = encode(sample);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SADD")
            .arg(keys.drift_types())
            .arg(task_type)
            .ignore()
            .cmd("LPUSH")
            .arg(format!("{hash}:recent"))
            .arg(&entry)
            .ignore()
            .cmd("LTRIM")
            .arg(format!("{hash}:recent"))
            .arg(0)
            .arg(sizes.window.max(1) - 1)
            .ignore()
            .cmd("HEXISTS")
            .arg(&hash)
            .arg("steps_p95");
        let (has_baseline,): (bool,) = pipe
            .query_async(&mut conn)
            .await
            .map_err(unavailable("record a drift sample"))?;
        if has_baseline {
            return Ok(true);
        }
        let learn = format!("{hash}:learn");
        let n = sizes.learn_tasks.max(1);
        let len: usize = redis::cmd("RPUSH")
            .arg(&learn)
            .arg(&entry)
            .query_async(&mut conn)
            .await
            .map_err(unavailable("record a drift learning sample"))?;
        if len >= n {
            self.learn(&hash, &learn, n).await?;
        }
        Ok(true)
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
