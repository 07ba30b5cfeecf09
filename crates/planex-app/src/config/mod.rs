//! `planex.toml`: the config file read from TOML and `PLANEX_*` environment variables, then
//! validated once into each crate's own settings (tier configs for `planex-llm`, engine settings,
//! server settings, budget and cache settings, the tool catalog, the store to open).
//!
//! Key decisions: unknown fields and unknown enum values are errors, because a misspelt price,
//! timeout or backend silently falling back to a default costs money; every message names the
//! field. A tier may be `simulated` instead of listing endpoints: the process that loads the config
//! then starts the built-in simulator for it, which is how `planex run` works with no config at all.
//!
//! Module layout (no module imports a sibling that imports it back): `raw` holds the file format,
//! `error` the error type, and `tiers`, `service` and `routing` each validate their sections.

mod drift;
mod error;
mod mcp;
mod raw;
mod routing;
mod service;
mod tiers;

pub use error::ConfigError;
pub use mcp::DEFAULT_MCP_TIER;
pub use raw::SimulatedTier;
pub use service::ServiceSettings;

use error::invalid;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use planex_core::Catalog;
use planex_core::ToolSpec;
use planex_engine::{EngineSettings, PlannerSettings};
use planex_llm::TierConfig;
use raw::{BackendKind, RawConfig, RawStore};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The embedded default configuration (simulated tiers, a small research tool catalog).
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");

/// Where task state lives: `[store]` validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreSettings {
    /// In this process (the embedded default): private to it, lost when it exits.
    #[default]
    Memory,
    /// A Redis server shared by every API replica and worker.
    Redis {
        /// `redis://host:port` or `rediss://…`.
        url: String,
    },
}

impl StoreSettings {
    /// Parses a `--store` flag: `memory` or a Redis URL.
    pub fn from_flag(flag: &str) -> Result<StoreSettings, ConfigError> {
        if flag == "memory" {
            Ok(StoreSettings::Memory)
        } else if flag.starts_with("redis://") || flag.starts_with("rediss://") {
            Ok(StoreSettings::Redis {
                url: flag.to_owned(),
            })
        } else {
            Err(invalid(
                "--store",
                format!("{flag:?}: use \"memory\" or a Redis URL like redis://127.0.0.1:6379"),
            ))
        }
    }

    /// True when the store is shared between processes (workers elsewhere can run its steps).
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreSettings::Redis { .. })
    }

    fn from_raw(raw: &RawStore) -> Result<StoreSettings, ConfigError> {
        match (raw.backend, &raw.url) {
            (BackendKind::Memory, None) => Ok(StoreSettings::Memory),
            (BackendKind::Memory, Some(_)) => Err(invalid(
                "store.url",
                "is set but store.backend is \"memory\"; set backend = \"redis\" to use the URL",
            )),
            (BackendKind::Redis, Some(url)) => Ok(StoreSettings::Redis { url: url.clone() }),
            (BackendKind::Redis, None) => Err(invalid(
                "store.url",
                "store.backend = \"redis\" needs url = \"redis://host:6379\" in [store]",
            )),
        }
    }
}

/// How long and how many finished tasks a store keeps (docs/ARCHITECTURE.md §6): by age on both
/// stores, by count and bytes in the memory store (Redis is bounded by its own `maxmemory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a finished task is kept (`None`: no age limit).
    pub keep_finished: Option<Duration>,
    /// Memory store: most finished tasks kept.
    pub max_finished_tasks: usize,
    /// Memory store: most bytes the finished tasks kept may take.
    pub max_finished_bytes: usize,
}

impl Default for Retention {
    fn default() -> Self {
        let memory = planex_store::MemoryStoreOptions::default();
        Retention {
            keep_finished: memory.finished_task_ttl,
            max_finished_tasks: memory.max_finished_tasks,
            max_finished_bytes: memory.max_finished_bytes,
        }
    }
}

impl Retention {
    fn from_raw(raw: &RawStore) -> Result<Retention, ConfigError> {
        let defaults = Retention::default();
        if raw.max_finished_tasks == Some(0) {
            return Err(invalid(
                "store.max_finished_tasks",
                "must be at least 1 (it bounds how many finished tasks the memory store keeps)",
            ));
        }
        if raw.max_finished_mib == Some(0) {
            return Err(invalid(
                "store.max_finished_mib",
                "must be at least 1 (it bounds the memory the memory store's finished tasks take)",
            ));
        }
        Ok(Retention {
            keep_finished: match raw.keep_finished_secs {
                None => defaults.keep_finished,
                Some(0) => None,
                Some(secs) => Some(Duration::from_secs(secs)),
            },
            max_finished_tasks: raw
                .max_finished_tasks
                .unwrap_or(defaults.max_finished_tasks),
            max_finished_bytes: raw
                .max_finished_mib
                .map_or(defaults.max_finished_bytes, |mib| {
                    mib.saturating_mul(1024 * 1024)
                }),
        })
    }
}

