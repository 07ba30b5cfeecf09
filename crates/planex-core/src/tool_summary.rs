//! What a user sees of a tool (`GET /v1/tools`, `planex tools list`): its name, kind, tier,
//! description and arguments, without its internals (prompt templates, base URLs, headers), which
//! stay in the operator's config.

use crate::tool::{ToolKind, ToolSpec};
use serde::Serialize;

/// One argument of a tool, from its input schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolArg {
    /// The argument's name.
    pub name: String,
    /// Its JSON type (`string`, `integer`, …; `any` when the schema names none).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a step must give it.
    pub required: bool,
}

/// A tool as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSummary {
    /// The name plans use (`tool_name`).
    pub name: String,
    /// `llm`, `http` or `mcp`.
    pub kind: &'static str,
    /// The MCP server it comes from (`mcp` tools only).
    pub server: Option<String>,
    /// The tier whose workers run it.
    pub tier: String,
    /// What it does (the planner sees the same line).
    pub description: String,
    /// Its arguments, in name order.
    pub args: Vec<ToolArg>,
    /// The full JSON Schema of its arguments.
    pub input_schema: serde_json::Value,
    /// The JSON Schema its output must match, when it has one.
    pub output_schema: Option<serde_json::Value>,
}

fn type_name(schema: &serde_json::Value) -> String {
    match schema.get("type") {
        Some(serde_json::Value::String(kind)) => kind.clone(),
        Some(serde_json::Value::Array(kinds)) => kinds
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".to_owned(),
    }
}

impl ToolSpec {
    /// What a user sees of this tool.
    pub fn summary(&self) -> ToolSummary {
        let required: Vec<&str> = self
            .input_schema
            .get("required")
            .and_then(serde_json::Value::as_array)
            .map(|names| names.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let args = self
            .input_schema
            .get("properties")
            .and_then(serde_json::Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .map(|(name, schema)| ToolArg {
                        name: name.clone(),
                        kind: type_name(schema),
                        required: required.contains(&name.as_str()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ToolSummary {
            name: self.name.clone(),
            kind: match self.kind {
                ToolKind::Llm(_) => "llm",
                ToolKind::Http(_) => "http",
                ToolKind::Mcp(_) => "mcp",
            },
            server: match &self.kind {
                ToolKind::Mcp(mcp) => Some(mcp.server.clone()),
                _ => None,
            },
            tier: self.tier.clone(),
            description: self.description.clone(),
            args,
            input_schema: self.input_schema.clone(),
            output_schema: self.output_schema.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_lists_arguments_without_internals() {
        let mut tool = ToolSpec::one_arg_llm("summarize", "text", "small", 64);
        tool.input_schema["properties"]["limit"] = serde_json::json!({"type": ["integer", "null"]});
        let summary = tool.summary();
        assert_eq!(summary.kind, "llm");
        assert_eq!(summary.tier, "small");
        assert_eq!(
            summary.args,
            [
                ToolArg {
                    name: "limit".into(),
                    kind: "integer|null".into(),
                    required: false
                },
                ToolArg {
                    name: "text".into(),
                    kind: "string".into(),
                    required: true
                },
            ]
        );
        let shown = serde_json::to_string(&summary).unwrap_or_default();
        assert!(!shown.contains("prompt"), "{shown}");
    }
}
