//! Which tier runs each step, why, and the step specs handed to the store.
//!
//! A step runs on its tool's tier unless a routing rule or an allowed planner hint says otherwise:
//! 1. a planner `tier` hint, when `routing.hint_tiers` lists that tier;
//! 2. the first `[[routing.rules]]` entry whose conditions all hold (tool name, tool category,
//!    estimated input tokens);
//! 3. the tool's own tier.
//!
//! The synthesis step always runs on the planner tier.
//!
//! Key decisions: routing happens once, when the plan is accepted, and is written into each step's
//! spec, so workers, the store and the cost report agree on the tier and a redelivered step is not
//! re-routed. The input size is *estimated* at that time: prompt template and literal args by length,
//! each `{step_N_result}` by the referenced step's output cap (`max_tokens` of an `llm` tool), at
//! `chars_per_token` characters per token — a bound on what the step can receive, known before any
//! step has run. Every decision carries a reason, which `planex route explain` prints.

use crate::synthesis::{SYNTHESIS_TOOL, synthesis_id};
use planex_core::{Catalog, Plan, PlanError, PlanLimits, StepId, ToolKind, placeholders};
use serde::Serialize;
use std::collections::BTreeMap;

/// Routing rules, validated (see `config_routing.rs` for the file format).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingSettings {
    /// Rules in order; the first whose conditions all hold decides.
    pub rules: Vec<RouteRule>,
    /// Tool categories: category name → tool names.
    pub categories: BTreeMap<String, Vec<String>>,
    /// Tiers a planner hint may choose; empty means hints are ignored.
    pub hint_tiers: Vec<String>,
    /// Characters per token for input estimates (default 4).
    pub chars_per_token: u64,
    /// Assumed result size of a non-`llm` step (an `http` tool), in tokens (default 512).
    pub http_result_tokens: u64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings::tool_tiers_only()
    }
}

impl RoutingSettings {
    /// No rules and no hints: every step on its tool's tier.
    pub fn tool_tiers_only() -> Self {
        RoutingSettings {
            rules: Vec::new(),
            categories: BTreeMap::new(),
            hint_tiers: Vec::new(),
            chars_per_token: 4,
            http_result_tokens: 512,
        }
    }

    /// Every tier a rule or a hint can send a step to.
    pub fn target_tiers(&self) -> Vec<String> {
        let mut tiers: Vec<String> = self.rules.iter().map(|r| r.tier.clone()).collect();
        tiers.extend(self.hint_tiers.iter().cloned());
        tiers.sort();
        tiers.dedup();
        tiers
    }
}

/// One rule: when every given condition holds, the step runs on `tier`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteRule {
    /// The step's tool is one of these (empty: any tool).
    pub tools: Vec<String>,
    /// The step's tool is in this category.
    pub category: Option<String>,
    /// The estimated input is at least this many tokens.
    pub min_input_tokens: Option<u64>,
    /// The estimated input is at most this many tokens.
    pub max_input_tokens: Option<u64>,
    /// Where matching steps run.
    pub tier: String,
}

/// What decided a step's tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum RouteSource {
    /// The planner's `tier` hint (allowed by `routing.hint_tiers`).
    Hint,
    /// Rule number `rule` (1-based, in file order).
    Rule {
        /// 1-based position in `[[routing.rules]]`.
        rule: usize,
    },
    /// The tool's own tier.
    Tool,
    /// The synthesis step, always on the planner tier.
    Synthesis,
}

/// The tier chosen for one step, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteDecision {
    /// The step.
    pub step_id: StepId,
    /// Its tool.
    pub tool: String,
    /// The chosen tier.
    pub tier: String,
    /// What decided it.
    pub source: RouteSource,
    /// The estimated input size in tokens.
    pub estimated_input_tokens: u64,
    /// Why, for people.
    pub reason: String,
}

/// Tier hints the planner wrote on steps, by step.
pub type TierHints = BTreeMap<StepId, String>;

