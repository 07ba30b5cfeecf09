//! The joiner's answer (a `json_schema` named `join`, planex's decision call after a plan ran):
//! `finish`, unless the task carries `#sim:replan`: then, in round 1 only, `replan` with one new
//! step on a tool that did not fail (the first root step of the plan the simulator would write
//! for the task over the same tools), numbered `next_step_id`. Deterministic, so a test can
//! script "replan once, then finish".

use crate::markers::Markers;
use crate::openai::{ApiError, ChatRequest};
use crate::planner;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The decision for `request` over the joiner schema `schema` (a plan schema with a decision).
pub fn answer(
    request: &ChatRequest,
    schema: &Value,
    markers: &Markers,
) -> Result<String, ApiError> {
    let input: Value = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| serde_json::from_str(&m.text()).ok())
        .unwrap_or(Value::Null);
    let round = input["round"].as_u64().unwrap_or(1);
    if !markers.replan || round > 1 {
        return Ok(
            json!({"decision": "finish", "reason": "simulated: the results answer the task"})
                .to_string(),
        );
    }
    let failed: BTreeSet<&str> = input["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["state"] != "complete")
                .filter_map(|s| s["tool_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let task = input["task"].as_str().unwrap_or_default();
    let plan = planner::generate(task, schema).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let roots: Vec<&Value> = plan["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["depends_on"].as_array().is_none_or(Vec::is_empty))
                .collect()
        })
        .unwrap_or_default();
    let Some(step) = roots
        .iter()
        .find(|s| s["tool_name"].as_str().is_some_and(|t| !failed.contains(t)))
        .or_else(|| roots.first())
    else {
        return Ok(
            json!({"decision": "finish", "reason": "simulated: no tool to try"}).to_string(),
        );
    };
    let mut step = (*step).clone();
    step["step_id"] = input["next_step_id"].clone();
    let tried: Vec<&str> = failed.into_iter().collect();
    Ok(json!({
        "decision": "replan",
        "reason": format!("simulated: {} failed; trying {}", tried.join(", "), step["tool_name"].as_str().unwrap_or("?")),
        "steps": [step],
    })
    .to_string())
}
