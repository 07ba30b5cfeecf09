//! `[routing]`, `[health]` and `[scaling]` of `planex.toml`: raw structs and their validation into
//! [`RoutingSettings`], the tiers' [`HealthPolicy`] and [`ScalingSettings`].
//!
//! Key decision: like the rest of the config, unknown fields are errors and every message names the
//! field (`routing.rules[2].category`) and what would be valid, because a misspelt rule silently
//! matching nothing would send expensive steps to the wrong tier without anyone noticing.

use crate::EngineSettings;
use crate::config::ConfigError;
use crate::config::RawTier;
use crate::routing::{RouteRule, RoutingSettings};
use crate::scaling::{ScalingRule, ScalingSettings, TierScaling};
use planex_core::ToolSpec;
use planex_llm::{HealthCheckKind, HealthPolicy, TierConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `[routing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRouting {
    /// Tiers a planner `tier` hint may choose (empty: hints are ignored).
    pub hint_tiers: Vec<String>,
    /// Characters per token for input-size estimates.
    pub chars_per_token: u64,
    /// Assumed result size of an `http` step, in tokens.
    pub http_result_tokens: u64,
    /// Tool categories: name → tool names.
    pub categories: BTreeMap<String, Vec<String>>,
    /// `[[routing.rules]]`, first match wins.
    pub rules: Vec<RawRule>,
}

impl Default for RawRouting {
    fn default() -> Self {
        let d = RoutingSettings::default();
        RawRouting {
            hint_tiers: d.hint_tiers,
            chars_per_token: d.chars_per_token,
            http_result_tokens: d.http_result_tokens,
            categories: d.categories,
            rules: Vec::new(),
        }
    }
}

/// `[[routing.rules]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Matches steps of these tools (a string or a list).
    #[serde(default)]
    pub tool: Option<OneOrMany>,
    /// Matches steps whose tool is in this category.
    pub category: Option<String>,
    /// Matches steps with at least this many estimated input tokens.
    pub min_input_tokens: Option<u64>,
    /// Matches steps with at most this many estimated input tokens.
    pub max_input_tokens: Option<u64>,
    /// Where matching steps run.
    pub tier: String,
}

/// `tool = "x"` or `tool = ["x", "y"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One tool.
    One(String),
    /// Several tools.
    Many(Vec<String>),
}

/// `[health]`: passive cooldown, active checks and model pinning, for every tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHealth {
    /// Consecutive endpoint failures that start a cooldown (0 = never).
    pub allowed_fails: u32,
    /// Cooldown length in seconds (0 = never).
    pub cooldown_secs: f64,
    /// `models` (GET /v1/models) or `health` (GET /health, plus /v1/models for the pin).
    pub check: String,
    /// Seconds between active checks (0 = start-up check only).
    pub interval_secs: f64,
    /// Refuse endpoints that do not serve the tier's model.
    pub pin_model: bool,
}

impl Default for RawHealth {
    fn default() -> Self {
        let d = HealthPolicy::default();
        RawHealth {
            allowed_fails: d.allowed_fails,
            cooldown_secs: d.cooldown.as_secs_f64(),
            check: "models".into(),
            interval_secs: d.interval.as_secs_f64(),
            pin_model: d.pin_model,
        }
    }
}

/// `[scaling]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScaling {
    /// p95 TTFT in seconds above which TTFT-scaled tiers add a node.
    pub planner_ttft_p95_secs: f64,
    /// Ready steps above which queue-scaled tiers add a node.
    pub executor_queue_depth: u64,
    /// Seconds a tier must be empty before it scales in.
    pub scale_in_after_secs: u64,
    /// Default floor (at least 1).
    pub min_replicas: u32,
    /// Default ceiling.
    pub max_replicas: u32,
    /// Per-tier overrides.
    pub tiers: BTreeMap<String, RawTierScaling>,
}

impl Default for RawScaling {
    fn default() -> Self {
        let d = ScalingSettings::default();
        RawScaling {
            planner_ttft_p95_secs: d.planner_ttft_p95.as_secs_f64(),
            executor_queue_depth: d.executor_queue_depth,
            scale_in_after_secs: d.scale_in_after.as_secs(),
            min_replicas: d.min_replicas,
            max_replicas: d.max_replicas,
            tiers: BTreeMap::new(),
        }
    }
}

/// `[scaling.tiers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTierScaling {
    /// `ttft` or `queue_depth` (default: ttft for the planner tier, queue_depth otherwise).
    pub rule: Option<String>,
    /// Floor.
    pub min_replicas: Option<u32>,
    /// Ceiling.
    pub max_replicas: Option<u32>,
}

fn seconds(field: &str, secs: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        invalid(
            field,
            format!("must be a number of seconds >= 0, got {secs}"),
        )
    })
}

