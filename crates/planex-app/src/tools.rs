//! The whole tool catalog of a config: its `[[tools]]` plus the tools its `[[mcp_servers]]`
//! list once connected, kept current while the process runs (a server's tool list changes).

use crate::AppError;
use crate::config::{Config, ConfigError};
use planex_core::{Catalog, LiveCatalog, ToolSpec};
use planex_engine::mcp::McpServers;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Connects `config`'s MCP servers and returns the catalog with their tools (names
/// `server__tool`) beside `[[tools]]`, and the connections the executor calls them on. A name
/// both define is refused.
pub async fn connect_tools(config: &Config) -> Result<(Catalog, Arc<McpServers>), AppError> {
    if config.mcp_servers.is_empty() {
        return Ok((config.catalog()?, Arc::new(McpServers::none())));
    }
    let servers = McpServers::connect(config.mcp_servers.clone())
        .await
        .map_err(AppError::Mcp)?;
    let catalog = merged_catalog(&config.tools, &servers).await?;
    Ok((catalog, Arc::new(servers)))
}

/// `tools` plus what `servers` list now, as one catalog.
async fn merged_catalog(tools: &[ToolSpec], servers: &McpServers) -> Result<Catalog, AppError> {
    let mut tools = tools.to_vec();
    tools.extend(servers.tools().await.map_err(AppError::Mcp)?);
    Catalog::new(tools).map_err(|e| {
        AppError::Config(ConfigError::Invalid {
            field: "mcp_servers".into(),
            message: format!(
                "{e}; with the tools the MCP servers list now (check the tool names in [[tools]] uses and the servers' tool lists with planex tools list)"
            ),
        })
    })
}

/// Keeps `live` current with the MCP servers' tool lists until `stop`: whenever a server's list
/// may have changed (`notifications/tools/list_changed`, or a reconnect), lists every server
/// again and, when the catalog that makes with `tools` (the `[[tools]]`) differs, makes it
/// current, so the planner, plan validation and the executor see the new tools at once. A
/// listing that fails, or a list that cannot make a catalog, keeps the current one (logged).
/// Returns the count of catalogs made current so far (to wait on an update).
pub fn keep_tools_current(
    tools: Vec<ToolSpec>,
    servers: Arc<McpServers>,
    live: LiveCatalog,
    stop: CancellationToken,
) -> tokio::sync::watch::Receiver<u64> {
    let mut changes = servers.tool_list_changes();
    // A change announced between the first listing and this subscription would be lost: list
    // once more at once.
    changes.mark_changed();
    let (updated, updates) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = stop.cancelled() => return,
            }
            match merged_catalog(&tools, &servers).await {
                Ok(catalog) if catalog.hash() != live.current().hash() => {
                    let old = live.replace(Arc::new(catalog));
                    let new = live.current();
                    let added: Vec<String> = new
                        .names()
                        .into_iter()
                        .filter(|n| !old.contains(n))
                        .collect();
                    let removed: Vec<String> = old
                        .names()
                        .into_iter()
                        .filter(|n| !new.contains(n))
                        .collect();
                    tracing::info!(added = %added.join(", "), removed = %removed.join(", "),
                        tools = new.len(), "tool catalog updated from the MCP servers' tool lists");
                    updated.send_modify(|n| *n += 1);
                }
                Ok(_) => tracing::debug!("MCP tool lists unchanged"),
                Err(error) => tracing::warn!(error = %planex_core::cause::ErrorChain(&error),
                    "the MCP servers' new tool lists were not applied; the catalog stays as it was"),
            }
        }
    });
    updates
}
