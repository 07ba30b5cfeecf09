//! Tool specs and plans as the engine and API tests write them.

use planex_core::ToolSpec;

/// An `llm` tool `name` on `tier` taking one string argument `arg` (at most 64 answer tokens).
pub fn llm_tool(name: &str, arg: &str, tier: &str) -> ToolSpec {
    ToolSpec::one_arg_llm(name, arg, tier, 64)
}

/// A plan as the planner answers it (JSON text): `{"steps": STEPS}`.
pub fn plan_json(steps: serde_json::Value) -> String {
    serde_json::json!({ "steps": steps }).to_string()
}
