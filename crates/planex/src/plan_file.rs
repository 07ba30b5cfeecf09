//! Plan files for `planex run --plan FILE` (one JSON document) and `--plans FILE` (JSONL, one
//! task a line): each entry becomes a `TaskRequest` carrying the client's plan.
//!
//! Key decision: this module only reads the files' layout (which keys a line has, where the plan
//! is); the plan itself is validated by the engine (`Engine::check`), the same rules as
//! `POST /v1/tasks`, so a file that `planex run` accepts is one the API accepts. An entry is
//! `{"task"?, "plan": {"steps": [...]}}` or the flat `{"task"?, "steps": [...]}`; it may also
//! carry `id` (a label, as the files in `workloads/` have), `synthesis` and `budget_usd`.

use anyhow::{Context, Result};
use planex_core::{Decimal, PlanError};
use planex_engine::{EngineError, TaskRequest};
use serde_json::{Map, Value};
use std::path::Path;

/// Keys an entry may have besides its plan.
const ENTRY_KEYS: [&str; 6] = ["task", "plan", "steps", "id", "synthesis", "budget_usd"];

/// One task of a plan file: where it is and its request (or why the entry cannot be read).
pub struct Entry {
    /// The line number in a `--plans` file (1-based); `None` for a `--plan` file.
    pub line: Option<usize>,
    /// The entry's `id`, when it has one.
    pub id: Option<String>,
    /// The request to run, or why the entry is not a valid entry.
    pub request: Result<TaskRequest, String>,
}

impl Entry {
    /// Where the entry is, for messages: `line 4 of plans.jsonl` or `plan.json`.
    pub fn place(&self, file: &Path) -> String {
        match self.line {
            Some(line) => format!("line {line} of {}", file.display()),
            None => file.display().to_string(),
        }
    }
}

/// Reads a `--plan` file: one JSON document. `task` (the positional argument) overrides the
/// file's own `task`.
pub fn read_plan(path: &Path, task: Option<&str>) -> Result<Entry> {
    let text = read(path)?;
    let mut entry = entry(&text, None);
    if let (Some(task), Ok(request)) = (task, &mut entry.request) {
        request.task = task.to_owned();
    }
    Ok(entry)
}

/// Reads a `--plans` file: one entry a line; blank lines and lines starting with `#` are skipped.
pub fn read_plans(path: &Path) -> Result<Vec<Entry>> {
    let text = read(path)?;
    let entries: Vec<Entry> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(index, line)| entry(line, Some(index + 1)))
        .collect();
    if entries.is_empty() {
        anyhow::bail!(
            "{} has no plans; write one JSON object a line: {{\"task\": ..., \"plan\": {{\"steps\": [...]}}}}",
            path.display()
        );
    }
    Ok(entries)
}

/// Why an entry's plan was refused, in one line: the rule, the step, the message.
pub fn refusal(error: &EngineError) -> String {
    match error {
        EngineError::InvalidPlan(plan) => format!("invalid plan ({}): {plan}", culprit(plan)),
        other => planex_core::cause::chain_text(other),
    }
}

/// `rule cycle, step 3`, `rule shape, steps[2]` or `rule empty`.
fn culprit(error: &PlanError) -> String {
    let rule = format!("rule {}", error.rule());
    match (error.step_id(), error.step_index()) {
        (Some(step), _) => format!("{rule}, step {step}"),
        (None, Some(index)) => format!("{rule}, steps[{index}]"),
        (None, None) => rule,
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan file {}", path.display()))
}

/// Parses one entry (a `--plan` document or a `--plans` line).
fn entry(text: &str, line: Option<usize>) -> Entry {
    let value = serde_json::from_str::<Value>(text).map_err(|e| {
        format!("not JSON: {e}; an entry is {{\"task\": ..., \"plan\": {{\"steps\": [...]}}}}")
    });
    let (id, request) = match value {
        Ok(Value::Object(map)) => {
            let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
            (id, request(map))
        }
        Ok(other) => (
            None,
            Err(format!(
                "expected a JSON object with a plan, got {}",
                kind(&other)
            )),
        ),
        Err(error) => (None, Err(error)),
    };
    Entry { line, id, request }
}

/// The request of an entry's object: its plan (nested or flat) and its options.
fn request(mut map: Map<String, Value>) -> Result<TaskRequest, String> {
    if let Some(key) = map.keys().find(|k| !ENTRY_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key {key:?}; an entry has {}",
            ENTRY_KEYS.join(", ")
        ));
    }
    let task = match map.remove("task") {
        None => String::new(),
        Some(Value::String(task)) => task,
        Some(other) => return Err(format!("task: expected a string, got {}", kind(&other))),
    };
    let synthesis = match map.remove("synthesis") {
        None => None,
        Some(Value::Bool(on)) => Some(on),
        Some(other) => {
            return Err(format!(
                "synthesis: expected true or false, got {}",
                kind(&other)
            ));
        }
    };
    let budget_usd = match map.remove("budget_usd") {
        None => None,
        Some(value) => Some(budget(&value)?),
    };
    let plan = match (map.remove("plan"), map.remove("steps")) {
        (Some(plan), None) => plan,
        (None, Some(steps)) => serde_json::json!({ "steps": steps }),
        (Some(_), Some(_)) => {
            return Err("give the steps once: either \"plan\": {\"steps\": [...]} or a top-level \"steps\", not both".into());
        }
        (None, None) => {
            return Err(
                "no plan: add \"plan\": {\"steps\": [...]} (or a top-level \"steps\")".into(),
            );
        }
    };
    Ok(TaskRequest {
        task,
        plan: Some(plan),
        synthesis,
        budget_usd,
        ..TaskRequest::default()
    })
}

/// A budget in USD, as a string (`"0.05"`) or a number.
fn budget(value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        other => {
            return Err(format!(
                "budget_usd: expected an amount in USD such as \"0.05\", got {}",
                kind(other)
            ));
        }
    };
    text.parse::<Decimal>()
        .map_err(|e| format!("budget_usd: {text:?} is not an amount in USD: {e}"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
