//! The drift guard (docs/ARCHITECTURE.md §5 "Drift"): per task type, a baseline of steps and cost
//! per task, the current p95 step count and mean cost over a rolling window of finished tasks,
//! and a stricter `max_subtasks` for new tasks of a type whose p95 is over twice its baseline.
//!
//! Key decisions: every number lives in the [`DriftStore`] (memory, or Redis shared by every
//! replica), so a restart or another replica sees the same baseline; a configured baseline
//! (`[drift.task_types.NAME]`) wins over the learned one (the p95 step count and mean cost of the
//! type's first `learn_tasks` finished tasks). Drift only ever *lowers* a request's limit, to the
//! baseline rounded up (at least 1). A drift store failure is logged and the task is planned as
//! asked: drift is a guard, never a reason to refuse work. Cost drift only alerts (the
//! `task_type_*` gauges feed `deploy/prometheus/alerts.yml`).

use crate::EngineError;
use planex_core::{Decimal, Stage};
use planex_store::{
    DriftRecord, DriftSample, DriftSizes, DriftStore, DriftStoreError, TaskRecord, mean_cost,
    p95_steps,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The task type of a request that names none.
pub const DEFAULT_TASK_TYPE: &str = "default";

/// A type drifts when its p95 step count is over this many times its baseline.
pub const STEP_DRIFT_FACTOR: f64 = 2.0;

/// A configured baseline of one task type; an absent field is learned instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfiguredBaseline {
    /// Expected (p95) plan steps per task.
    pub steps: Option<f64>,
    /// Expected cost per task in USD.
    pub cost_usd: Option<Decimal>,
}

/// Validated `[drift]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSettings {
    /// Record finished tasks and guard new ones.
    pub enabled: bool,
    /// A type's first this many finished tasks learn its baseline.
    pub learn_tasks: usize,
    /// The rolling window of recent finished tasks per type.
    pub window_tasks: usize,
    /// The fewest recent tasks whose p95 can declare drift.
    pub min_window_tasks: usize,
    /// Configured baselines by task type.
    pub task_types: BTreeMap<String, ConfiguredBaseline>,
}

impl Default for DriftSettings {
    fn default() -> Self {
        DriftSettings {
            enabled: true,
            learn_tasks: 200,
            window_tasks: 200,
            min_window_tasks: 20,
            task_types: BTreeMap::new(),
        }
    }
}

/// One task type's baseline and current values.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftStatus {
    /// The task type.
    pub task_type: String,
    /// Baseline (p95) steps per task: configured, else learned; `None` while learning.
    pub baseline_steps: Option<f64>,
    /// Baseline cost per task in USD: configured, else learned; `None` while learning.
    pub baseline_cost_usd: Option<Decimal>,
    /// p95 step count of the recent window (`None` when empty).
    pub steps_p95: Option<u32>,
    /// Mean cost per task of the recent window (`None` when empty).
    pub cost_usd_mean: Option<Decimal>,
    /// Tasks in the recent window.
    pub recent_tasks: usize,
    /// Tasks collected towards a learned baseline (0 once learned).
    pub learning_tasks: usize,
}

impl DriftStatus {
    /// Whether the p95 step count is over [`STEP_DRIFT_FACTOR`] × the baseline, on at least
    /// `min_window` recent tasks.
    pub fn steps_drifting(&self, min_window: usize) -> bool {
        match (self.baseline_steps, self.steps_p95) {
            (Some(baseline), Some(p95)) => {
                self.recent_tasks >= min_window.max(1)
                    && f64::from(p95) > STEP_DRIFT_FACTOR * baseline
            }
            _ => false,
        }
    }

    /// The stricter `max_subtasks` for a request asking `asked` while drifting: the baseline
    /// rounded up, at least 1, never above `asked`.
    pub fn stricter_limit(&self, asked: usize) -> usize {
        let baseline = self.baseline_steps.unwrap_or(asked as f64).ceil().max(1.0);
        // A float-to-int `as` saturates; the `min` keeps it within the request's own limit.
        (baseline as usize).min(asked)
    }
}