/// Removes every step's `tier` field from a plan's JSON and returns them (non-string values are
/// dropped and reported as hint `"?"`, which no tier matches). The plan can then be validated.
pub fn split_tier_hints(plan: &mut serde_json::Value) -> TierHints {
    let mut hints = TierHints::new();
    let Some(steps) = plan.get_mut("steps").and_then(|s| s.as_array_mut()) else {
        return hints;
    };
    for step in steps {
        let Some(map) = step.as_object_mut() else {
            continue;
        };
        let Some(hint) = map.remove("tier") else {
            continue;
        };
        if let Some(id) = map.get("step_id").and_then(serde_json::Value::as_u64)
            && let Ok(id) = u32::try_from(id)
        {
            hints.insert(StepId(id), hint.as_str().unwrap_or("?").to_owned());
        }
    }
    hints
}

/// Routes steps with one settings, catalog and planner tier.
#[derive(Debug, Clone, Copy)]
pub struct Router<'a> {
    settings: &'a RoutingSettings,
    catalog: &'a Catalog,
    planner_tier: &'a str,
}

impl<'a> Router<'a> {
    /// A router.
    pub fn new(settings: &'a RoutingSettings, catalog: &'a Catalog, planner_tier: &'a str) -> Self {
        Router {
            settings,
            catalog,
            planner_tier,
        }
    }

    /// A decision per plan step (in plan order), plus the synthesis step when `synthesis`.
    pub fn route_plan(
        &self,
        plan: &Plan,
        hints: &TierHints,
        synthesis: bool,
    ) -> Vec<RouteDecision> {
        let outputs: BTreeMap<StepId, u64> = plan
            .steps
            .iter()
            .map(|s| (s.step_id, self.output_tokens(&s.tool_name)))
            .collect();
        let mut decisions: Vec<RouteDecision> = plan
            .steps
            .iter()
            .map(|step| {
                let tokens = self.estimate_input(&step.tool_name, &step.args, &outputs);
                self.route_step(
                    step.step_id,
                    &step.tool_name,
                    tokens,
                    hints.get(&step.step_id),
                )
            })
            .collect();
        if synthesis {
            decisions.push(RouteDecision {
                step_id: synthesis_id(plan),
                tool: SYNTHESIS_TOOL.to_owned(),
                tier: self.planner_tier.to_owned(),
                source: RouteSource::Synthesis,
                estimated_input_tokens: outputs.values().sum(),
                reason: "the synthesis step runs on the planner tier".to_owned(),
            });
        }
        decisions
    }

    /// The decision for one step whose input is estimated at `tokens`.
    pub fn route_step(
        &self,
        step_id: StepId,
        tool: &str,
        tokens: u64,
        hint: Option<&String>,
    ) -> RouteDecision {
        let decide = |tier: &str, source: RouteSource, reason: String| RouteDecision {
            step_id,
            tool: tool.to_owned(),
            tier: tier.to_owned(),
            source,
            estimated_input_tokens: tokens,
            reason,
        };
        let mut ignored = String::new();
        if let Some(hint) = hint {
            if self.settings.hint_tiers.contains(hint) {
                return decide(
                    hint,
                    RouteSource::Hint,
                    format!("the planner asked for tier {hint} (allowed by routing.hint_tiers)"),
                );
            }
            ignored = if self.settings.hint_tiers.is_empty() {
                format!(
                    "; planner hint {hint:?} ignored (hints are off: routing.hint_tiers is empty)"
                )
            } else {
                format!(
                    "; planner hint {hint:?} ignored (routing.hint_tiers allows {})",
                    self.settings.hint_tiers.join(", ")
                )
            };
        }
        for (index, rule) in self.settings.rules.iter().enumerate() {
            if let Some(why) = self.matches(rule, tool, tokens) {
                return decide(
                    &rule.tier,
                    RouteSource::Rule { rule: index + 1 },
                    format!("rule {} ({why}){ignored}", index + 1),
                );
            }
        }
        let tier = self.catalog.get(tool).map_or("", |t| t.tier.as_str());
        let why = if self.settings.rules.is_empty() {
            "the tool's tier (no routing rules)".to_owned()
        } else {
            "the tool's tier (no routing rule matched)".to_owned()
        };
        decide(tier, RouteSource::Tool, format!("{why}{ignored}"))
    }

