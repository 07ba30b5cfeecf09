//! Tools whose MCP server is down are not planned with: the planner is not offered them, and a
//! client plan that needs one is refused at submission (HTTP 503 with `Retry-After`), instead of
//! tasks whose steps would fail or wait on a server that is not there.

use crate::{Engine, EngineError};
use planex_core::{Catalog, Plan, ToolKind};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn mcp_server(catalog: &Catalog, tool: &str) -> Option<String> {
    match catalog.get(tool).map(|t| &t.kind) {
        Some(ToolKind::Mcp(mcp)) => Some(mcp.server.clone()),
        _ => None,
    }
}

impl Engine {
    /// Each of `servers` that cannot take calls now, with why (a reconnect is tried within its
    /// backoff).
    async fn down_servers(&self, servers: BTreeSet<String>) -> BTreeMap<String, String> {
        let mut down = BTreeMap::new();
        for server in servers {
            if let Err(reason) = self.executor.mcp.ensure_up(&server).await {
                down.insert(server, reason);
            }
        }
        down
    }

    /// `catalog` without the tools of MCP servers that are down; the whole catalog down is
    /// [`EngineError::ToolUnavailable`] for its first tool.
    pub(crate) async fn available_catalog(
        &self,
        catalog: Arc<Catalog>,
    ) -> Result<Arc<Catalog>, EngineError> {
        let servers: BTreeSet<String> = catalog
            .specs()
            .filter_map(|t| mcp_server(&catalog, &t.name))
            .collect();
        if servers.is_empty() {
            return Ok(catalog);
        }
        let down = self.down_servers(servers).await;
        if down.is_empty() {
            return Ok(catalog);
        }
        let (up, out): (Vec<String>, Vec<String>) = catalog
            .specs()
            .map(|t| t.name.clone())
            .partition(|name| mcp_server(&catalog, name).is_none_or(|s| !down.contains_key(&s)));
        tracing::warn!(tools = %out.join(", "), servers = ?down.keys().collect::<Vec<_>>(), "tools of MCP servers that are down are not offered to the planner");
        match catalog.subset(&up) {
            Ok(subset) if !up.is_empty() => Ok(Arc::new(subset)),
            _ => {
                let tool = out.first().cloned().unwrap_or_default();
                let server = mcp_server(&catalog, &tool).unwrap_or_default();
                let reason = down.get(&server).cloned().unwrap_or_default();
                Err(EngineError::ToolUnavailable {
                    tool,
                    server,
                    reason,
                })
            }
        }
    }

    /// Refuses a client plan with a step whose MCP server is down.
    pub(crate) async fn check_plan_servers(
        &self,
        plan: &Plan,
        catalog: &Catalog,
    ) -> Result<(), EngineError> {
        let needed: BTreeMap<String, String> = plan
            .steps
            .iter()
            .filter_map(|s| {
                mcp_server(catalog, &s.tool_name).map(|server| (server, s.tool_name.clone()))
            })
            .collect();
        let down = self.down_servers(needed.keys().cloned().collect()).await;
        match down.into_iter().next() {
            None => Ok(()),
            Some((server, reason)) => Err(EngineError::ToolUnavailable {
                tool: needed.get(&server).cloned().unwrap_or_default(),
                server,
                reason,
            }),
        }
    }
}
