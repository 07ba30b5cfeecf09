//! Listing the servers' tools as catalog entries (`McpServers::tools`).
//!
//! Key decision: a server that cannot be listed now (it is down, or in its restart backoff) keeps
//! the tools it listed last, with a warning, so one failing server does not stop the others'
//! tool-list changes from reaching the catalog; its tools are refused at submission while it is
//! down (`McpServers::ensure_up`). Only a server never listed makes the listing fail.

use super::{McpError, McpServers, Server, catalog_name};
use planex_core::{McpTool, ToolKind, ToolSpec};
use std::collections::BTreeMap;

impl McpServers {
    /// Every server's tools (all pages of `tools/list`) as catalog entries, by catalog name; a
    /// server that cannot be listed now contributes the tools it listed last.
    pub async fn tools(&self) -> Result<Vec<ToolSpec>, McpError> {
        let mut specs: BTreeMap<String, (String, ToolSpec)> = BTreeMap::new();
        let mut names: Vec<&String> = self.servers.keys().collect();
        names.sort();
        for name in names {
            let server = &self.servers[name];
            let listed = match server.list(name).await {
                Ok(listed) => listed,
                Err(error) => match server.last_listed() {
                    Some(last) => {
                        tracing::warn!(server = %name, error = %planex_core::cause::ErrorChain(&error),
                            "MCP server could not be listed; the catalog keeps the tools it listed last");
                        last
                    }
                    None => return Err(error),
                },
            };
            for spec in listed {
                let origin = match &spec.kind {
                    ToolKind::Mcp(tool) => format!("{}/{}", tool.server, tool.tool),
                    _ => spec.name.clone(),
                };
                if let Some((first, _)) = specs.get(&spec.name) {
                    return Err(McpError::Collision {
                        name: spec.name.clone(),
                        first: first.clone(),
                        second: origin,
                    });
                }
                specs.insert(spec.name.clone(), (origin, spec));
            }
        }
        Ok(specs.into_values().map(|(_, spec)| spec).collect())
    }
}

impl Server {
    /// Lists the server's tools now (reconnecting it if it died) and remembers them.
    async fn list(&self, name: &str) -> Result<Vec<ToolSpec>, McpError> {
        let client = self.current().await.map_err(|detail| McpError::List {
            server: name.to_owned(),
            detail,
        })?;
        let tools = client
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| McpError::List {
                server: name.to_owned(),
                detail: e.to_string(),
            })?;
        let specs: Vec<ToolSpec> = tools
            .into_iter()
            .map(|tool| ToolSpec {
                name: catalog_name(name, &tool.name),
                description: tool
                    .description
                    .as_deref()
                    .or(tool.title.as_deref())
                    .unwrap_or("an MCP tool")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
                output_schema: tool
                    .output_schema
                    .as_ref()
                    .map(|s| serde_json::Value::Object((**s).clone())),
                tier: self.config.tier.clone(),
                kind: ToolKind::Mcp(McpTool {
                    server: name.to_owned(),
                    tool: tool.name.to_string(),
                }),
            })
            .collect();
        *self.listed.lock().unwrap_or_else(|p| p.into_inner()) = Some(specs.clone());
        Ok(specs)
    }

    /// The tools it listed last, if it was ever listed.
    fn last_listed(&self) -> Option<Vec<ToolSpec>> {
        // A poisoned lock only means a panic elsewhere; the list itself is a plain value.
        self.listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