/// Validates `[routing]`, `[health]` and `[scaling]` against the tiers and tools, applies the health
/// policy to every tier and stores routing and scaling in the engine settings.
pub fn apply(
    raw: (&RawRouting, &RawHealth, &RawScaling),
    tier_names: &BTreeMap<String, RawTier>,
    tools: &[ToolSpec],
    tiers: &mut [TierConfig],
    engine: &mut EngineSettings,
) -> Result<(), ConfigError> {
    let (routing, health, scaling) = raw;
    let known = || tier_names.keys().cloned().collect::<Vec<_>>().join(", ");
    let check_tier = |field: String, tier: &str| {
        if tier_names.contains_key(tier) {
            Ok(())
        } else {
            Err(invalid(
                field,
                format!("{tier:?} is not a tier (tiers: {})", known()),
            ))
        }
    };
    let tool_names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    let check_tool = |field: String, tool: &str| {
        if tool_names.contains(&tool) {
            Ok(())
        } else {
            Err(invalid(
                field,
                format!("{tool:?} is not a tool (tools: {})", tool_names.join(", ")),
            ))
        }
    };
    for (name, members) in &routing.categories {
        for (i, tool) in members.iter().enumerate() {
            check_tool(format!("routing.categories.{name}[{i}]"), tool)?;
        }
    }
    for (i, tier) in routing.hint_tiers.iter().enumerate() {
        check_tier(format!("routing.hint_tiers[{i}]"), tier)?;
    }
    if routing.chars_per_token == 0 {
        return Err(invalid(
            "routing.chars_per_token",
            "must be at least 1 (4 suits English text)",
        ));
    }
    let mut rules = Vec::new();
    for (i, rule) in routing.rules.iter().enumerate() {
        let field = |f: &str| format!("routing.rules[{i}].{f}");
        check_tier(field("tier"), &rule.tier)?;
        let tools = match &rule.tool {
            None => Vec::new(),
            Some(OneOrMany::One(tool)) => vec![tool.clone()],
            Some(OneOrMany::Many(tools)) => tools.clone(),
        };
        for tool in &tools {
            check_tool(field("tool"), tool)?;
        }
        if let Some(category) = &rule.category
            && !routing.categories.contains_key(category)
        {
            let defined: Vec<&String> = routing.categories.keys().collect();
            return Err(invalid(
                field("category"),
                format!(
                    "{category:?} is not a category (defined in [routing.categories]: {defined:?})"
                ),
            ));
        }
        if let (Some(min), Some(max)) = (rule.min_input_tokens, rule.max_input_tokens)
            && min > max
        {
            return Err(invalid(
                field("min_input_tokens"),
                format!("{min} is above max_input_tokens {max}; the rule could never match"),
            ));
        }
        rules.push(RouteRule {
            tools,
            category: rule.category.clone(),
            min_input_tokens: rule.min_input_tokens,
            max_input_tokens: rule.max_input_tokens,
            tier: rule.tier.clone(),
        });
    }
    engine.routing = RoutingSettings {
        rules,
        categories: routing.categories.clone(),
        hint_tiers: routing.hint_tiers.clone(),
        chars_per_token: routing.chars_per_token,
        http_result_tokens: routing.http_result_tokens,
    };
    engine.planner.tier_hints = routing.hint_tiers.clone();

    let policy = HealthPolicy {
        allowed_fails: health.allowed_fails,
        cooldown: seconds("health.cooldown_secs", health.cooldown_secs)?,
        check: match health.check.as_str() {
            "models" => HealthCheckKind::Models,
            "health" => HealthCheckKind::Health,
            other => {
                return Err(invalid(
                    "health.check",
                    format!(
                        "{other:?} is not a check; use \"models\" (GET /v1/models) or \"health\" (GET /health)"
                    ),
                ));
            }
        },
        interval: seconds("health.interval_secs", health.interval_secs)?,
        pin_model: health.pin_model,
    };
    for tier in tiers.iter_mut() {
        tier.health = policy.clone();
    }

    if scaling.planner_ttft_p95_secs.is_nan() || scaling.planner_ttft_p95_secs <= 0.0 {
        return Err(invalid(
            "scaling.planner_ttft_p95_secs",
            "must be a positive number of seconds (DESIGN default: 2)",
        ));
    }
    if scaling.min_replicas == 0 {
        return Err(invalid(
            "scaling.min_replicas",
            "must be at least 1: one warm node per tier",
        ));
    }
    if scaling.max_replicas < scaling.min_replicas {
        return Err(invalid(
            "scaling.max_replicas",
            format!("must be at least min_replicas ({})", scaling.min_replicas),
        ));
    }
    let mut overrides = BTreeMap::new();
    for (name, tier) in &scaling.tiers {
        let field = |f: &str| format!("scaling.tiers.{name}.{f}");
        check_tier(format!("scaling.tiers.{name}"), name)?;
        let rule = match tier.rule.as_deref() {
            None if *name == engine.planner_tier => ScalingRule::Ttft,
            None | Some("queue_depth") => ScalingRule::QueueDepth,
            Some("ttft") => ScalingRule::Ttft,
            Some(other) => {
                return Err(invalid(
                    field("rule"),
                    format!("{other:?} is not a rule; use \"ttft\" or \"queue_depth\""),
                ));
            }
        };
        let min = tier.min_replicas.unwrap_or(scaling.min_replicas);
        let max = tier.max_replicas.unwrap_or(scaling.max_replicas);
        if min == 0 {
            return Err(invalid(field("min_replicas"), "must be at least 1"));
        }
        if max < min {
            return Err(invalid(
                field("max_replicas"),
                format!("must be at least min_replicas ({min})"),
            ));
        }
        overrides.insert(
            name.clone(),
            TierScaling {
                rule,
                min_replicas: min,
                max_replicas: max,
            },
        );
    }
    engine.scaling = ScalingSettings {
        planner_ttft_p95: seconds(
            "scaling.planner_ttft_p95_secs",
            scaling.planner_ttft_p95_secs,
        )?,
        executor_queue_depth: scaling.executor_queue_depth,
        scale_in_after: Duration::from_secs(scaling.scale_in_after_secs),
        min_replicas: scaling.min_replicas,
        max_replicas: scaling.max_replicas,
        tiers: overrides,
    };
    Ok(())
}

#[cfg(test)]
#[path = "config_routing_tests.rs"]
mod tests;
