//! Decides the assistant message content of a chat request in its role (see `role.rs`): a ReAct
//! turn, a pinned workload plan or a generated plan, schema-valid JSON, or an executor answer,
//! possibly made malformed.
//!
//! Key decision: a workload plan index is consumed only when content is actually produced
//! (after injected errors), so `plans[k]` is the k-th planner answer a client receives.

use serde_json::{Value, json};

use crate::executor;
use crate::markers::Markers;
use crate::openai::{ApiError, ChatRequest};
use crate::planner;
use crate::react;
use crate::role::Role;
use crate::state::SimState;
use crate::text;

/// Invalid JSON derived from a valid answer: a JSON object cut in half (never parses).
pub fn malformed(valid: &str) -> String {
    let object = if valid.trim_start().starts_with('{') {
        valid.to_owned()
    } else {
        json!({"simulated": true, "summary": valid}).to_string()
    };
    let mut end = (object.len() / 2).max(1);
    while !object.is_char_boundary(end) {
        end += 1;
    }
    object[..end].to_owned()
}

/// The completion-token target of a text answer: the `#sim:tokens` marker or the configured
/// length, capped by the request's `max_tokens`.
fn target(state: &SimState, request: &ChatRequest, markers: &Markers) -> u32 {
    let target = markers.tokens.unwrap_or(state.config().output_tokens);
    request.token_cap().map_or(target, |cap| target.min(cap))
}

/// The plan for a planner request: the workload's pinned plan for the task, else a generated one.
fn plan(state: &SimState, request: &ChatRequest, schema: &Value) -> Result<String, ApiError> {
    let task = request.task_text();
    let workload = &state.config().workload;
    if workload.contains(&task) {
        let k = state.next_plan_index(&task);
        return Ok(workload.plan_for(&task, k).unwrap_or_default().to_owned());
    }
    planner::generate(&task, schema)
        .map(|plan| plan.to_string())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The tool name `#sim:invalid_at` puts in a plan.
pub const UNKNOWN_TOOL: &str = "sim_no_such_tool";

/// `plan` with its K-th step (1-based; the last when there are fewer) naming [`UNKNOWN_TOOL`].
fn invalid_at(plan: &str, k: usize) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(plan) else {
        return plan.to_owned();
    };
    if let Some(steps) = value.get_mut("steps").and_then(Value::as_array_mut) {
        let at = k.min(steps.len()).saturating_sub(1);
        if let Some(step) = steps.get_mut(at) {
            step["tool_name"] = json!(UNKNOWN_TOOL);
        }
    }
    value.to_string()
}

/// The content for `request` answered in `role`; `contents` are the message texts in order.
pub fn build(
    state: &SimState,
    request: &ChatRequest,
    role: &Role<'_>,
    contents: &[&str],
    markers: &Markers,
    make_malformed: bool,
) -> Result<String, ApiError> {
    let valid = match role {
        Role::React(schema) => react::turn(
            state,
            request,
            schema,
            contents,
            target(state, request, markers),
        )?,
        // A re-plan (the conversation holds the rejected answer) is left valid, so the task
        // can recover from the plan that turned invalid.
        Role::Plan(schema) => match markers.invalid_at {
            Some(k) if !request.messages.iter().any(|m| m.role == "assistant") => {
                invalid_at(&plan(state, request, schema)?, k)
            }
            _ => plan(state, request, schema)?,
        },
        Role::Join(schema) => crate::joiner::answer(request, schema, markers)?,
        Role::Structured { schema, name } => {
            let mut seed = vec!["planex-sim json_schema", name.as_str()];
            seed.extend_from_slice(contents);
            schema.generate(text::rng_from(&seed)).to_string()
        }
        Role::Text { json } => executor::answer(
            contents,
            target(state, request, markers),
            *json || markers.json,
        ),
    };
    Ok(if make_malformed {
        malformed(&valid)
    } else {
        valid
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn invalid_at_breaks_the_kth_step_only() {
        let plan = r#"{"steps":[{"step_id":1,"tool_name":"a"},{"step_id":2,"tool_name":"b"},{"step_id":3,"tool_name":"c"}]}"#;
        let broken: Value = serde_json::from_str(&invalid_at(plan, 2)).unwrap();
        let tools: Vec<&str> = broken["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["tool_name"].as_str().unwrap())
            .collect();
        assert_eq!(tools, ["a", UNKNOWN_TOOL, "c"]);
        let last: Value = serde_json::from_str(&invalid_at(plan, 9)).unwrap();
        assert_eq!(last["steps"][2]["tool_name"], UNKNOWN_TOOL);
    }

    #[test]
    fn malformed_never_parses() {
        for valid in ["{\"steps\":[]}", "{}", "plain text", "[simulated] é"] {
            let bad = malformed(valid);
            assert!(
                serde_json::from_str::<serde_json::Value>(&bad).is_err(),
                "{bad}"
            );
        }
    }
}
