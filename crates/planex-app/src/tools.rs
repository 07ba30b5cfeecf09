//! The whole tool catalog of a config: its `[[tools]]` plus the tools its `[[mcp_servers]]`
//! list once connected.

use crate::AppError;
use crate::config::{Config, ConfigError};
use planex_core::Catalog;
use planex_engine::mcp::McpServers;
use std::sync::Arc;

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
    let mut tools = config.tools.clone();
    tools.extend(servers.tools().await.map_err(AppError::Mcp)?);
    let catalog = Catalog::new(tools).map_err(|e| {
        AppError::Config(ConfigError::Invalid {
            field: "mcp_servers".into(),
            message: format!(
                "{e} (an MCP tool's name is taken by a [[tools]] entry, or its schema is not valid)"
            ),
        })
    })?;
    Ok((catalog, Arc::new(servers)))
}
