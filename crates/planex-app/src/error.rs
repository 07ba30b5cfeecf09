//! Why the system could not be started or served; each variant keeps its cause for `{:#}`.

use crate::config::ConfigError;
use std::net::SocketAddr;

/// A failure to start or serve the system.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The built-in simulator for a `simulated` tier could not start.
    #[error("starting the simulator for tier {tier}")]
    Simulator {
        /// The tier.
        tier: String,
        /// Why.
        #[source]
        source: planex_sim::SimError,
    },
    /// The store could not be opened (for Redis: check `[store] url` and that the server runs).
    #[error("opening the {backend} store ([store] url or --store)")]
    Store {
        /// `redis`.
        backend: &'static str,
        /// Why.
        #[source]
        source: planex_store::StoreError,
    },
    /// The HTTP client for model servers could not be built.
    #[error("building the HTTP client for model servers")]
    Client(#[source] planex_llm::LlmError),
    /// A tier's config was refused by the client, or its start-up check failed.
    #[error("setting up the model tiers")]
    Tiers(#[source] planex_llm::TierSetError),
    /// An MCP server could not be connected or did not list its tools.
    #[error("connecting the MCP servers ([[mcp_servers]])")]
    Mcp(#[source] planex_engine::mcp::McpError),
    /// The engine refused its wiring (a tool or rule names a tier that does not exist).
    #[error("wiring the engine")]
    Engine(#[source] planex_engine::EngineError),
    /// The API's address could not be bound.
    #[error("binding {addr} ([server] listen or --listen); is another process using it?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The API stopped with an I/O error.
    #[error("serving the API")]
    Serve(#[source] std::io::Error),
}
