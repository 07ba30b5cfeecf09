//! `planex.toml`: raw config read from TOML and `PLANEX_*` environment variables, then validated once
//! into runtime settings (tier configs, the tool catalog, engine settings).
//!
//! Key decisions: unknown fields are errors (`deny_unknown_fields`), because a misspelt price or
//! timeout silently falling back to a default costs money; every message names the field. A tier may
//! be `simulated` instead of listing endpoints: the process that loads the config then starts the
//! built-in simulator for it, which is how `planex run` works with no config at all.

use crate::{EngineSettings, PlannerSettings};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use planex_core::{Catalog, Decimal, Price, ToolSpec};
use planex_llm::{Endpoint, RetryPolicy, TierConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The embedded default configuration (simulated tiers, a small research tool catalog).
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// A config that cannot be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be parsed, or has an unknown field.
    #[error("config error: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("config error in {field}: {message}")]
    Invalid {
        /// The field, as a dotted path (`tiers.executor.usd_per_hour`).
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Engine settings.
    #[serde(default)]
    pub engine: RawEngine,
    /// Where task state lives.
    #[serde(default)]
    pub store: RawStore,
    /// Model tiers by name.
    pub tiers: BTreeMap<String, RawTier>,
    /// The tool catalog.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// `[server]` (see `config_server.rs`).
    #[serde(default)]
    pub server: crate::config_server::RawServer,
    /// `[[api_keys]]`: hashed bearer keys with tenant, cost center and monthly budget.
    #[serde(default)]
    pub api_keys: Vec<crate::config_server::RawApiKey>,
    /// `[budget]`.
    #[serde(default)]
    pub budget: crate::config_server::RawBudget,
    /// `[cache]`.
    #[serde(default)]
    pub cache: crate::config_server::RawCache,
    /// `[routing]`: routing rules and planner tier hints (see `config_routing.rs`).
    #[serde(default)]
    pub routing: crate::config_routing::RawRouting,
    /// `[health]`: endpoint cooldown, active checks, model pinning.
    #[serde(default)]
    pub health: crate::config_routing::RawHealth,
    /// `[scaling]`: autoscaling thresholds.
    #[serde(default)]
    pub scaling: crate::config_routing::RawScaling,
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEngine {
    /// The tier that plans and synthesises.
    pub planner_tier: String,
    /// Default most steps per plan.
    pub max_subtasks: usize,
    /// Append a synthesis step by default.
    pub synthesis: bool,
    /// Cap on the planner's answer in tokens.
    pub planner_max_tokens: u32,
    /// Concurrent steps per tier for in-process workers.
    pub worker_concurrency: usize,
}

impl Default for RawEngine {
    fn default() -> Self {
        let d = EngineSettings::default();
        RawEngine {
            planner_tier: d.planner_tier,
            max_subtasks: d.max_subtasks,
            synthesis: d.synthesis,
            planner_max_tokens: d.planner.max_tokens,
            worker_concurrency: 32,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// `memory` (embedded default); `redis` arrives with the distributed deployment.
    pub backend: String,
    /// Backend URL (e.g. `redis://127.0.0.1:6379`).
    pub url: Option<String>,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            backend: "memory".into(),
            url: None,
        }
    }
}

/// `[tiers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    /// Model name sent to the servers (must match what they serve).
    pub model: String,
    /// OpenAI-compatible base URLs, e.g. `http://10.0.0.5:8000/v1`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Name of an environment variable holding the API key, if the servers need one.
    pub api_key_env: Option<String>,
    /// GPU pool price per node-hour (with `tokens_per_second`).
    pub usd_per_hour: Option<Decimal>,
    /// GPU pool throughput in tokens per second (with `usd_per_hour`).
    pub tokens_per_second: Option<Decimal>,
    /// API price per million prompt tokens (with `usd_per_million_output`).
    pub usd_per_million_input: Option<Decimal>,
    /// API price per million completion tokens.
    pub usd_per_million_output: Option<Decimal>,
    /// Most calls in flight from one process.
    pub max_concurrency: Option<usize>,
    /// Per-attempt timeout in seconds.
    pub timeout_secs: Option<f64>,
    /// Stream responses (measures time to first token).
    pub stream: Option<bool>,
    /// Tier to retry a failed step on once.
    pub escalate_to: Option<String>,
    /// Retry policy.
    #[serde(default)]
    pub retry: RawRetry,
    /// Serve this tier from the built-in simulator instead of `endpoints`.
    pub simulated: Option<SimulatedTier>,
}

/// `[tiers.NAME.retry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff in milliseconds (then doubled, with ±20 % jitter).
    pub initial_backoff_ms: u64,
    /// Longest backoff in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        let d = RetryPolicy::default();
        RawRetry {
            max_retries: d.max_retries,
            initial_backoff_ms: d.initial_backoff.as_millis() as u64,
            max_backoff_ms: d.max_backoff.as_millis() as u64,
        }
    }
}