    /// Why `rule` matches, or `None` when one of its conditions fails.
    fn matches(&self, rule: &RouteRule, tool: &str, tokens: u64) -> Option<String> {
        let mut why = Vec::new();
        if !rule.tools.is_empty() {
            rule.tools.iter().any(|t| t == tool).then_some(())?;
            why.push(format!("tool {tool}"));
        }
        if let Some(category) = &rule.category {
            let members = self.settings.categories.get(category)?;
            members.iter().any(|t| t == tool).then_some(())?;
            why.push(format!("category {category}"));
        }
        if let Some(min) = rule.min_input_tokens {
            (tokens >= min).then_some(())?;
            why.push(format!("~{tokens} input tokens >= {min}"));
        }
        if let Some(max) = rule.max_input_tokens {
            (tokens <= max).then_some(())?;
            why.push(format!("~{tokens} input tokens <= {max}"));
        }
        if why.is_empty() {
            why.push("matches every step".to_owned());
        }
        Some(why.join(", "))
    }

    /// The most tokens a step of `tool` can produce, for the inputs of its dependents.
    fn output_tokens(&self, tool: &str) -> u64 {
        match self.catalog.get(tool).map(|t| &t.kind) {
            Some(ToolKind::Llm(llm)) => u64::from(llm.max_tokens),
            _ => self.settings.http_result_tokens,
        }
    }

    /// Estimated input tokens of a step: its prompt (system and template) and its args, with each
    /// placeholder counted as the referenced step's output cap.
    pub fn estimate_input(
        &self,
        tool: &str,
        args: &serde_json::Map<String, serde_json::Value>,
        outputs: &BTreeMap<StepId, u64>,
    ) -> u64 {
        let per_token = self.settings.chars_per_token.max(1);
        let mut chars: u64 = match self.catalog.get(tool).map(|t| &t.kind) {
            Some(ToolKind::Llm(llm)) => {
                (llm.prompt.chars().count() + llm.system.as_ref().map_or(0, |s| s.chars().count()))
                    as u64
            }
            _ => 0,
        };
        let mut tokens: u64 = 0;
        for value in args.values() {
            visit_strings(value, &mut |text| {
                let mut literal = text.chars().count() as u64;
                for placeholder in placeholders(text) {
                    literal =
                        literal.saturating_sub(placeholder.to_string().chars().count() as u64);
                    tokens += outputs
                        .get(&placeholder.step)
                        .copied()
                        .unwrap_or(self.settings.http_result_tokens);
                }
                chars += literal;
            });
        }
        tokens + chars.div_ceil(per_token)
    }
}

fn visit_strings(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        serde_json::Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        other => f(&other.to_string()),
    }
}

/// Validates a plan given as JSON (steps may carry `tier` hints) and routes it: what
/// `planex route explain` prints.
pub fn explain_plan(
    mut plan: serde_json::Value,
    catalog: &Catalog,
    settings: &RoutingSettings,
    planner_tier: &str,
    synthesis: bool,
) -> Result<Vec<RouteDecision>, PlanError> {
    let hints = split_tier_hints(&mut plan);
    let max_steps = plan
        .get("steps")
        .and_then(|s| s.as_array())
        .map_or(1, |s| s.len().max(1));
    let plan = Plan::from_value(plan, catalog, PlanLimits { max_steps })?;
    Ok(Router::new(settings, catalog, planner_tier).route_plan(&plan, &hints, synthesis))
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
