//! MCP tools: connections to the configured Model Context Protocol servers (`[[mcp_servers]]`),
//! their `tools/list` as catalog entries, and `tools/call` for plan steps, through the official
//! SDK (`rmcp`).
//!
//! Key decisions: every process that plans or runs MCP steps holds its own connection per server
//! (a stdio server is a child process of each); a connection that died is replaced on the next
//! call (the stdio server is started again, within `timeout_secs`). A call is retried only when it
//! could not be sent (the server could not be started or reached); once sent, a lost connection, a
//! timeout or the tool's answer is final, since the tool may have acted. A tool's error (`isError: true`) or a JSON-RPC error fails the step with the tool's
//! message. Catalog names are `server__tool` made safe (`names.rs`); two tools that map to one
//! name are refused at start.

mod call;
mod listing;
mod names;
mod watch;

pub use names::catalog_name;

use planex_core::ToolSpec;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How planex reaches one MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables.
        env: BTreeMap<String, String>,
    },
    /// A streamable HTTP endpoint.
    Http {
        /// The endpoint URL (e.g. `http://127.0.0.1:8931/mcp`).
        url: String,
        /// Extra request headers (e.g. `Authorization`).
        headers: BTreeMap<String, String>,
    },
}

/// One `[[mcp_servers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerConfig {
    /// The server's name (the first part of its tools' catalog names).
    pub name: String,
    /// How to reach it.
    pub transport: McpTransport,
    /// The tier whose workers run its tools.
    pub tier: String,
    /// Longest one `tools/call` may take (then it is cancelled and the step fails).
    pub timeout: Duration,
    /// Largest result a call may return, serialized (bigger fails the step).
    pub max_result_bytes: usize,
}

/// An MCP failure at start-up; each names the server and what to do.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The server could not be started or reached, or its handshake failed.
    #[error(
        "MCP server {server:?} could not be connected: {detail}; check its command or url in [[mcp_servers]]"
    )]
    Connect {
        /// The server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// `tools/list` failed.
    #[error("MCP server {server:?} did not list its tools: {detail}")]
    List {
        /// The server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// Two tools map to the same catalog name.
    #[error(
        "MCP tools {first:?} and {second:?} both map to the catalog name {name:?}; rename a server in [[mcp_servers]]"
    )]
    Collision {
        /// The catalog name.
        name: String,
        /// One tool (`server/tool`).
        first: String,
        /// The other.
        second: String,
    },
}

type Client = RunningService<RoleClient, watch::ListWatch>;

/// One configured server and its current connection.
struct Server {
    config: McpServerConfig,
    /// The handler its connections run with (tool-list changes).
    watch: watch::ListWatch,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// After a failed (re)connect: when the next try may be made, the wait after that one, and
    /// why it failed. Calls meanwhile fail at once instead of restarting a crashing server.
    down: std::sync::Mutex<Option<Down>>,
    /// Its tools as last listed (`listing.rs`): what the catalog keeps of it while it is down.
    listed: std::sync::Mutex<Option<Vec<ToolSpec>>>,
    /// Set while a (re)connect is in progress. The connection's lock is also held for a moment
    /// by every call and listing, so a held lock alone does not mean the server is restarting.
    restarting: std::sync::atomic::AtomicBool,
}

/// Clears [`Server::restarting`] when a (re)connect ends, however it ends.
struct Restarting<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Restarting<'a> {
    fn start(flag: &'a std::sync::atomic::AtomicBool) -> Self {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        Restarting(flag)
    }
}

impl Drop for Restarting<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A server that could not be (re)connected.
#[derive(Clone)]
struct Down {
    retry_at: std::time::Instant,
    backoff: Duration,
    reason: String,
}

/// First wait before reconnecting a server that could not be connected; it doubles up to
/// [`MAX_RESTART_BACKOFF`].
const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between reconnects.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

/// The configured MCP servers of this process, connected.
pub struct McpServers {
    servers: HashMap<String, Server>,
    /// Bumped when any server's tool list may have changed.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServers")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Connects (starting a stdio server) within the server's timeout: a server that never finishes
/// its handshake must not hold its callers forever.
async fn connect(config: &McpServerConfig, watch: &watch::ListWatch) -> Result<Client, String> {
    match tokio::time::timeout(config.timeout, connect_unbounded(config, watch)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no MCP handshake within {} s ([[mcp_servers]] timeout_secs)",
            config.timeout.as_secs_f64()
        )),
    }
}

async fn connect_unbounded(
    config: &McpServerConfig,
    watch: &watch::ListWatch,
) -> Result<Client, String> {
    match &config.transport {
        McpTransport::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env).kill_on_drop(true);
            let (transport, _) = TokioChildProcess::builder(cmd)
                // Its complaints (a missing package, a bad argument) reach the operator's log.
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .map_err(|e| format!("starting {command:?} failed: {e}"))?;
            watch
                .clone()
                .serve(transport)
                .await
                .map_err(|e| e.to_string())
        }
        McpTransport::Http { url, headers } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| format!("header name {name:?}: {e}"))?;
                let value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|e| format!("header {name}: {e}"))?;
                custom.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            let transport = StreamableHttpClientTransport::from_config(config);
            watch
                .clone()
                .serve(transport)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