/// A validated config, ready for [`crate::App::start`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Engine settings.
    pub engine: EngineSettings,
    /// Concurrent steps per tier for in-process workers.
    pub worker_concurrency: usize,
    /// On shutdown, how long in-process workers let running steps finish before releasing them.
    pub worker_drain: Duration,
    /// Which store to open.
    pub store: StoreSettings,
    /// How long and how many finished tasks the store keeps (`[store]`).
    pub retention: Retention,
    /// Tier configs; simulated tiers have no endpoints until their simulator starts.
    pub tiers: Vec<TierConfig>,
    /// Tiers to serve from the built-in simulator.
    pub simulated: BTreeMap<String, SimulatedTier>,
    /// Tool specs (compiled into a `Catalog` by [`Config::catalog`]).
    pub tools: Vec<ToolSpec>,
    /// `[[mcp_servers]]`: their tools join the catalog when the app connects them.
    pub mcp_servers: Vec<planex_engine::mcp::McpServerConfig>,
    /// The HTTP service's settings: server, API keys, budget, plan cache.
    pub service: ServiceSettings,
    /// `[drift]`: the drift guard's sizes and configured baselines per task type.
    pub drift: planex_engine::DriftSettings,
}

impl Config {
    /// Loads `path` (or the embedded default when `None`), applies `PLANEX_*` overrides (nested keys
    /// separated by `__`, e.g. `PLANEX_ENGINE__MAX_SUBTASKS=6`), and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let base = match path {
            Some(path) => {
                // Figment reads a missing file as an empty one: open it first, so a missing or
                // unreadable file is an error that keeps its I/O cause.
                std::fs::File::open(path).map_err(|source| ConfigError::Unreadable {
                    path: path.to_owned(),
                    source,
                })?;
                Figment::from(Toml::file(path))
            }
            None => Figment::from(Toml::string(DEFAULT_CONFIG)),
        };
        // PLANEX_LOG is the log filter, not a config field.
        let raw: RawConfig = base
            .merge(Env::prefixed("PLANEX_").ignore(&["LOG"]).split("__"))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        Config::from_raw(raw)
    }

    /// Parses TOML text (no environment overrides) and validates it.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        if raw.tiers.is_empty() {
            return Err(invalid(
                "tiers",
                "no tiers are defined; add at least [tiers.planner]",
            ));
        }
        let known = || raw.tiers.keys().cloned().collect::<Vec<_>>().join(", ");
        let service =
            ServiceSettings::from_raw(&raw.server, &raw.api_keys, &raw.budget, &raw.cache)?;
        if !raw.tiers.contains_key(&raw.engine.planner_tier) {
            return Err(invalid(
                "engine.planner_tier",
                format!(
                    "{:?} is not a tier (tiers: {})",
                    raw.engine.planner_tier,
                    known()
                ),
            ));
        }
        if raw.engine.max_subtasks == 0 {
            return Err(invalid("engine.max_subtasks", "must be at least 1"));
        }
        if raw.engine.max_client_plan_steps == 0 {
            return Err(invalid(
                "engine.max_client_plan_steps",
                "must be at least 1",
            ));
        }
        if raw.engine.max_replans > PlannerSettings::MAX_REPLANS {
            return Err(invalid(
                "engine.max_replans",
                format!(
                    "must be between 0 (no joiner) and {}, got {}",
                    PlannerSettings::MAX_REPLANS,
                    raw.engine.max_replans
                ),
            ));
        }
        if raw.engine.planner_catalog_chars == 0 {
            return Err(invalid(
                "engine.planner_catalog_chars",
                "must be at least 1",
            ));
        }
        if raw.engine.max_task_chars == 0 {
            return Err(invalid("engine.max_task_chars", "must be at least 1"));
        }
        if raw.engine.planning_deadline_secs == 0 {
            return Err(invalid(
                "engine.planning_deadline_secs",
                "must be at least 1",
            ));
        }
        if raw.engine.worker_concurrency == 0 {
            return Err(invalid("engine.worker_concurrency", "must be at least 1"));
        }
        let worker_drain = Duration::try_from_secs_f64(raw.engine.drain_secs).map_err(|_| {
            invalid(
                "engine.drain_secs",
                format!(
                    "must be a number of seconds >= 0, got {}",
                    raw.engine.drain_secs
                ),
            )
        })?;
        let tiers::Tiers {
            configs: mut tiers,
            simulated,
        } = tiers::tiers(&raw.tiers, &raw.engine.planner_tier)?;
        check_tools(&raw, &known())?;
        let mut engine = EngineSettings {
            planner_tier: raw.engine.planner_tier.clone(),
            max_subtasks: raw.engine.max_subtasks,
            max_client_plan_steps: raw.engine.max_client_plan_steps,
            max_task_chars: raw.engine.max_task_chars,
            synthesis: raw.engine.synthesis,
            planner: PlannerSettings {
                max_tokens: raw.engine.planner_max_tokens,
                max_catalog_chars: raw.engine.planner_catalog_chars,
                stream: raw.engine.stream_plans,
                max_replans: raw.engine.max_replans,
                deadline: Duration::from_secs(raw.engine.planning_deadline_secs),
                ..PlannerSettings::default()
            },
            ..EngineSettings::default()
        };
        routing::apply(
            (&raw.routing, &raw.health, &raw.scaling),
            &raw.tiers,
            &raw.tools,
            &mut tiers,
            &mut engine,
        )?;
        Ok(Config {
            engine,
            worker_concurrency: raw.engine.worker_concurrency,
            worker_drain,
            store: StoreSettings::from_raw(&raw.store)?,
            retention: Retention::from_raw(&raw.store)?,
            tiers,
            simulated,
            drift: drift::settings(&raw.drift)?,
            mcp_servers: mcp::servers(
                &raw.mcp_servers,
                &raw.tiers.keys().cloned().collect::<Vec<_>>(),
            )?,
            tools: raw.tools,
            service,
        })
    }

    /// The compiled catalog of `[[tools]]` (the tools of `[[mcp_servers]]` need a connection:
    /// [`crate::connect_tools`] adds them).
    /// An `llm` tool's `uses` of MCP tools are checked only then.
    pub fn catalog(&self) -> Result<Catalog, ConfigError> {
        let servers: Vec<&str> = self.mcp_servers.iter().map(|s| s.name.as_str()).collect();
        Catalog::new(offline_tools(&self.tools, &servers))
            .map_err(|e| invalid("tools", e.to_string()))
    }

    /// True when any tier is served by the simulator (its output is synthetic).
    pub fn is_simulated(&self) -> bool {
        !self.simulated.is_empty()
    }

    /// The config of the tier named `name`, if there is one.
    pub fn tier(&self, name: &str) -> Option<&TierConfig> {
        self.tiers.iter().find(|t| t.name == name)
    }
}

