//! `[routing]`, `[health]` and `[scaling]` of `planex.toml`: raw structs and their validation into
//! [`RoutingSettings`], the tiers' [`HealthPolicy`] and [`ScalingSettings`].
//!
//! Key decision: like the rest of the config, unknown fields are errors and every message names the
//! field (`routing.rules[2].category`) and what would be valid, because a misspelt rule silently
//! matching nothing would send expensive steps to the wrong tier without anyone noticing.

use super::error::{ConfigError, invalid};
use super::raw::{OneOrMany, RawHealth, RawRouting, RawScaling, RawTier};
use planex_core::ToolSpec;
use planex_engine::scaling::{ScalingRule, ScalingSettings, TierScaling};
use planex_engine::{EngineSettings, RouteRule, RoutingSettings};
use planex_llm::{HealthPolicy, TierConfig};
use std::collections::BTreeMap;
use std::time::Duration;

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
pub(crate) fn apply(
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
        check: health.check,
        interval: seconds("health.interval_secs", health.interval_secs)?,
        pin_model: health.pin_model,
    };
    for tier in tiers.iter_mut() {
        tier.health = policy.clone();
    }

    if scaling.planner_ttft_p95_secs.is_nan() || scaling.planner_ttft_p95_secs <= 0.0 {
        return Err(invalid(
            "scaling.planner_ttft_p95_secs",
            "must be a positive number of seconds (default: 2)",
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
        let rule = match tier.rule {
            Some(rule) => rule,
            None if *name == engine.planner_tier => ScalingRule::Ttft,
            None => ScalingRule::QueueDepth,
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
