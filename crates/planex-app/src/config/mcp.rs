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

impl RawMcpServer {
    /// The server's configured name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
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

/// Checks every entry: a unique non-empty name, exactly one of `command` and `url`, a tier that
/// is `tools` or one of `model_tiers`, a positive timeout.
pub(crate) fn servers(
    raw: &[RawMcpServer],
    model_tiers: &[String],
) -> Result<Vec<McpServerConfig>, ConfigError> {
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
            if server.tier != DEFAULT_MCP_TIER && !model_tiers.contains(&server.tier) {
                return Err(invalid(
                    field("tier"),
                    format!(
                        "{:?} is neither {DEFAULT_MCP_TIER:?} nor a tier of [tiers] ({}); its steps would wait for workers that never come",
                        server.tier,
                        model_tiers.join(", ")
                    ),
                ));
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::config::{Config, DEFAULT_CONFIG};
    use planex_engine::mcp::McpTransport;

    fn with(servers: &str) -> Result<Config, String> {
        Config::from_toml(&format!("{DEFAULT_CONFIG}\n{servers}")).map_err(|e| e.to_string())
    }

    #[test]
    fn servers_are_read_with_their_defaults() {
        let config = with(
            "[[mcp_servers]]\nname = \"files\"\ncommand = \"npx\"\nargs = [\"-y\", \"fs\"]\n\
             [[mcp_servers]]\nname = \"search\"\nurl = \"http://127.0.0.1:9/mcp\"\ntier = \"executor\"\ntimeout_secs = 2.5\n",
        )
        .unwrap();
        let [files, search] = &config.mcp_servers[..] else {
            panic!("{:?}", config.mcp_servers)
        };
        assert!(
            matches!(&files.transport, McpTransport::Stdio { command, .. } if command == "npx")
        );
        assert_eq!(files.tier, "tools");
        assert_eq!(files.timeout.as_secs(), 30);
        assert_eq!(files.max_result_bytes, 1 << 20);
        assert!(
            matches!(&search.transport, McpTransport::Http { url, .. } if url.ends_with("/mcp"))
        );
        assert_eq!(search.tier, "executor");
        assert_eq!(search.timeout.as_millis(), 2500);
    }

    #[test]
    fn bad_entries_name_the_field() {
        for (servers, field) in [
            ("[[mcp_servers]]\nname = \"x\"\n", "mcp_servers[0].command"),
            (
                "[[mcp_servers]]\nname = \"x\"\ncommand = \"a\"\nurl = \"http://b\"\n",
                "mcp_servers[0].command",
            ),
            (
                "[[mcp_servers]]\nname = \"\"\ncommand = \"a\"\n",
                "mcp_servers[0].name",
            ),
            (
                "[[mcp_servers]]\nname = \"x\"\ncommand = \"a\"\n[[mcp_servers]]\nname = \"x\"\ncommand = \"b\"\n",
                "mcp_servers[1].name",
            ),
            (
                "[[mcp_servers]]\nname = \"x\"\ncommand = \"a\"\ntimeout_secs = 0\n",
                "mcp_servers[0].timeout_secs",
            ),
            (
                "[[mcp_servers]]\nname = \"x\"\ncommand = \"a\"\ntier = \"tool\"\n",
                "mcp_servers[0].tier",
            ),
        ] {
            let error = with(servers).unwrap_err();
            assert!(error.contains(field), "{servers}: {error}");
        }
        assert!(
            with("[[mcp_servers]]\nname = \"x\"\ncomand = \"a\"\n").is_err(),
            "unknown fields"
        );
    }
}
