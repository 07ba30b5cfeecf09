//! The ReAct role: answers a ReAct turn (`response_format` json_schema named `react_step`) by
//! following the task's plan one action per call, then answering `final_answer`.
//!
//! The plan is the one the planner role would answer for the same task (the workload's pinned plan,
//! its last entry when several are pinned, else the generated plan over the tools of the turn
//! schema), so a ReAct run and a plan-and-execute run of one task do the same work. The turn number
//! is the count of assistant messages in the history; `{step_N_result}` placeholders in the plan's
//! args are replaced by the observation that followed step N's action, as a real ReAct model copies
//! earlier results into a tool's args.
//!
//! Key decision: the answer is a pure function of the request (history included), like every other
//! role, so a ReAct run is reproducible and its growing history is what a real loop would send.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::executor;
use crate::openai::{ApiError, ChatRequest};
use crate::planner;
use crate::state::SimState;

/// The `json_schema` name that marks a ReAct turn.
pub const SCHEMA_NAME: &str = "react_step";
/// The reserved action that gives the final answer.
pub const FINAL_ACTION: &str = "final_answer";
/// The prefix the ReAct runner puts before each observation (stripped when present).
const OBSERVATION_PREFIX: &str = "Observation:";

/// The turn schema when `request` is a ReAct turn.
pub fn schema(request: &ChatRequest) -> Option<&Value> {
    let spec = request.response_format.as_ref()?.get("json_schema")?;
    (request.format_type() == Some("json_schema")
        && spec.get("name").and_then(Value::as_str) == Some(SCHEMA_NAME))
    .then(|| spec.get("schema").unwrap_or(&Value::Null))
}

/// The next turn: the plan's next action, or the final answer of about `answer_tokens` tokens.
pub fn turn(
    state: &SimState,
    request: &ChatRequest,
    schema: &Value,
    contents: &[&str],
    answer_tokens: u32,
) -> Result<String, ApiError> {
    let task = request.task_text();
    let steps = plan_steps(state, &task, schema)?;
    let done = request
        .messages
        .iter()
        .filter(|m| m.role == "assistant")
        .count();
    let Some(step) = steps.get(done) else {
        let answer = executor::answer(contents, answer_tokens, false);
        return Ok(json!({
            "thought": format!("[simulated] All {} steps are done; answering.", steps.len()),
            "action": {"tool_name": FINAL_ACTION, "args": {"answer": answer}},
        })
        .to_string());
    };
    let observations = observations(request);
    let results: HashMap<u64, &str> = steps
        .iter()
        .zip(observations.iter())
        .filter_map(|(s, o)| Some((s.get("step_id")?.as_u64()?, o.as_str())))
        .collect();
    let tool = step
        .get("tool_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let args = match step.get("args") {
        Some(Value::Object(map)) => fill(map, &results),
        _ => Map::new(),
    };
    Ok(json!({
        "thought": format!("[simulated] Step {} of {}: call {tool}.", done + 1, steps.len()),
        "action": {"tool_name": tool, "args": args},
    })
    .to_string())
}

/// The steps of the plan for `task`, in plan order.
fn plan_steps(state: &SimState, task: &str, schema: &Value) -> Result<Vec<Value>, ApiError> {
    let workload = &state.config().workload;
    let plan: Value = match workload.plan_for(task, usize::MAX) {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "the workload's pinned plan for this task is not JSON ({e}); the ReAct role follows the last pinned plan, so pin a valid one last"
            ))
        })?,
        None => planner::generate(task, &plan_like(schema))
            .map_err(|e| ApiError::bad_request(format!("react_step schema: {e}")))?,
    };
    match plan.get("steps") {
        Some(Value::Array(steps)) => Ok(steps.clone()),
        _ => Err(ApiError::bad_request(
            "the plan for this task has no \"steps\" array",
        )),
    }
}

/// A plan schema with the turn schema's tool alternatives (the final action left out), so the
/// planner role's generator yields the same plan as for a plan request over the same tools.
fn plan_like(turn_schema: &Value) -> Value {
    let tools: Vec<Value> = turn_schema
        .pointer("/properties/action/anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|alt| {
            alt.pointer("/properties/tool_name/enum/0")
                .and_then(Value::as_str)
                != Some(FINAL_ACTION)
        })
        .cloned()
        .collect();
    let mut root = turn_schema.clone();
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("steps".into(), json!({"items": {"anyOf": tools}}));
    }
    root
}

/// Observation texts in order: every user message after the first (the task).
fn observations(request: &ChatRequest) -> Vec<String> {
    request
        .messages
        .iter()
        .filter(|m| m.role == "user")
        .skip(1)
        .map(|m| {
            let text = m.text();
            match text.strip_prefix(OBSERVATION_PREFIX) {
                Some(rest) => rest.trim_start().to_owned(),
                None => text,
            }
        })
        .collect()
}

fn fill(args: &Map<String, Value>, results: &HashMap<u64, &str>) -> Map<String, Value> {
    args.iter()
        .map(|(k, v)| (k.clone(), fill_value(v, results)))
        .collect()
}

fn fill_value(value: &Value, results: &HashMap<u64, &str>) -> Value {
    match value {
        Value::String(text) => Value::String(substitute(text, results)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_value(v, results)).collect()),
        Value::Object(map) => Value::Object(fill(map, results)),
        other => other.clone(),
    }
}

/// Replaces `{step_N_result}` and `{step_N_result.path}` with step N's observation (a field of it
/// when the observation is JSON and has the path); unknown steps are left as written.
fn substitute(text: &str, results: &HashMap<u64, &str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{step_") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match placeholder(tail, results) {
            Some((replacement, len)) => {
                out.push_str(&replacement);
                rest = &tail[len..];
            }
            None => {
                out.push_str("{step_");
                rest = &tail["{step_".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The replacement of the placeholder at the start of `tail` and its length in bytes.
fn placeholder(tail: &str, results: &HashMap<u64, &str>) -> Option<(String, usize)> {
    let end = tail.find('}')?;
    let inner = tail.get("{step_".len()..end)?;
    let (id, path) = match inner.split_once('.') {
        Some((head, path)) => (head, Some(path)),
        None => (inner, None),
    };
    let step: u64 = id.strip_suffix("_result")?.parse().ok()?;
    let observation = *results.get(&step)?;
    let field = path.and_then(|path| {
        let mut value: Value = serde_json::from_str(observation).ok()?;
        for segment in path.split('.') {
            value = match value {
                Value::Object(mut map) => map.remove(segment)?,
                Value::Array(mut items) => {
                    let index: usize = segment.parse().ok()?;
                    (index < items.len()).then(|| items.swap_remove(index))?
                }
                _ => return None,
            };
        }
        Some(match value {
            Value::String(text) => text,
            other => other.to_string(),
        })
    });
    Some((field.unwrap_or_else(|| observation.to_owned()), end + 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn placeholders_take_observations_and_fields() {
        let results: HashMap<u64, &str> =
            [(1, "alpha"), (2, "{\"items\":[{\"title\":\"T\"}],\"n\":3}")].into();
        assert_eq!(
            substitute(
                "a {step_1_result} b {step_2_result.items.0.title}",
                &results
            ),
            "a alpha b T"
        );
        assert_eq!(substitute("{step_2_result.n}", &results), "3");
        assert_eq!(substitute("{step_2_result.missing}", &results), results[&2]);
        assert_eq!(
            substitute("{step_9_result} {step_x} {step_", &results),
            "{step_9_result} {step_x} {step_"
        );
    }
}
