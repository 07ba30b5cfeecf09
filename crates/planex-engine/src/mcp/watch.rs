//! Tool-list changes of MCP servers: the client handler every connection runs with counts each
//! `notifications/tools/list_changed` a server sends (and each reconnect, after which a server
//! may list other tools), and whoever holds the catalog re-lists on a change
//! ([`super::McpServers::tool_list_changes`]).

use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use std::sync::Arc;
use tokio::sync::watch;

/// The client handler of every MCP connection of one [`super::McpServers`]: bumps a shared
/// counter when a server's tool list may have changed.
#[derive(Clone, Debug)]
pub(crate) struct ListWatch {
    changes: Arc<watch::Sender<u64>>,
    /// The server this connection is to (for the log).
    server: String,
}

impl ListWatch {
    /// A new counter at 0, to share over every server's connections.
    pub(crate) fn counter() -> Arc<watch::Sender<u64>> {
        Arc::new(watch::Sender::new(0))
    }

    /// The handler of connections to `server`, bumping `changes`.
    pub(crate) fn new(changes: Arc<watch::Sender<u64>>, server: &str) -> Self {
        ListWatch {
            changes,
            server: server.to_owned(),
        }
    }

    /// Records that `server`'s tools may have changed.
    pub(crate) fn bump(&self, why: &str) {
        tracing::info!(server = %self.server, why, "MCP server's tool list may have changed; listing it again");
        self.changes.send_modify(|n| *n += 1);
    }
}

impl ClientHandler for ListWatch {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.bump("notifications/tools/list_changed");
    }
}
