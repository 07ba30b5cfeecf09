//! Reading a workload file for `planex compare`: the JSONL format of `planex sim --workload`
//! (`{"task": …, "plan": P}` or `{"task": …, "plans": [P, …]}` per line, `#` comments), plus an
//! optional `"id"` label per task.
//!
//! Key decision: the same file feeds both the simulators (which pin the plans) and the comparison
//! (which needs each task's text, label and step count), so a user's own workload runs unchanged
//! against simulators or, without plans, against real model servers.

use crate::{CompareError, WorkloadLineError};
use serde_json::Value;
use std::path::Path;

/// One task of a workload.
#[derive(Debug, Clone)]
pub struct WorkloadTask {
    /// Label for tables: the line's `"id"`, else `line N`.
    pub label: String,
    /// The task text.
    pub task: String,
    /// Steps of the pinned plan (the last one when several are pinned), if any.
    pub steps: Option<usize>,
}

/// Reads every task of a workload file.
pub fn read(path: &Path) -> Result<Vec<WorkloadTask>, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::WorkloadRead {
        path: path.to_owned(),
        source,
    })?;
    let tasks = parse(&text).map_err(|source| CompareError::WorkloadInvalid {
        origin: format!("file {}", path.display()),
        source,
    })?;
    if tasks.is_empty() {
        return Err(CompareError::WorkloadEmpty {
            path: path.to_owned(),
        });
    }
    Ok(tasks)
}

/// Parses JSONL workload text.
pub fn parse(text: &str) -> Result<Vec<WorkloadTask>, WorkloadLineError> {
    let mut tasks = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let problem = |problem: &str| WorkloadLineError {
            line,
            problem: problem.to_owned(),
            json: None,
        };
        let value: Value = serde_json::from_str(trimmed).map_err(|json| WorkloadLineError {
            json: Some(json),
            ..problem("is not a JSON object")
        })?;
        let Some(task) = value.get("task").and_then(Value::as_str) else {
            return Err(problem("has no string field \"task\""));
        };
        if task.trim().is_empty() {
            return Err(problem("has an empty \"task\""));
        }
        let plan = match (value.get("plan"), value.get("plans")) {
            (Some(plan), _) => Some(plan),
            (None, Some(Value::Array(list))) => list.last(),
            _ => None,
        };
        let steps = plan.and_then(plan_steps);
        let label = value
            .get("id")
            .map(|id| match id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| format!("line {line}"));
        tasks.push(WorkloadTask {
            label,
            task: task.trim().to_owned(),
            steps,
        });
    }
    Ok(tasks)
}

/// Step count of a plan given as a JSON value or as JSON text.
fn plan_steps(plan: &Value) -> Option<usize> {
    let parsed;
    let plan = match plan {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).ok()?;
            &parsed
        }
        other => other,
    };
    plan.get("steps").and_then(Value::as_array).map(Vec::len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn reads_labels_and_step_counts() {
        let text = "# c\n{\"id\":\"a\",\"task\":\" t1 \",\"plan\":{\"steps\":[{},{}]}}\n\n{\"task\":\"t2\",\"plans\":[\"x\",\"{\\\"steps\\\":[{}]}\"]}\n{\"task\":\"t3\"}\n";
        let tasks = parse(text).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(
            (tasks[0].label.as_str(), tasks[0].task.as_str()),
            ("a", "t1")
        );
        assert_eq!(tasks[0].steps, Some(2));
        assert_eq!(
            (tasks[1].label.as_str(), tasks[1].steps),
            ("line 4", Some(1))
        );
        assert_eq!(tasks[2].steps, None);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let error = parse("{\"task\":\"a\"}\nnope\n").unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
        let error = parse("{\"plan\":{}}").unwrap_err();
        assert!(format!("{error:#}").contains("\"task\""));
    }
}
