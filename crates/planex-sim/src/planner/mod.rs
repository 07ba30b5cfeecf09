//! The planner role: answers a plan request with `{"steps":[…]}` valid for the sent schema.
//!
//! Key decision: the plan is a pure function of the task text (RNG seeded by its sha256) and
//! the schema, so the same task always gets the same plan; `#sim:` markers are stripped from
//! the text copied into args, so planner faults do not leak into executor requests.

pub mod args;
pub mod schema;
pub mod shape;

use serde_json::{Value, json};

use crate::markers;
use crate::text;

const FACETS: &[&str] = &[
    "overview",
    "pricing",
    "benchmarks",
    "recent news",
    "key players",
    "risks",
    "statistics",
    "use cases",
    "comparisons",
    "history",
    "forecasts",
    "regulation",
];

/// Why the simulator could not generate a synthetic plan from a request's plan schema (it does so
/// when no workload plan is pinned for the task). Not a plan validation error: those are
/// `planex_core::PlanError`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanGenerationError {
    /// The schema names no tool (no `tool_name` enum was found).
    #[error(
        "the plan schema lists no tools (expected steps.items.anyOf[].properties.tool_name.enum)"
    )]
    NoTools,
}

/// Short task text for args: markers stripped, at most 12 words / 100 characters.
fn topic(task: &str) -> String {
    let clean = markers::strip(task);
    let words: Vec<&str> = clean.split_whitespace().take(12).collect();
    let mut topic: String = words.join(" ").chars().take(100).collect();
    topic = topic
        .trim_end_matches(|c: char| c.is_whitespace() || ",.;:?!".contains(c))
        .to_owned();
    if topic.is_empty() {
        "the task".to_owned()
    } else {
        topic
    }
}

fn verb(tool: &str) -> &'static str {
    let lower = tool.to_ascii_lowercase();
    if lower.contains("summar") {
        "Summarize"
    } else if lower.contains("compar") {
        "Compare"
    } else if lower.contains("extract") {
        "Extract the key facts from"
    } else if lower.contains("classif") {
        "Classify"
    } else if lower.contains("format") || lower.contains("report") {
        "Write up"
    } else {
        "Combine"
    }
}

/// Generates the plan for `task` over the plan schema `root` (deterministic).
pub fn generate(task: &str, root: &Value) -> Result<Value, PlanGenerationError> {
    let parsed = schema::parse(root);
    if parsed.tools.is_empty() {
        return Err(PlanGenerationError::NoTools);
    }
    let hints: Vec<shape::ToolHint> = parsed
        .tools
        .iter()
        .map(|t| shape::ToolHint {
            name: t.name.clone(),
            has_text: args::placeholder_property(root, &t.args).is_some(),
        })
        .collect();
    let mut rng = text::rng_from(&["planex-sim plan", task]);
    let n = shape::step_count(&mut rng, parsed.max_steps);
    let skeleton = shape::build(&mut rng, &hints, n);
    let topic = topic(task);
    let steps: Vec<Value> = skeleton
        .iter()
        .filter_map(|s| {
            let tool = parsed.tools.get(s.tool)?;
            let placeholders = (!s.depends_on.is_empty()).then(|| {
                let refs: Vec<String> = s
                    .depends_on
                    .iter()
                    .map(|d| format!("{{step_{d}_result}}"))
                    .collect();
                format!("{} for: {topic}\n{}", verb(&tool.name), refs.join("\n"))
            });
            let facet = FACETS
                .get((s.step_id - 1) % FACETS.len())
                .copied()
                .unwrap_or("overview");
            let text = args::ArgText {
                topic: &topic,
                facet,
                placeholders,
            };
            Some(json!({
                "step_id": s.step_id,
                "tool_name": tool.name,
                "args": args::fill_args(root, &tool.args, &text),
                "depends_on": s.depends_on,
            }))
        })
        .collect();
    Ok(json!({ "steps": steps }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn topic_strips_markers() {
        assert_eq!(
            topic("Compare GPU clouds #sim:fail=500x1?"),
            "Compare GPU clouds"
        );
        assert_eq!(topic("#sim:hang"), "the task");
    }

    #[test]
    fn no_tools_is_an_error() {
        assert_eq!(generate("t", &json!({})), Err(PlanGenerationError::NoTools));
    }
}
