//! Decides the assistant message content of a chat request: pinned workload plan, generated
//! plan, or executor answer, possibly made malformed.
//!
//! Key decision: a workload plan index is consumed only when content is actually produced
//! (after injected errors), so `plans[k]` is the k-th planner answer a client receives.

use serde_json::json;

use crate::executor;
use crate::markers::Markers;
use crate::openai::{ApiError, ChatRequest};
use crate::planner;
use crate::react;
use crate::state::SimState;

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

/// The content for `request`; `contents` are the message texts in order.
pub fn build(
    state: &SimState,
    request: &ChatRequest,
    contents: &[&str],
    markers: &Markers,
    make_malformed: bool,
) -> Result<String, ApiError> {
    if let Some(schema) = react::schema(request) {
        let mut target = markers.tokens.unwrap_or(state.config().output_tokens);
        if let Some(cap) = request.token_cap() {
            target = target.min(cap);
        }
        let valid = react::turn(state, request, schema, contents, target)?;
        return Ok(if make_malformed {
            malformed(&valid)
        } else {
            valid
        });
    }
    let valid = match request.plan_schema() {
        Some(schema) => {
            let task = request.task_text();
            let workload = &state.config().workload;
            if workload.contains(&task) {
                let k = state.next_plan_index(&task);
                workload.plan_for(&task, k).unwrap_or_default().to_owned()
            } else {
                planner::generate(&task, schema)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?
                    .to_string()
            }
        }
        None => {
            let config = state.config();
            let mut target = markers.tokens.unwrap_or(config.output_tokens);
            if let Some(cap) = request.token_cap() {
                target = target.min(cap);
            }
            executor::answer(contents, target, request.wants_json() || markers.json)
        }
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
