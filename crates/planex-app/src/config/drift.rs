//! `[drift]` of `planex.toml`: the drift guard's sizes and configured baselines per task type,
//! validated into planex-engine's [`DriftSettings`].
//!
//! Key decision: a configured baseline may set steps, cost or both; what it leaves out is learned
//! from the type's first `learn_tasks` finished tasks, like an unconfigured type.

use super::error::{ConfigError, invalid};
use planex_core::Decimal;
use planex_engine::{ConfiguredBaseline, DriftSettings, check_task_type};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[drift]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDrift {
    /// Record finished tasks per type and guard drifting types.
    pub(crate) enabled: bool,
    /// A type's first this many finished tasks learn its baseline.
    pub(crate) learn_tasks: usize,
    /// Recent finished tasks per type the current values are computed over.
    pub(crate) window_tasks: usize,
    /// The fewest recent tasks whose p95 can declare drift.
    pub(crate) min_window_tasks: usize,
    /// `[drift.task_types.NAME]`: configured baselines.
    pub(crate) task_types: BTreeMap<String, RawTaskTypeBaseline>,
}

impl Default for RawDrift {
    fn default() -> Self {
        let d = DriftSettings::default();
        RawDrift {
            enabled: d.enabled,
            learn_tasks: d.learn_tasks,
            window_tasks: d.window_tasks,
            min_window_tasks: d.min_window_tasks,
            task_types: BTreeMap::new(),
        }
    }
}

/// `[drift.task_types.NAME]`: a configured baseline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTaskTypeBaseline {
    /// Expected p95 plan steps per task.
    pub(crate) baseline_steps: Option<f64>,
    /// Expected cost per task in USD.
    pub(crate) baseline_cost_usd: Option<Decimal>,
}

/// Validates `[drift]`.
pub(crate) fn settings(raw: &RawDrift) -> Result<DriftSettings, ConfigError> {
    for (field, value) in [
        ("drift.learn_tasks", raw.learn_tasks),
        ("drift.window_tasks", raw.window_tasks),
        ("drift.min_window_tasks", raw.min_window_tasks),
    ] {
        if value == 0 {
            return Err(invalid(field, "must be at least 1"));
        }
    }
    if raw.min_window_tasks > raw.window_tasks {
        return Err(invalid(
            "drift.min_window_tasks",
            format!(
                "must not exceed drift.window_tasks ({}), got {}",
                raw.window_tasks, raw.min_window_tasks
            ),
        ));
    }
    let mut task_types = BTreeMap::new();
    for (name, baseline) in &raw.task_types {
        let field = |f: &str| format!("drift.task_types.{name}.{f}");
        check_task_type(Some(name))
            .map_err(|e| invalid(format!("drift.task_types.{name}"), e.to_string()))?;
        if let Some(steps) = baseline.baseline_steps
            && !(steps.is_finite() && steps > 0.0)
        {
            return Err(invalid(
                field("baseline_steps"),
                format!("must be a number of steps greater than 0, got {steps}"),
            ));
        }
        if let Some(cost) = baseline.baseline_cost_usd
            && cost <= Decimal::ZERO
        {
            return Err(invalid(
                field("baseline_cost_usd"),
                format!("must be an amount in USD greater than 0, got {cost}"),
            ));
        }
        task_types.insert(
            name.trim().to_owned(),
            ConfiguredBaseline {
                steps: baseline.baseline_steps,
                cost_usd: baseline.baseline_cost_usd,
            },
        );
    }
    Ok(DriftSettings {
        enabled: raw.enabled,
        learn_tasks: raw.learn_tasks,
        window_tasks: raw.window_tasks,
        min_window_tasks: raw.min_window_tasks,
        task_types,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::{Config, DEFAULT_CONFIG as BASE};

    #[test]
    fn drift_defaults_and_configured_baselines() {
        let config = Config::from_toml(BASE).unwrap();
        assert!(config.drift.enabled);
        assert_eq!(config.drift.learn_tasks, 200);
        assert_eq!(config.drift.window_tasks, 200);
        let text = format!(
            "{BASE}\n[drift]\nlearn_tasks = 5\n\n[drift.task_types.research]\nbaseline_steps = 3\nbaseline_cost_usd = 0.02\n"
        );
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.drift.learn_tasks, 5);
        let research = &config.drift.task_types["research"];
        assert_eq!(research.steps, Some(3.0));
        assert_eq!(research.cost_usd, Some("0.02".parse().unwrap()));
    }

    #[test]
    fn bad_drift_values_name_the_field() {
        for (extra, field) in [
            ("[drift]\nlearn_tasks = 0\n", "drift.learn_tasks"),
            (
                "[drift]\nwindow_tasks = 5\nmin_window_tasks = 6\n",
                "drift.min_window_tasks",
            ),
            (
                "[drift.task_types.\"a b\"]\nbaseline_steps = 3\n",
                "drift.task_types.a b",
            ),
            (
                "[drift.task_types.x]\nbaseline_steps = 0\n",
                "drift.task_types.x.baseline_steps",
            ),
            (
                "[drift.task_types.x]\nbaseline_cost_usd = -1\n",
                "drift.task_types.x.baseline_cost_usd",
            ),
        ] {
            let err = Config::from_toml(&format!("{BASE}\n{extra}")).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }
}
