//! `[[mcp_servers]]`: the Model Context Protocol servers whose tools join the catalog, checked
//! into `planex_engine::mcp::McpServerConfig`s.

use super::error::{ConfigError, invalid};
use planex_engine::mcp::{McpServerConfig, McpTransport};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The tier MCP tools run on unless a server names another: its workers make no model calls.
pub const DEFAULT_MCP_TIER: &str = "tools";

/// One `[[mcp_servers]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpServer {
    /// The server's name: its tools are `NAME__TOOL` in the catalog.
    name: String,
    /// A program to start that speaks MCP on stdin/stdout (give this or `url`).
    #[serde(default)]
    command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    args: Vec<String>,
    /// Extra environment variables for it.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// A streamable HTTP endpoint (give this or `command`).
    #[serde(default)]
    url: Option<String>,
    /// Request headers for `url` (e.g. `Authorization`).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The tier whose workers run its tools.
    #[serde(default = "default_tier")]
    tier: String,
    /// Longest one tool call may take, in seconds.
    #[serde(default = "default_timeout_secs")]
    timeout_secs: f64,
    /// Largest tool result, in bytes of JSON.
    #[serde(default = "default_max_result_bytes")]
    max_result_bytes: usize,
}

fn default_tier() -> String {
    DEFAULT_MCP_TIER.to_owned()
}

fn default_timeout_secs() -> f64 {
    30.0
}

fn default_max_result_bytes() -> usize {
    1 << 20
}

/// Checks every entry: a unique non-empty name, exactly one of `command` and `url`, a positive
/// timeout.
pub(crate) fn servers(raw: &[RawMcpServer]) -> Result<Vec<McpServerConfig>, ConfigError> {
    let mut seen = BTreeSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, server)| {
            let field = |name: &str| format!("mcp_servers[{i}].{name}");
            if server.name.is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            if !seen.insert(server.name.clone()) {
                return Err(invalid(
                    field("name"),
                    format!("{:?} names two servers; give each its own name", server.name),
                ));
            }
            let transport = match (&server.command, &server.url) {
                (Some(command), None) => McpTransport::Stdio {
                    command: command.clone(),
                    args: server.args.clone(),
                    env: server.env.clone(),
                },
                (None, Some(url)) => McpTransport::Http {
                    url: url.clone(),
                    headers: server.headers.clone(),
                },
                _ => {
                    return Err(invalid(
                        field("command"),
                        format!(
                            "server {:?} needs exactly one of `command` (stdio) and `url` (streamable HTTP)",
                            server.name
                        ),
                    ));
                }
            };
            let timeout = Duration::try_from_secs_f64(server.timeout_secs)
                .ok()
                .filter(|t| !t.is_zero())
                .ok_or_else(|| {
                    invalid(
                        field("timeout_secs"),
                        format!("must be a number of seconds > 0, got {}", server.timeout_secs),
                    )
                })?;
            Ok(McpServerConfig {
                name: server.name.clone(),
                transport,
                tier: server.tier.clone(),
                timeout,
                max_result_bytes: server.max_result_bytes,
            })
        })
        .collect()
}
