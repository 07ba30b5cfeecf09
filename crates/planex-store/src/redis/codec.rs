//! Turning Redis replies into the store's records: task hashes into `TaskRecord`s, stored event
//! JSON into `TaskEvent`s, dead-letter stream entries into `DeadLetter`s, a task hash's status and
//! step count with its call records into a `TaskSummary`.
//!
//! Key decision: the Lua scripts never decode JSON written by Rust (specs, results, call records
//! are opaque strings to them), and they write events and dead letters as JSON in exactly the
//! serde shapes of `types.rs`, so Rust decodes everything with serde and nothing is re-encoded.

use super::errors::{corrupt, corrupt_by};
use crate::dead_letters::DeadLetter;
use crate::error::StoreError;
use crate::types::*;
use planex_core::{CallRecord, CostBreakdown, StepId, TaskId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};

fn json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt_by(what, e))
}

/// A one-word enum value (a status or state) stored as its serde name.
pub(super) fn word<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| corrupt_by(format!("{what} {text:?}"), e))
}

fn number<T: std::str::FromStr>(
    what: &str,
    text: Option<&String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| {
        t.parse()
            .map_err(|_| corrupt(format!("{what} {t:?} is not a number")))
    })
    .transpose()
}

/// Builds a task record from its hashes and call list; `None` when the task hash is empty.
pub(super) fn task_record(
    task_id: &TaskId,
    task: HashMap<String, String>,
    steps: HashMap<String, String>,
    calls: Vec<String>,
) -> Result<Option<TaskRecord>, StoreError> {
    if task.is_empty() {
        return Ok(None);
    }
    let field = |name: &str| task.get(name).cloned();
    let status = field("status").ok_or_else(|| corrupt(format!("task {task_id} has no status")))?;
    let mut record = TaskRecord {
        task_id: task_id.clone(),
        task: field("task").unwrap_or_default(),
        status: word("task status", &status)?,
        tenant: field("tenant"),
        cost_center: field("cost_center"),
        task_type: field("task_type"),
        end_user: field("end_user"),
        retry_of: field("retry_of").map(TaskId),
        trace_parent: field("traceparent"),
        plan: field("plan").map(|p| json("task plan", &p)).transpose()?,
        steps: BTreeMap::new(),
        calls: calls
            .iter()
            .map(|c| json::<CallRecord>("call record", c))
            .collect::<Result<_, _>>()?,
        error: field("error"),
        created_at_ms: number("created", task.get("created"))?.unwrap_or(0),
        finished_at_ms: number("finished", task.get("finished"))?,
    };
    let superseded: std::collections::BTreeSet<&str> = task
        .get("sup")
        .map(|csv| csv.split(',').collect())
        .unwrap_or_default();
    for (key, spec) in steps.iter().filter(|(k, _)| !k.contains(':')) {
        let step_id: u32 = key
            .parse()
            .map_err(|e| corrupt_by(format!("step key {key:?} of task {task_id}"), e))?;
        let get = |name: &str| steps.get(&format!("{key}:{name}"));
        let state = get("state").ok_or_else(|| corrupt(format!("step {key} has no state")))?;
        let step = StepRecord {
            spec: json("step spec", spec)?,
            state: word("step state", state)?,
            attempts: number("attempts", get("attempts"))?.unwrap_or(0),
            deliveries: number("deliveries", get("deliveries"))?.unwrap_or(0),
            result: get("result").map(|r| json("step result", r)).transpose()?,
            error: get("error").cloned(),
            worker: get("worker").cloned(),
            started_at_ms: number("started", get("started"))?,
            finished_at_ms: number("finished", get("finished"))?,
            superseded: superseded.contains(key.as_str()),
        };
        record.steps.insert(StepId(step_id), step);
    }
    Ok(Some(record))
}

pub(super) fn task_summary(
    task_id: &TaskId,
    status: Option<String>,
    steps: Option<String>,
    calls: Vec<String>,
) -> Result<Option<TaskSummary>, StoreError> {
    let Some(status) = status else {
        return Ok(None);
    };
    let calls: Vec<CallRecord> = calls
        .iter()
        .map(|c| json::<CallRecord>("call record", c))
        .collect::<Result<_, _>>()?;
    Ok(Some(TaskSummary {
        status: word("task status", &status)?,
        steps: number(&format!("step count of task {task_id}"), steps.as_ref())?.unwrap_or(0),
        cost: CostBreakdown::from_records(&calls),
    }))
}

#[derive(Deserialize)]
struct StoredEvent {
    at_ms: u64,
    #[serde(flatten)]
    kind: EventKind,
}

/// Decodes an event stored at list position `seq - 1`.
pub(super) fn event(seq: u64, text: &str) -> Result<TaskEvent, StoreError> {
    let stored: StoredEvent = json("task event", text)?;
    Ok(TaskEvent {
        seq,
        at_ms: stored.at_ms,
        kind: stored.kind,
    })
}

/// Decodes a published message `SEQ|JSON`.
pub(super) fn published_event(payload: &str) -> Option<(u64, &str)> {
    let (seq, json) = payload.split_once('|')?;
    Some((seq.parse().ok()?, json))
}

/// Decodes a dead letter's JSON.
pub(super) fn dead_letter(text: &str) -> Result<DeadLetter, StoreError> {
    json("dead letter", text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lua_event_json_decodes_into_task_events() {
        let e = event(
            3,
            r#"{"at_ms":17,"type":"step_started","step_id":2,"tier":"x","worker":"w","delivery":1}"#,
        )
        .unwrap();
        assert_eq!(e.seq, 3);
        assert_eq!(e.at_ms, 17);
        assert!(matches!(e.kind, EventKind::StepStarted { delivery: 1, .. }));
        assert_eq!(published_event("12|{}"), Some((12, "{}")));
        assert_eq!(published_event("x|{}"), None);
    }

    #[test]
    fn a_task_without_status_is_corrupt_not_a_panic() {
        let task = HashMap::from([("task".to_owned(), "t".to_owned())]);
        let err = task_record(&TaskId::from("a"), task, HashMap::new(), vec![]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
    }
}

#[cfg(test)]
#[path = "codec_fuzz.rs"]
mod fuzz;