impl McpServers {
    /// Connects every server (in parallel); fails on the first that cannot be connected.
    pub async fn connect(configs: Vec<McpServerConfig>) -> Result<McpServers, McpError> {
        let changes = watch::ListWatch::counter();
        let connected = futures::future::join_all(configs.into_iter().map(|config| {
            let watch = watch::ListWatch::new(changes.clone(), &config.name);
            async move {
                let client =
                    connect(&config, &watch)
                        .await
                        .map_err(|detail| McpError::Connect {
                            server: config.name.clone(),
                            detail,
                        })?;
                Ok::<_, McpError>(Server {
                    config,
                    watch,
                    client: tokio::sync::Mutex::new(Some(Arc::new(client))),
                    down: std::sync::Mutex::new(None),
                    listed: std::sync::Mutex::new(None),
                    restarting: std::sync::atomic::AtomicBool::new(false),
                })
            }
        }))
        .await;
        let mut servers = HashMap::new();
        for server in connected {
            let server = server?;
            servers.insert(server.config.name.clone(), server);
        }
        Ok(McpServers { servers, changes })
    }

    /// No servers (a process without `[[mcp_servers]]`).
    pub fn none() -> McpServers {
        McpServers {
            servers: HashMap::new(),
            changes: watch::ListWatch::counter(),
        }
    }

    /// A counter that moves whenever a server's tool list may have changed (it sent
    /// `notifications/tools/list_changed`, or it was connected again): list the tools again
    /// ([`McpServers::tools`]) when it does.
    pub fn tool_list_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether a server of this name is configured.
    pub fn has(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    /// Makes sure `server` can take calls now: its connection is up, or a reconnect (within its
    /// restart backoff and its timeout) brings it up. `Err` says why not; a reconnect already in
    /// progress counts as down (nothing waits for it).
    pub async fn ensure_up(&self, server: &str) -> Result<(), String> {
        let Some(entry) = self.servers.get(server) else {
            return Err(format!("no MCP server {server:?} is configured"));
        };
        if self.is_up(server) {
            return Ok(());
        }
        if entry.restarting.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("it is being restarted".to_owned());
        }
        entry.current().await.map(|_| ())
    }

    /// Whether `server`'s connection is up now (false while it is being restarted, without
    /// waiting for the restart; a connection another caller is looking at counts as up).
    pub fn is_up(&self, server: &str) -> bool {
        self.servers.get(server).is_some_and(|server| {
            if server.restarting.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            match server.client.try_lock() {
                Ok(slot) => slot.as_ref().is_some_and(|c| alive(c)),
                // Held for a moment by a call or a listing checking the connection (a restart
                // sets `restarting` first): as up as it was.
                Err(_) => true,
            }
        })
    }
}

/// Whether a connection can still carry calls: not closed, and its transport not ended (a stdio
/// server that exited ends the transport without closing the service).
fn alive(client: &Client) -> bool {
    !client.is_closed() && !client.peer().is_transport_closed()
}

impl Server {
    /// The live connection, reconnecting (restarting a stdio server) when it died.
    async fn current(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref()
            && alive(client)
        {
            return Ok(client.clone());
        }
        *slot = None;
        let now = std::time::Instant::now();
        let previous = self.down_state();
        if let Some(down) = &previous
            && now < down.retry_at
        {
            return Err(format!(
                "it is down ({}); the next restart is in {} s",
                down.reason,
                down.retry_at
                    .saturating_duration_since(now)
                    .as_secs()
                    .max(1)
            ));
        }
        let _restarting = Restarting::start(&self.restarting);
        match connect(&self.config, &self.watch).await {
            Ok(client) => {
                let client = Arc::new(client);
                tracing::info!(server = %self.config.name, "MCP server connected");
                *slot = Some(client.clone());
                *self.down.lock().unwrap_or_else(|p| p.into_inner()) = None;
                // A restarted server may list other tools than before.
                self.watch.bump("reconnected");
                Ok(client)
            }
            Err(reason) => {
                let backoff = previous.map_or(FIRST_RESTART_BACKOFF, |d| {
                    (d.backoff * 2).min(MAX_RESTART_BACKOFF)
                });
                tracing::warn!(server = %self.config.name, %reason, backoff_secs = backoff.as_secs(), "MCP server could not be connected; its tools are unavailable until it is");
                *self.down.lock().unwrap_or_else(|p| p.into_inner()) = Some(Down {
                    retry_at: std::time::Instant::now() + backoff,
                    backoff,
                    reason: reason.clone(),
                });
                Err(reason)
            }
        }
    }

    fn down_state(&self) -> Option<Down> {
        // A poisoned lock only means a panic elsewhere; the state itself is a plain value.
        self.down.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drops a connection that failed, so the next call reconnects.
    async fn forget(&self, failed: &Arc<Client>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }
}