/// Every tool names a defined tier, there is at least one tool, and every schema compiles.
fn check_tools(raw: &RawConfig, known_tiers: &str) -> Result<(), ConfigError> {
    for (i, tool) in raw.tools.iter().enumerate() {
        if !raw.tiers.contains_key(&tool.tier) {
            return Err(invalid(
                format!("tools[{i}].tier"),
                format!(
                    "tool {:?} uses tier {:?}, which is not defined (tiers: {known_tiers})",
                    tool.name, tool.tier,
                ),
            ));
        }
    }
    if raw.tools.is_empty() && raw.mcp_servers.is_empty() {
        return Err(invalid(
            "tools",
            "no tools are defined; the planner needs at least one [[tools]] or [[mcp_servers]] entry",
        ));
    }
    // Compile once here so schema errors surface at load time, naming the tool.
    let servers: Vec<&str> = raw.mcp_servers.iter().map(|s| s.name()).collect();
    Catalog::new(offline_tools(&raw.tools, &servers))
        .map_err(|e| invalid("tools", e.to_string()))?;
    Ok(())
}

/// `tools` without the `uses` entries that name tools of the MCP servers `servers`
/// (`SERVER__TOOL`): those tools are known only once the servers are connected, and
/// [`crate::connect_tools`] checks the whole catalog then.
fn offline_tools(tools: &[ToolSpec], servers: &[&str]) -> Vec<ToolSpec> {
    let prefixes: Vec<String> = servers
        .iter()
        .map(|server| planex_engine::mcp::catalog_name(server, ""))
        .collect();
    let mut tools = tools.to_vec();
    for tool in &mut tools {
        if let planex_core::ToolKind::Llm(llm) = &mut tool.kind {
            llm.uses
                .retain(|name| !prefixes.iter().any(|prefix| name.starts_with(prefix)));
        }
    }
    tools
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod routing_tests;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
