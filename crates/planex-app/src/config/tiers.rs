//! `[tiers.NAME]`: each tier validated into a `planex_llm::TierConfig`, or marked as served by the
//! built-in simulator.

use super::error::{ConfigError, invalid};
use super::raw::{RawTier, SimulatedTier};
use planex_core::{Decimal, Price};
use planex_llm::{Endpoint, RetryPolicy, TierConfig, TierRole};
use std::collections::BTreeMap;
use std::time::Duration;

/// The validated tiers: every tier's client config, and which of them the simulator serves (those
/// have no endpoints until their simulator starts).
pub(crate) struct Tiers {
    /// One config per tier, in name order.
    pub(crate) configs: Vec<TierConfig>,
    /// Tiers to serve from the built-in simulator, with its speed.
    pub(crate) simulated: BTreeMap<String, SimulatedTier>,
}

/// Validates every `[tiers.NAME]`; errors name the field (`tiers.executor.endpoints`). The tier
/// named `planner_tier` gets the planner's defaults (no retry, 120 s), the others an executor's.
pub(crate) fn tiers(
    raw: &BTreeMap<String, RawTier>,
    planner_tier: &str,
) -> Result<Tiers, ConfigError> {
    let known = || raw.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut configs = Vec::new();
    let mut simulated = BTreeMap::new();
    for (name, tier) in raw {
        let field = |f: &str| format!("tiers.{name}.{f}");
        if let Some(target) = &tier.escalate_to
            && (!raw.contains_key(target) || target == name)
        {
            return Err(invalid(
                field("escalate_to"),
                format!("{target:?} is not another tier (tiers: {})", known()),
            ));
        }
        let endpoints = endpoints(name, tier)?;
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
        let price = tier_price(name, tier)?;
        let role = if name == planner_tier {
            TierRole::Planner
        } else {
            TierRole::Executor
        };
        configs.push(tier_config(name, tier, role, endpoints, price)?);
    }
    Ok(Tiers { configs, simulated })
}

/// The tier's endpoints, with the API key from `api_key_env` when given.
fn endpoints(name: &str, tier: &RawTier) -> Result<Vec<Endpoint>, ConfigError> {
    let field = |f: &str| format!("tiers.{name}.{f}");
    let api_key = match &tier.api_key_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            invalid(
                field("api_key_env"),
                format!("environment variable {var} is not set"),
            )
        })?),
        None => None,
    };
    let mut endpoints = Vec::new();
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
    Ok(endpoints)
}

/// The client config of one tier: limits, timeout, streaming, escalation and retries; what the
/// file leaves out takes the default of the tier's `role`.
fn tier_config(
    name: &str,
    tier: &RawTier,
    role: TierRole,
    endpoints: Vec<Endpoint>,
    price: Price,
) -> Result<TierConfig, ConfigError> {
    let field = |f: &str| format!("tiers.{name}.{f}");
    let mut config =
        TierConfig::new(name, tier.model.clone(), endpoints, price).with_role_defaults(role);
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
    let defaults = config.retry.clone();
    config.retry = RetryPolicy {
        max_retries: tier.retry.max_retries.unwrap_or(defaults.max_retries),
        initial_backoff: tier
            .retry
            .initial_backoff_ms
            .map_or(defaults.initial_backoff, Duration::from_millis),
        max_backoff: tier
            .retry
            .max_backoff_ms
            .map_or(defaults.max_backoff, Duration::from_millis),
        ..defaults
    };
    Ok(config)
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