/// Checks a task type name: 1 to 64 letters, digits, `-`, `_` or `.` (it becomes a metric label
/// and a store key, so it must stay short and plain); absent is [`DEFAULT_TASK_TYPE`].
pub fn check_task_type(name: Option<&str>) -> Result<String, EngineError> {
    let Some(name) = name else {
        return Ok(DEFAULT_TASK_TYPE.to_owned());
    };
    let text = name.trim();
    if text.is_empty()
        || text.len() > 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(EngineError::InvalidRequest(format!(
            "task_type {name:?} is invalid: use 1 to 64 characters of letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(text.to_owned())
}

/// Records finished tasks per type and answers drift questions from the [`DriftStore`].
pub struct DriftGuard {
    store: Arc<dyn DriftStore>,
    settings: DriftSettings,
}

impl DriftGuard {
    /// A guard over `store` with `settings`.
    pub fn new(store: Arc<dyn DriftStore>, settings: DriftSettings) -> Self {
        DriftGuard { store, settings }
    }

    /// The settings.
    pub fn settings(&self) -> &DriftSettings {
        &self.settings
    }

    fn sizes(&self) -> DriftSizes {
        DriftSizes {
            learn_tasks: self.settings.learn_tasks,
            window: self.settings.window_tasks,
        }
    }

    /// The baseline and current values of `task_type`.
    pub async fn status(&self, task_type: &str) -> Result<DriftStatus, DriftStoreError> {
        let record = self.store.drift_record(task_type).await?;
        Ok(self.status_of(task_type, &record))
    }

    fn status_of(&self, task_type: &str, record: &DriftRecord) -> DriftStatus {
        let configured = self.settings.task_types.get(task_type);
        let learned = record.learned.as_ref();
        let steps: Vec<u32> = record.recent.iter().map(|s| s.steps).collect();
        DriftStatus {
            task_type: task_type.to_owned(),
            baseline_steps: configured
                .and_then(|c| c.steps)
                .or(learned.map(|l| f64::from(l.steps_p95))),
            baseline_cost_usd: configured
                .and_then(|c| c.cost_usd)
                .or(learned.map(|l| l.cost_usd_mean)),
            steps_p95: (!steps.is_empty()).then(|| p95_steps(&steps)),
            cost_usd_mean: (!record.recent.is_empty()).then(|| mean_cost(&record.recent)),
            recent_tasks: record.recent.len(),
            learning_tasks: record.learning,
        }
    }

    /// Every task type with a configured baseline or a recorded task, with its status.
    pub async fn statuses(&self) -> Result<Vec<DriftStatus>, DriftStoreError> {
        let mut types = self.store.drift_types().await?;
        types.extend(self.settings.task_types.keys().cloned());
        types.sort();
        types.dedup();
        let mut out = Vec::with_capacity(types.len());
        for task_type in types {
            out.push(self.status(&task_type).await?);
        }
        Ok(out)
    }

    /// Records a finished task (once per task id) under its type; a store failure is logged.
    pub async fn observe(&self, record: &TaskRecord) {
        let task_type = record.task_type.as_deref().unwrap_or(DEFAULT_TASK_TYPE);
        let steps = record
            .steps
            .values()
            .filter(|s| s.spec.stage == Stage::Step)
            .count();
        let sample = DriftSample {
            steps: u32::try_from(steps).unwrap_or(u32::MAX),
            cost_usd: record.cost().total.cost_usd,
        };
        let recorded = self
            .store
            .record_finished(task_type, &record.task_id, sample, self.sizes())
            .await;
        if let Err(error) = recorded {
            tracing::warn!(task = %record.task_id, %task_type, error = %planex_core::cause::ErrorChain(&error),
                "could not record the finished task's drift sample; its type's statistics miss it");
        }
    }

    /// The `max_subtasks` to plan a task of `task_type` with: `asked`, or the stricter limit when
    /// the type's steps drift (counted in `plan_drift_total{task_type}`). A store failure is
    /// logged and leaves `asked`.
    pub async fn limit(&self, task_type: &str, asked: usize) -> usize {
        let status = match self.status(task_type).await {
            Ok(status) => status,
            Err(error) => {
                tracing::warn!(%task_type, error = %planex_core::cause::ErrorChain(&error),
                    "could not read drift statistics; planning with the requested max_subtasks");
                return asked;
            }
        };
        if !status.steps_drifting(self.settings.min_window_tasks) {
            return asked;
        }
        let stricter = status.stricter_limit(asked);
        if stricter < asked {
            metrics::counter!("plan_drift_total", "task_type" => task_type.to_owned()).increment(1);
            tracing::info!(%task_type, asked, stricter, steps_p95 = ?status.steps_p95,
                baseline_steps = ?status.baseline_steps, "step-count drift: planning with a stricter max_subtasks");
        }
        stricter
    }

    /// Sets the `task_type_*{task_type}` gauges of every known type from the store (a failed read
    /// is logged and leaves the gauges as they were).
    pub async fn export_gauges(&self) {
        let statuses = match self.statuses().await {
            Ok(statuses) => statuses,
            Err(error) => {
                tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "could not read drift statistics for /metrics");
                return;
            }
        };
        for s in statuses {
            let label = s.task_type.clone();
            let usd = |d: Decimal| f64::try_from(d).unwrap_or(0.0);
            if let Some(v) = s.baseline_steps {
                metrics::gauge!("task_type_baseline_steps", "task_type" => label.clone()).set(v);
            }
            if let Some(v) = s.baseline_cost_usd {
                metrics::gauge!("task_type_baseline_cost_usd", "task_type" => label.clone())
                    .set(usd(v));
            }
            if let Some(v) = s.steps_p95 {
                metrics::gauge!("task_type_steps_p95", "task_type" => label.clone())
                    .set(f64::from(v));
            }
            if let Some(v) = s.cost_usd_mean {
                metrics::gauge!("task_type_cost_usd_mean", "task_type" => label.clone())
                    .set(usd(v));
            }
            metrics::gauge!("task_type_recent_tasks", "task_type" => label)
                .set(s.recent_tasks as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(baseline: Option<f64>, p95: Option<u32>, recent: usize) -> DriftStatus {
        DriftStatus {
            task_type: "t".into(),
            baseline_steps: baseline,
            baseline_cost_usd: None,
            steps_p95: p95,
            cost_usd_mean: None,
            recent_tasks: recent,
            learning_tasks: 0,
        }
    }

    #[test]
    fn drift_needs_a_baseline_a_full_window_and_twice_the_steps() {
        assert!(!status(None, Some(9), 50).steps_drifting(20));
        assert!(!status(Some(3.0), Some(6), 50).steps_drifting(20));
        assert!(status(Some(3.0), Some(7), 50).steps_drifting(20));
        assert!(!status(Some(3.0), Some(7), 19).steps_drifting(20));
    }

    #[test]
    fn the_stricter_limit_is_the_baseline_rounded_up_within_the_request() {
        assert_eq!(status(Some(2.2), None, 0).stricter_limit(10), 3);
        assert_eq!(status(Some(0.1), None, 0).stricter_limit(10), 1);
        assert_eq!(status(Some(0.0), None, 0).stricter_limit(10), 1);
        assert_eq!(status(Some(30.0), None, 0).stricter_limit(10), 10);
    }

    #[test]
    fn task_types_are_short_plain_names() {
        assert_eq!(check_task_type(None).unwrap(), "default");
        assert_eq!(
            check_task_type(Some(" research.v2 ")).unwrap(),
            "research.v2"
        );
        for bad in ["", " ", "a b", "x{y}", "é", &"x".repeat(65)] {
            let err = check_task_type(Some(bad)).unwrap_err();
            assert!(err.to_string().contains("task_type"), "{err}");
        }
    }
}
