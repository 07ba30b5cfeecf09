//! Tools whose MCP server is down are not planned with: the planner is not offered them, and a
//! client plan that needs one is refused at submission (HTTP 503 with `Retry-After`), instead of
//! tasks whose steps would fail or wait on a server that is not there.

use crate::{Engine, EngineError};
use planex_core::{Catalog, Plan, ToolKind, ToolSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The MCP server `tool` runs on, when it is an MCP tool.
fn server_of(tool: &ToolSpec) -> Option<&str> {
    match &tool.kind {
        ToolKind::Mcp(mcp) => Some(mcp.server.as_str()),
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
            .filter_map(server_of)
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Ok(catalog);
        }
        let down = self.down_servers(servers).await;
        if down.is_empty() {
            return Ok(catalog);
        }
        let (up, out): (Vec<&ToolSpec>, Vec<&ToolSpec>) = catalog
            .specs()
            .partition(|t| server_of(t).is_none_or(|s| !down.contains_key(s)));
        let names = |tools: &[&ToolSpec]| tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        tracing::warn!(tools = %names(&out).join(", "), servers = ?down.keys().collect::<Vec<_>>(), "tools of MCP servers that are down are not offered to the planner");
        if up.is_empty()
            && let Some(first) = out.first()
        {
            let server = server_of(first).unwrap_or_default().to_owned();
            return Err(EngineError::ToolUnavailable {
                tool: first.name.clone(),
                reason: down.get(&server).cloned().unwrap_or_default(),
                server,
            });
        }
        Ok(Arc::new(catalog.subset(&names(&up))?))
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
                catalog
                    .get(&s.tool_name)
                    .and_then(server_of)
                    .map(|server| (server.to_owned(), s.tool_name.clone()))
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
