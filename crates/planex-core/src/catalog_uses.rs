//! The check of `llm` tools' `uses` (function calling) when a catalog is built: each names a tool
//! the model can call.

use crate::{ToolKind, ToolSpec};

/// An `llm` tool whose `uses` cannot work, and why (`CatalogError::BadUses`).
pub(crate) struct UsesError {
    pub(crate) tool: String,
    pub(crate) detail: String,
}

/// Every `uses` of an `llm` tool names an `http` or `mcp` tool of the catalog (not itself, not
/// another `llm` tool), and `max_tool_rounds` is within 1..=[`crate::MAX_TOOL_ROUNDS`].
pub(crate) fn check_uses<'a>(
    tools: impl Iterator<Item = &'a ToolSpec> + Clone,
) -> Result<(), UsesError> {
    let callable: Vec<&str> = tools
        .clone()
        .filter(|t| !matches!(t.kind, ToolKind::Llm(_)))
        .map(|t| t.name.as_str())
        .collect();
    let names: Vec<&str> = tools.clone().map(|t| t.name.as_str()).collect();
    for tool in tools {
        let ToolKind::Llm(llm) = &tool.kind else {
            continue;
        };
        let bad = |detail: String| UsesError {
            tool: tool.name.clone(),
            detail,
        };
        if llm.uses.is_empty() {
            continue;
        }
        if !(1..=crate::MAX_TOOL_ROUNDS).contains(&llm.max_tool_rounds) {
            return Err(bad(format!(
                "max_tool_rounds is {}; it must be 1 to {}",
                llm.max_tool_rounds,
                crate::MAX_TOOL_ROUNDS
            )));
        }
        for name in &llm.uses {
            if !callable.contains(&name.as_str()) {
                let what = if names.contains(&name.as_str()) {
                    "is an llm tool (a model cannot call a model tool)"
                } else {
                    "is not in the catalog"
                };
                return Err(bad(format!(
                    "uses {name:?}, which {what}; it may use http and mcp tools ({}); MCP tools are named SERVER__TOOL",
                    if callable.is_empty() {
                        "none are configured".to_owned()
                    } else {
                        callable.join(", ")
                    }
                )));
            }
        }
    }
    Ok(())
}
