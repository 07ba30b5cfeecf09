//! Workload files: JSONL lines pinning the plans the planner answers for a task text.
//!
//! Key decision: plans are stored as the exact content text to send (JSON values compacted,
//! JSON strings verbatim) so tests can pin malformed plans; the per-task request counter lives
//! in the server state, not here, so a [`Workload`] stays an immutable, cloneable value.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::error::SimError;

/// Plans pinned per task text (task text is matched after trimming whitespace).
#[derive(Clone, Debug, Default)]
pub struct Workload {
    plans: HashMap<String, Vec<String>>,
}

impl Workload {
    /// Reads and parses a workload file.
    pub fn from_path(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::WorkloadIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_jsonl(&text)
    }

    /// Parses JSONL text: `{"task": …, "plan": P}` or `{"task": …, "plans": [P, …]}` per line;
    /// blank lines and lines starting with `#` are ignored; extra fields are ignored.
    pub fn from_jsonl(text: &str) -> Result<Self, SimError> {
        let mut plans = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let value: Value =
                serde_json::from_str(trimmed).map_err(|source| SimError::Workload {
                    line,
                    message:
                        "not valid JSON; write one object per line: {\"task\": …, \"plan\": …}"
                            .to_owned(),
                    source: Some(source),
                })?;
            let (task, list) = parse_line(value).map_err(|message| SimError::Workload {
                line,
                message,
                source: None,
            })?;
            plans.insert(task, list);
        }
        Ok(Self { plans })
    }

    /// Adds (or replaces) the plan sequence of one task; each item is sent as content verbatim.
    pub fn insert(&mut self, task: &str, plans: Vec<String>) {
        self.plans.insert(task.trim().to_owned(), plans);
    }

    /// The content for the `k`-th planner request (0-based) of `task`, if the task is pinned.
    /// Requests past the end of the sequence get its last item.
    pub fn plan_for(&self, task: &str, k: usize) -> Option<&str> {
        let list = self.plans.get(task.trim())?;
        let last = list.len().checked_sub(1)?;
        list.get(k.min(last)).map(String::as_str)
    }

    /// Whether the task text is pinned.
    pub fn contains(&self, task: &str) -> bool {
        self.plans.contains_key(task.trim())
    }

    /// Number of pinned tasks.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Whether no task is pinned.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }
}

fn parse_line(value: Value) -> Result<(String, Vec<String>), String> {
    let Value::Object(map) = value else {
        return Err("expected a JSON object".to_owned());
    };
    let task = map
        .get("task")
        .and_then(Value::as_str)
        .ok_or_else(|| "missing string field \"task\"".to_owned())?
        .trim()
        .to_owned();
    let items: Vec<&Value> = match (map.get("plan"), map.get("plans")) {
        (Some(_), Some(_)) => return Err("give either \"plan\" or \"plans\", not both".to_owned()),
        (Some(plan), None) => vec![plan],
        (None, Some(Value::Array(list))) if !list.is_empty() => list.iter().collect(),
        (None, Some(_)) => return Err("\"plans\" must be a non-empty array".to_owned()),
        (None, None) => return Err("missing field \"plan\" or \"plans\"".to_owned()),
    };
    let list = items
        .into_iter()
        .map(|item| match item {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    Ok((task, list))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_plans_and_skips_comments() {
        let text = "# comment\n\n{\"task\":\"t\",\"id\":3,\"plans\":[\"{\\\"steps\\\": [\", {\"steps\":[]}]}\n";
        let w = Workload::from_jsonl(text).unwrap();
        assert_eq!(w.plan_for("t", 0), Some("{\"steps\": ["));
        assert_eq!(w.plan_for(" t ", 1), Some("{\"steps\":[]}"));
        assert_eq!(w.plan_for("t", 7), Some("{\"steps\":[]}"));
        assert_eq!(w.plan_for("other", 0), None);
    }

    #[test]
    fn bad_line_names_its_number() {
        let err = Workload::from_jsonl("{\"task\":\"a\",\"plan\":{}}\n\nnot json\n").unwrap_err();
        assert!(matches!(err, SimError::Workload { line: 3, .. }), "{err}");
        let err = Workload::from_jsonl("{\"plan\":{}}").unwrap_err();
        assert!(err.to_string().contains("line 1"));
    }

    #[test]
    fn a_line_that_is_not_json_keeps_the_parser_error() {
        use std::error::Error as _;
        let err = Workload::from_jsonl("{\"task\": \"a\", \"plan\": {}}\n{oops\n").unwrap_err();
        let source = err.source().expect("the JSON error is the source");
        assert!(source.downcast_ref::<serde_json::Error>().is_some());
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(!err.to_string().contains(&source.to_string()), "{err}");
    }
}
