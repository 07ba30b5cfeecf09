//! planex-app: the one composition root. It reads `planex.toml` ([`Config`]) and builds the running
//! system from it ([`App::from_config`]): simulators for `simulated` tiers, the store (memory or
//! Redis) with its budget ledger and plan cache, the model tier clients and their health checks,
//! the engine, in-process workers when asked, and the HTTP service ([`App::serve`]). The CLI,
//! tests, benchmarks and examples all start planex through it, so the wiring exists once.
//!
//! The config file's format is private to this crate; each validated settings type lives in the
//! crate that uses it (`planex_llm::TierConfig`, `planex_engine::EngineSettings`,
//! `planex_server::ServerSettings`, …). See docs/ARCHITECTURE.md for the crate graph.
//!
//! ```
//! use planex_app::{App, Config, Workers};
//! use planex_engine::TaskRequest;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The embedded default: both tiers served by the built-in simulator (synthetic output).
//! let config = Config::from_toml(planex_app::DEFAULT_CONFIG)?;
//! let app = App::from_config(config, Workers::EveryTier).await?;
//! let request = TaskRequest {
//!     task: "Compare two GPU clouds".into(),
//!     ..TaskRequest::default()
//! };
//! let record = app.engine().run(request, Duration::from_secs(60)).await?;
//! assert!(record.status.is_terminal());
//! app.stop().await;
//! # Ok(())
//! # }
//! ```

mod app;
pub mod config;
mod error;
mod serve;
mod signal;
mod store;
mod tools;

pub use app::{App, AppBuilder, Workers};
pub use config::{Config, ConfigError, DEFAULT_CONFIG, Retention, StoreSettings};
pub use error::AppError;
pub use serve::bind;
pub use signal::shutdown_signal;
pub use store::Backend;
pub use tools::{connect_tools, keep_tools_current};
