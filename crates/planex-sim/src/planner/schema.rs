//! Reads the plan JSON schema the engine sends in `response_format.json_schema.schema`:
//! which tools exist (the `tool_name` enums), their args schemas, and `maxItems`.
//!
//! A schema is a plan schema by shape ([`is_plan_schema`]), not by its `json_schema` name.
//!
//! Key decision: parse only what plan generation needs and tolerate variations (a single item
//! schema instead of `anyOf`, `oneOf`, `const`, local `$ref`s) rather than reject the request.

use serde_json::Value;

/// One tool offered by the plan schema.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    /// The tool name (a value of the `tool_name` enum).
    pub name: String,
    /// The tool's input JSON schema (the `args` property schema).
    pub args: Value,
}

/// What the planner needs from the plan schema.
#[derive(Clone, Debug)]
pub struct PlanSchema {
    /// Tools, in schema order.
    pub tools: Vec<ToolSpec>,
    /// `steps.maxItems`, if given.
    pub max_steps: Option<usize>,
}

/// Follows a local `$ref` (`#/…` JSON pointer into `root`); other values are returned as is.
pub fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..8 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(pointer) if pointer.starts_with('#') => match root.pointer(&pointer[1..]) {
                Some(target) => current = target,
                None => return current,
            },
            _ => return current,
        }
    }
    current
}

/// Whether `root` has the plan shape: an object whose `steps` array has items with a
/// `tool_name` enum (or const), as planex's planner schema does. Only such schemas get a plan.
pub fn is_plan_schema(root: &Value) -> bool {
    !parse(root).tools.is_empty()
}

/// Extracts tools and the step limit from the plan schema `root`.
pub fn parse(root: &Value) -> PlanSchema {
    let steps = root
        .pointer("/properties/steps")
        .map(|s| resolve(root, s))
        .unwrap_or(&Value::Null);
    let max_steps = steps
        .get("maxItems")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
    let items = steps
        .get("items")
        .map(|s| resolve(root, s))
        .unwrap_or(&Value::Null);
    let alternatives: Vec<&Value> = match items.get("anyOf").or_else(|| items.get("oneOf")) {
        Some(Value::Array(list)) => list.iter().map(|alt| resolve(root, alt)).collect(),
        _ => vec![items],
    };
    let mut tools: Vec<ToolSpec> = Vec::new();
    for alt in alternatives {
        let Some(props) = alt.get("properties") else {
            continue;
        };
        let args = props
            .get("args")
            .map(|a| resolve(root, a).clone())
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        let name_schema = props
            .get("tool_name")
            .map(|n| resolve(root, n))
            .unwrap_or(&Value::Null);
        let names: Vec<&str> = match (name_schema.get("enum"), name_schema.get("const")) {
            (Some(Value::Array(list)), _) => list.iter().filter_map(Value::as_str).collect(),
            (_, Some(Value::String(name))) => vec![name.as_str()],
            _ => Vec::new(),
        };
        for name in names {
            if !tools.iter().any(|t| t.name == name) {
                tools.push(ToolSpec {
                    name: name.to_owned(),
                    args: args.clone(),
                });
            }
        }
    }
    PlanSchema { tools, max_steps }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_any_of_tools() {
        let schema = json!({"type":"object","properties":{"steps":{"type":"array","maxItems":6,
            "items":{"anyOf":[
              {"type":"object","properties":{"tool_name":{"type":"string","enum":["web_search"]},
                "args":{"type":"object","properties":{"query":{"type":"string"}}}}},
              {"type":"object","properties":{"tool_name":{"type":"string","enum":["summarize"]},
                "args":{"$ref":"#/$defs/text"}}}]}}},
            "$defs":{"text":{"type":"object","properties":{"text":{"type":"string"}}}}});
        let parsed = parse(&schema);
        assert_eq!(parsed.max_steps, Some(6));
        let names: Vec<_> = parsed.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["web_search", "summarize"]);
        assert!(parsed.tools[1].args.pointer("/properties/text").is_some());
        assert!(is_plan_schema(&schema));
    }

    #[test]
    fn a_steps_array_without_tool_enums_is_no_plan_schema() {
        let schema = json!({"type":"object","properties":{"steps":{"type":"array",
            "items":{"type":"object","properties":{"tool_name":{"type":"string"}}}}}});
        assert!(!is_plan_schema(&schema));
        assert!(!is_plan_schema(&json!({"type":"object"})));
    }
}
