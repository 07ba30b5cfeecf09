//! Shared fixtures for this crate's unit tests: a small catalog of realistic tools.

use crate::{Catalog, LlmTool, ToolKind, ToolSpec};
use serde_json::{Value, json};

/// An `llm` tool with the given name and input schema.
pub(crate) fn tool(name: &str, input_schema: Value) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: format!("The {name} tool."),
        input_schema,
        output_schema: None,
        tier: "small".to_owned(),
        kind: ToolKind::Llm(LlmTool::new("Do it: {text}", 256)),
    }
}

/// `web_search(query, limit?)`, `summarize(text, style?)`, `extract(text, fields)`.
pub(crate) fn specs() -> Vec<ToolSpec> {
    vec![
        tool(
            "web_search",
            json!({"type": "object", "additionalProperties": false, "required": ["query"],
                   "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}}}),
        ),
        tool(
            "summarize",
            json!({"type": "object", "required": ["text"],
                   "properties": {"text": {"type": "string"}, "style": {"enum": ["short", "long"]}}}),
        ),
        tool(
            "extract",
            json!({"type": "object", "required": ["text", "fields"],
                   "properties": {"text": {"type": "string"},
                                  "fields": {"type": "array", "items": {"type": "string"}}}}),
        ),
    ]
}

/// The catalog of [`specs`].
pub(crate) fn catalog() -> Catalog {
    match Catalog::new(specs()) {
        Ok(c) => c,
        Err(e) => panic!("fixture catalog must build: {e}"),
    }
}