/// `simulated = { … }`: the simulator's speed for this tier.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulatedTier {
    /// Time to first token in milliseconds.
    #[serde(default)]
    pub ttft_ms: u64,
    /// Generation speed per request (0 = instant).
    #[serde(default)]
    pub tokens_per_second: f64,
}

/// A validated config, ready to wire.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Engine settings.
    pub engine: EngineSettings,
    /// Concurrent steps per tier for in-process workers.
    pub worker_concurrency: usize,
    /// Store backend and URL.
    pub store: RawStore,
    /// Tier configs; simulated tiers have no endpoints until their simulator starts.
    pub tiers: Vec<TierConfig>,
    /// Tiers to serve from the built-in simulator.
    pub simulated: BTreeMap<String, SimulatedTier>,
    /// Tool specs (compiled into a `Catalog` by `catalog()`).
    pub tools: Vec<ToolSpec>,
    /// The HTTP service's settings: server, API keys, budget, plan cache.
    pub service: crate::config_server::ServiceSettings,
}

impl Settings {
    /// Loads `path` (or the embedded default when `None`), applies `PLANEX_*` overrides (nested keys
    /// separated by `__`, e.g. `PLANEX_ENGINE__MAX_SUBTASKS=6`), and validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let base = match path {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Parse(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                Figment::from(Toml::file(path))
            }
            None => Figment::from(Toml::string(DEFAULT_CONFIG)),
        };
        let raw: RawConfig = base
            // PLANEX_LOG is the log filter, not a config field.
            .merge(Env::prefixed("PLANEX_").ignore(&["LOG"]).split("__"))
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        Settings::from_raw(raw)
    }

    /// Parses TOML text (no environment overrides) and validates it.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Settings::from_raw(raw)
    }

    /// Validates a raw config.
    pub fn from_raw(raw: RawConfig) -> Result<Settings, ConfigError> {
        if raw.tiers.is_empty() {
            return Err(invalid(
                "tiers",
                "no tiers are defined; add at least [tiers.planner]",
            ));
        }
        let known = || raw.tiers.keys().cloned().collect::<Vec<_>>().join(", ");
        let service = crate::config_server::ServiceSettings::from_raw(
            &raw.server,
            &raw.api_keys,
            &raw.budget,
            &raw.cache,
        )?;
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
        if raw.engine.worker_concurrency == 0 {
            return Err(invalid("engine.worker_concurrency", "must be at least 1"));
        }
        let mut tiers = Vec::new();
        let mut simulated = BTreeMap::new();
        for (name, tier) in &raw.tiers {
            let field = |f: &str| format!("tiers.{name}.{f}");
            if let Some(target) = &tier.escalate_to
                && (!raw.tiers.contains_key(target) || target == name)
            {
                return Err(invalid(
                    field("escalate_to"),
                    format!("{target:?} is not another tier (tiers: {})", known()),
                ));
            }
            let price = tier_price(name, tier)?;
            let mut endpoints = Vec::new();
            let api_key = match &tier.api_key_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    invalid(
                        field("api_key_env"),
                        format!("environment variable {var} is not set"),
                    )
                })?),
                None => None,
            };
            for url in &tier.endpoints {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(
                        field("endpoints"),
                        format!("{url:?} must start with http:// or https://"),
                    ));
                }
                let endpoint = Endpoint::new(url.clone());
                endpoints.push(match &api_key {
                    Some(key) => endpoint.with_api_key(key.clone()),
                    None => endpoint,
                });
            }
            match (&tier.simulated, endpoints.is_empty()) {
                (Some(sim), true) => {
                    simulated.insert(name.clone(), *sim);
                }
                (Some(_), false) => {
                    return Err(invalid(
                        field("simulated"),
                        "give either endpoints or simulated, not both",
                    ));
                }
                (None, true) => {
                    return Err(invalid(
                        field("endpoints"),
                        "no endpoints; list OpenAI-compatible base URLs such as \"http://127.0.0.1:8000/v1\"",
                    ));
                }
                (None, false) => {}
            }
            let mut config = TierConfig::new(name.clone(), tier.model.clone(), endpoints, price);
            if let Some(n) = tier.max_concurrency {
                if n == 0 {
                    return Err(invalid(field("max_concurrency"), "must be at least 1"));
                }
                config.max_concurrency = n;
            }
            if let Some(secs) = tier.timeout_secs {
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(invalid(
                        field("timeout_secs"),
                        "must be a positive number of seconds",
                    ));
                }
                config.timeout = Duration::from_secs_f64(secs);
            }
            if let Some(stream) = tier.stream {
                config.stream = stream;
            }
            config.escalate_to = tier.escalate_to.clone();
            config.retry = RetryPolicy {
                max_retries: tier.retry.max_retries,
                initial_backoff: Duration::from_millis(tier.retry.initial_backoff_ms),
                max_backoff: Duration::from_millis(tier.retry.max_backoff_ms),
                ..RetryPolicy::default()
            };
            tiers.push(config);
        }
        for (i, tool) in raw.tools.iter().enumerate() {
            if !raw.tiers.contains_key(&tool.tier) {
                return Err(invalid(
                    format!("tools[{i}].tier"),
                    format!(
                        "tool {:?} uses tier {:?}, which is not defined (tiers: {})",
                        tool.name,
                        tool.tier,
                        known()
                    ),
                ));
            }
        }
        if raw.tools.is_empty() {
            return Err(invalid(
                "tools",
                "no tools are defined; the planner needs at least one [[tools]] entry",
            ));
        }
        // Compile once here so schema errors surface at load time, naming the tool.
        Catalog::new(raw.tools.clone()).map_err(|e| invalid("tools", e.to_string()))?;
        let mut engine = EngineSettings {
            planner_tier: raw.engine.planner_tier.clone(),
            max_subtasks: raw.engine.max_subtasks,
            synthesis: raw.engine.synthesis,
            planner: PlannerSettings {
                max_tokens: raw.engine.planner_max_tokens,
                ..PlannerSettings::default()
            },
            ..EngineSettings::default()
        };
        crate::config_routing::apply(
            (&raw.routing, &raw.health, &raw.scaling),
            &raw.tiers,
            &raw.tools,
            &mut tiers,
            &mut engine,
        )?;
        Ok(Settings {
            engine,
            worker_concurrency: raw.engine.worker_concurrency,
            store: raw.store,
            tiers,
            simulated,
            tools: raw.tools,
            service,
        })
    }

    /// The compiled tool catalog.
    pub fn catalog(&self) -> Result<Catalog, ConfigError> {
        Catalog::new(self.tools.clone()).map_err(|e| invalid("tools", e.to_string()))
    }

    /// True when any tier is served by the simulator (its output is synthetic).
    pub fn is_simulated(&self) -> bool {
        !self.simulated.is_empty()
    }
}

