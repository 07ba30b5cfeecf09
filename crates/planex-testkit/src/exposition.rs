//! Strict checks of a Prometheus text exposition (`/metrics` of `planex serve` or of a
//! `planex worker`), for tests: `prometheus_client`'s parser with the type checks it leaves out
//! (`python/check_metrics.py`, run from the test venv), and `promtool check metrics`.
//!
//! Key decision: promtool is required, not optional: a test that cannot find it fails and says
//! how to install it (CI's "deploy files" step installs it before the tests run), unless
//! `PLANEX_SKIP_PROMTOOL=1` says to skip it on purpose. A silent skip would let a lint failure
//! pass on every machine that lacks it.

#![allow(clippy::panic)] // Test assertions: failing = panicking, with the reason.

use crate::python;
use std::io::Write;
use std::process::{Command, Stdio};

/// Set to `1` to skip the promtool half of [`assert_valid`] where promtool cannot be installed.
pub const SKIP_PROMTOOL_ENV: &str = "PLANEX_SKIP_PROMTOOL";

/// The metrics of the product requirements, each `NAME:LABEL,…` with the labels its samples carry
/// (the argument format of `check_metrics.py`). `subtasks_per_task` was `subtask_count`.
pub const REQUIRED_METRICS: &[&str] = &[
    "planner_token_total:stage",
    "executor_token_total:step_type",
    "task_cost_usd",
    "subtasks_per_task",
    "queue_depth:tier",
    "ttft_seconds:tier",
    "step_duration_seconds:tier,tool",
    "step_retries_total",
    "dlq_total:tool",
    "plan_cache_hits_total",
    "budget_replans_total",
    "budget_rejections_total:budget",
];

/// Panics unless `text` passes the strict parse with every family of `required` present (each
/// `NAME` or `NAME:LABEL,…`), and `promtool check metrics` (see the module comment).
pub fn assert_valid(text: &str, required: &[&str]) {
    assert_strict(text, required);
    assert_promtool(text);
}

/// Panics unless `text` passes `check_metrics.py` with `required` present.
pub fn assert_strict(text: &str, required: &[&str]) {
    let python = python::test_tools().unwrap_or_else(|e| panic!("the Python test tools: {e}"));
    let output = python::run_script(
        &python,
        &python::script("check_metrics.py"),
        required,
        text.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("cannot run check_metrics.py with {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "the exposition fails the strict parse:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Panics unless `promtool check metrics` accepts `text` (lint problems included); when
/// promtool is not installed, panics saying how to install it, unless `PLANEX_SKIP_PROMTOOL=1`.
pub fn assert_promtool(text: &str) {
    let skip = std::env::var(SKIP_PROMTOOL_ENV).is_ok_and(|v| v == "1");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) if skip => return,
        Err(error) => panic!(
            "promtool is needed to check /metrics and could not be run ({error}): install it \
             (apt-get install prometheus; .ci/validate-deploy does), or set {SKIP_PROMTOOL_ENV}=1 \
             to skip this check on purpose"
        ),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // promtool reads everything before it answers; a write error shows in its output.
        let _ = stdin.write_all(text.as_bytes());
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool did not finish: {e}"));
    assert!(
        output.status.success(),
        "promtool check metrics refuses the exposition ({}):\n{}{}\n--- exposition ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the exporter rendered for a histogram named `subtask_count`: its `_count` series came
    /// out as `subtask_count`, a stray family of unknown type.
    const COLLIDING: &str = "# HELP subtask_count Steps per finished task.
# TYPE subtask_count histogram
subtask_count_bucket{le=\"1\"} 0
subtask_count_bucket{le=\"+Inf\"} 3
subtask_count_sum 9
subtask_count 3
";

    #[test]
    fn the_strict_parse_refuses_a_histogram_whose_count_lost_its_suffix() {
        let panic = std::panic::catch_unwind(|| assert_strict(COLLIDING, &[])).unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("subtask_count"), "{message}");
        let fixed = COLLIDING.replace("subtask_count 3", "subtask_count_count 3");
        assert_strict(&fixed, &["subtask_count"]);
    }

    #[test]
    fn the_strict_parse_refuses_missing_families_and_labels() {
        let text = "# HELP queue_depth Steps waiting.\n# TYPE queue_depth gauge\nqueue_depth 1\n";
        assert_strict(text, &["queue_depth"]);
        for required in ["queue_depth:tier", "dlq_total"] {
            assert!(
                std::panic::catch_unwind(|| assert_strict(text, &[required])).is_err(),
                "{required} is not there"
            );
        }
    }
}