fn tier_price(name: &str, tier: &RawTier) -> Result<Price, ConfigError> {
    let field = |f: &str| format!("tiers.{name}.{f}");
    let non_negative = |f: &str, v: Decimal| {
        if v.is_sign_negative() {
            Err(invalid(field(f), "must not be negative"))
        } else {
            Ok(v)
        }
    };
    match (
        tier.usd_per_hour,
        tier.tokens_per_second,
        tier.usd_per_million_input,
        tier.usd_per_million_output,
    ) {
        (Some(hour), Some(tps), None, None) => {
            if tps <= Decimal::ZERO {
                return Err(invalid(
                    field("tokens_per_second"),
                    "must be greater than zero",
                ));
            }
            Ok(Price::GpuHour {
                usd_per_hour: non_negative("usd_per_hour", hour)?,
                tokens_per_second: tps,
            })
        }
        (None, None, Some(input), Some(output)) => Ok(Price::PerMillion {
            usd_per_million_input: non_negative("usd_per_million_input", input)?,
            usd_per_million_output: non_negative("usd_per_million_output", output)?,
        }),
        _ => Err(invalid(
            field("usd_per_hour"),
            "give a price: either usd_per_hour + tokens_per_second (GPU pool) or usd_per_million_input + \
             usd_per_million_output (API), not a mix",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid_and_simulated() {
        let settings = Settings::from_toml(DEFAULT_CONFIG).unwrap();
        assert!(settings.is_simulated());
        assert_eq!(settings.engine.planner_tier, "planner");
        assert!(settings.catalog().unwrap().len() >= 4);
        let planner = settings.tiers.iter().find(|t| t.name == "planner").unwrap();
        assert_eq!(
            planner.price.per_million().0.round_dp(3).to_string(),
            "0.504"
        );
    }

    fn with(extra: &str) -> String {
        format!("{DEFAULT_CONFIG}\n{extra}")
    }

    #[test]
    fn unknown_fields_are_errors_naming_the_field() {
        let err =
            Settings::from_toml(&DEFAULT_CONFIG.replace("max_subtasks = 10", "max_subtask = 10"))
                .unwrap_err();
        assert!(err.to_string().contains("max_subtask"), "{err}");
    }

    #[test]
    fn inconsistent_values_name_the_field() {
        let err =
            Settings::from_toml(&DEFAULT_CONFIG.replace("usd_per_hour = 0.96\n", "")).unwrap_err();
        assert!(
            err.to_string().contains("tiers.executor.usd_per_hour"),
            "{err}"
        );
        let err = Settings::from_toml(
            &DEFAULT_CONFIG.replace("planner_tier = \"planner\"", "planner_tier = \"big\""),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("engine.planner_tier") && err.to_string().contains("executor"),
            "{err}"
        );
        let err = Settings::from_toml(&with(
            "[[tools]]\nname = \"x\"\ndescription = \"d\"\ntier = \"gpu9\"\ninput_schema = { type = \"object\" }\nkind = { type = \"llm\", prompt = \"p\" }",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("gpu9"), "{err}");
    }

    #[test]
    fn real_endpoints_replace_the_simulator() {
        let text = DEFAULT_CONFIG.replace(
            "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
            "endpoints = [\"http://10.0.0.7:30000/v1\"]\nescalate_to = \"planner\"",
        );
        let settings = Settings::from_toml(&text).unwrap();
        let executor = settings
            .tiers
            .iter()
            .find(|t| t.name == "executor")
            .unwrap();
        assert_eq!(executor.endpoints[0].base_url, "http://10.0.0.7:30000/v1");
        assert_eq!(executor.escalate_to.as_deref(), Some("planner"));
        assert!(!settings.simulated.contains_key("executor"));
        let bad = DEFAULT_CONFIG.replace(
            "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
            "endpoints = [\"10.0.0.7\"]",
        );
        assert!(
            Settings::from_toml(&bad)
                .unwrap_err()
                .to_string()
                .contains("http://")
        );
    }
}
