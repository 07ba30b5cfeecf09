//! The planner call: one request to the planner tier that turns a task into a validated `Plan`.
//!
//! Key decision: planner calls are never retried blindly (docs/ARCHITECTURE.md §4). Transport failures are already
//! retried inside the tier client; an answer that is not a valid plan gets exactly one re-plan that
//! carries the validation error, and a second invalid plan fails the task. Structured output
//! (`response_format: json_schema`, tool names as enums) makes a capable server emit the right shape,
//! but validation still runs because not every server honours it.

use crate::routing::{TierHints, split_tier_hints};
use planex_core::{CallRecord, Catalog, Plan, PlanError, PlanLimits, Stage};
use planex_llm::{CallContext, ChatMessage, ChatModel, ChatRequest};
use std::time::Duration;

/// Settings of the planner call.
#[derive(Debug, Clone)]
pub struct PlannerSettings {
    /// Cap on the planner's answer.
    pub max_tokens: u32,
    /// Sampling temperature (0 for reproducible plans).
    pub temperature: f32,
    /// Tiers the planner may name in a step's optional `tier` field (`routing.hint_tiers`); empty:
    /// the field is not offered (and a plan that has it anyway is invalid).
    pub tier_hints: Vec<String>,
    /// Longest a task may spend planning (planner calls, re-plans and the fit to its budget) before
    /// it fails (`[engine] planning_deadline_secs`); orphan recovery's bound on `planning` builds
    /// on it.
    pub deadline: Duration,
    /// Most characters of tool listing the planner's prompt carries (`[engine]
    /// planner_catalog_chars`): tools past it, in catalog order, are not offered (see
    /// [`fitted_catalog`]).
    pub max_catalog_chars: usize,
    /// Stream the planner's answer and run each step as soon as it and its dependencies are
    /// ready, before the plan is finished (`[engine] stream_plans`; docs/ARCHITECTURE.md §4).
    pub stream: bool,
    /// Rounds of the joiner after the plan's steps ran (`[engine] max_replans`, 0 = none): a
    /// decision call on the planner tier finishes the task or adds steps (`joiner.rs`).
    pub max_replans: u32,
}

impl PlannerSettings {
    /// The default planning deadline.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
    /// The most joiner rounds `max_replans` may ask for.
    pub const MAX_REPLANS: u32 = 3;
    /// The default cap on the planner's tool listing (about 6,000 tokens).
    pub const DEFAULT_CATALOG_CHARS: usize = 24_000;
}

impl Default for PlannerSettings {
    fn default() -> Self {
        PlannerSettings {
            max_tokens: 2048,
            temperature: 0.0,
            tier_hints: Vec::new(),
            deadline: Self::DEFAULT_DEADLINE,
            max_catalog_chars: Self::DEFAULT_CATALOG_CHARS,
            stream: true,
            max_replans: 0,
        }
    }
}

/// The tools the planner is offered: as many as fit in `max_chars` of the prompt's tool listing,
/// in catalog order (at least one), and the names of those left out. Plans are still validated
/// against the whole catalog; the planner's schema only names the tools it was shown.
pub fn fitted_catalog(
    catalog: &Catalog,
    max_chars: usize,
) -> (std::borrow::Cow<'_, Catalog>, Vec<String>) {
    let listing = catalog.prompt_listing();
    if listing.len() <= max_chars {
        return (std::borrow::Cow::Borrowed(catalog), Vec::new());
    }
    let mut used = 0;
    let mut shown = Vec::new();
    let mut left_out = Vec::new();
    // One listing line per tool, in the catalog's order.
    for (spec, line) in catalog.specs().zip(listing.lines()) {
        used += line.len() + 1;
        if used <= max_chars || shown.is_empty() {
            shown.push(spec.name.clone());
        } else {
            left_out.push(spec.name.clone());
        }
    }
    match catalog.subset(&shown) {
        Ok(subset) => (std::borrow::Cow::Owned(subset), left_out),
        Err(_) => (std::borrow::Cow::Borrowed(catalog), Vec::new()),
    }
}

/// Says once per process which tools the planner's listing left out.
fn report_left_out(left_out: &[String], max_chars: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(left_out = %left_out.join(", "), max_chars,
            "the planner's tool listing is full: these tools are not offered to the planner; raise [engine] planner_catalog_chars, or send `tools` per request to choose");
    });
}

/// A plan accepted by validation, with what it cost to get it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The validated plan.
    pub plan: Plan,
    /// Priced planner calls (one, or two after a re-plan).
    pub calls: Vec<CallRecord>,
    /// Re-plans needed (0 or 1).
    pub replans: u32,
    /// `tier` hints the planner wrote on steps (only when `tier_hints` offers them).
    pub tier_hints: TierHints,
    /// Time spent planning.
    pub elapsed: Duration,
}

/// Planning failed; the calls made so far are still charged to the task.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct PlanningFailed {
    /// Why, for people (names the validation rule or the transport error).
    pub reason: String,
    /// The validation error of the last plan, when the failure was an invalid plan.
    pub plan_error: Option<PlanError>,
    /// Priced calls made before failing.
    pub calls: Vec<CallRecord>,
}

/// The system prompt: rules of the plan format plus the compact tool catalog.
pub fn system_prompt(catalog: &Catalog, max_steps: usize) -> String {
    format!(
        "You are the planner of an agent. Break the user's task into a plan that small models can execute \
         step by step. Answer with one JSON object {{\"steps\": [...]}} and nothing else. Each step is \
         {{\"step_id\": N, \"tool_name\": \"...\", \"args\": {{...}}, \"depends_on\": [ids]}}.\n\
         Rules:\n\
         - step_id values are 1, 2, 3, ... in order; a step may depend only on earlier steps.\n\
         - Use at most {max_steps} steps, and only the tools listed below, with args matching their schema. \
         The final answer is composed from the steps' results after the plan runs: it is not a step and \
         does not count toward the {max_steps}.\n\
         - Steps that do not need each other's results must not depend on each other: they run in parallel.\n\
         - To use a dependency's result inside a string argument write {{step_N_result}} (or \
         {{step_N_result.field}} for a field of a JSON result); N must be listed in depends_on.\n\
         Tools:\n{}",
        catalog.prompt_listing()
    )
}

/// Calls the planner and validates its answer, re-planning once with the error if it is invalid.
pub async fn plan_task(
    planner: &dyn ChatModel,
    catalog: &Catalog,
    task: &str,
    limits: PlanLimits,
    settings: &PlannerSettings,
    ctx: &CallContext,
) -> Result<Planned, PlanningFailed> {
    let started = std::time::Instant::now();
    let (mut messages, response_format) = planner_request(catalog, task, limits, settings);
    let mut calls = Vec::new();
    let mut last_error = None;
    for round in 0..2u32 {
        let request = planner_chat(&messages, &response_format, settings);
        let outcome = match planner.chat(&request, ctx).await {
            Ok(outcome) => outcome,
            Err(failure) => {
                return Err(PlanningFailed {
                    reason: format!(
                        "the planner call failed: {}",
                        planex_core::cause::ErrorChain(&failure)
                    ),
                    plan_error: None,
                    calls,
                });
            }
        };
        calls.push(plan_call_record(planner, &outcome, Stage::Plan));
        let (parsed, tier_hints) = parse_plan(&outcome.content, catalog, limits, settings);
        match parsed {
            Ok(mut plan) => {
                plan.task = task.to_owned();
                return Ok(Planned {
                    plan,
                    calls,
                    replans: round,
                    elapsed: started.elapsed(),
                    tier_hints,
                });
            }
            Err(error) => {
                tracing::warn!(round, %error, "planner returned an invalid plan");
                push_rejection(&mut messages, outcome.content, &error);
                last_error = Some(error);
            }
        }
    }
    let reason = match &last_error {
        Some(error) => format!("the planner returned an invalid plan twice; last error: {error}"),
        None => "the planner returned no plan".to_owned(),
    };
    Err(PlanningFailed {
        reason,
        plan_error: last_error,
        calls,
    })
}

/// The planner's conversation (system prompt with the tools that fit its listing, the task) and
/// the structured-output `response_format` of its plan schema.
pub(crate) fn planner_request(
    catalog: &Catalog,
    task: &str,
    limits: PlanLimits,
    settings: &PlannerSettings,
) -> (Vec<ChatMessage>, serde_json::Value) {
    let (shown, left_out) = fitted_catalog(catalog, settings.max_catalog_chars);
    if !left_out.is_empty() {
        report_left_out(&left_out, settings.max_catalog_chars);
    }
    let mut system = system_prompt(&shown, limits.max_steps);
    let mut schema = shown.plan_schema(limits.max_steps);
    if !settings.tier_hints.is_empty() {
        offer_tier_hints(&mut system, &mut schema, &settings.tier_hints);
    }
    let messages = vec![ChatMessage::system(system), ChatMessage::user(task)];
    let response_format = serde_json::json!({
        "type": "json_schema",
        "json_schema": {"name": "plan", "strict": true, "schema": schema},
    });
    (messages, response_format)
}

/// The planner's one chat request for `messages`.
pub(crate) fn planner_chat(
    messages: &[ChatMessage],
    response_format: &serde_json::Value,
    settings: &PlannerSettings,
) -> ChatRequest {
    ChatRequest::new(messages.to_vec())
        .with_max_tokens(settings.max_tokens)
        .with_temperature(settings.temperature)
        .with_response_format(response_format.clone())
}

/// The priced record of a planner-tier call of `stage` (the plan, or the joiner's decision),
/// counted in `planner_token_total`.
pub(crate) fn plan_call_record(
    planner: &dyn ChatModel,
    outcome: &planex_llm::ChatOutcome,
    stage: Stage,
) -> CallRecord {
    metrics::counter!("planner_token_total", "stage" => stage.to_string())
        .increment(outcome.usage.total());
    CallRecord {
        stage,
        tier: planner.tier_name().to_owned(),
        model: planner.model_name().to_owned(),
        tool: None,
        step_id: None,
        usage: outcome.usage,
        cost_usd: planner.cost(&outcome.usage),
        mark: None,
        round: None,
        latency_ms: crate::tool_loop::millis(outcome.latency),
        response_id: outcome.response_id.clone(),
    }
}

/// Parses and validates a planner answer (with its `tier` hints when they are offered).
pub(crate) fn parse_plan(
    text: &str,
    catalog: &Catalog,
    limits: PlanLimits,
    settings: &PlannerSettings,
) -> (Result<Plan, PlanError>, TierHints) {
    if settings.tier_hints.is_empty() {
        (Plan::parse(text, catalog, limits), TierHints::new())
    } else {
        parse_with_hints(text, catalog, limits)
    }
}

/// Adds the planner's rejected answer and the reason to the conversation, asking for a
/// corrected plan (the one re-plan).
pub(crate) fn push_rejection(messages: &mut Vec<ChatMessage>, answer: String, error: &PlanError) {
    messages.push(ChatMessage::assistant(answer));
    messages.push(ChatMessage::user(format!(
        "That plan was rejected: {error}. Answer with a corrected plan (the JSON object only)."
    )));
}

/// Tells the planner it may put `"tier": …` on a step, in the prompt and in the plan schema.
fn offer_tier_hints(system: &mut String, schema: &mut serde_json::Value, tiers: &[String]) {
    system.push_str(&format!(
        "\nA step that needs a stronger model than usual may add \"tier\": one of {}.",
        tiers.join(", ")
    ));
    let hint = serde_json::json!({"type": "string", "enum": tiers});
    if let Some(options) = schema
        .pointer_mut("/properties/steps/items/anyOf")
        .and_then(|v| v.as_array_mut())
    {
        for option in options {
            if let Some(props) = option.get_mut("properties").and_then(|p| p.as_object_mut()) {
                props.insert("tier".to_owned(), hint.clone());
            }
        }
    }
}

/// Parses a plan whose steps may carry `tier` hints: the hints are split off, then the plan is
/// validated as usual. Text that is not JSON falls through to `Plan::parse` for its error.
fn parse_with_hints(
    text: &str,
    catalog: &Catalog,
    limits: PlanLimits,
) -> (Result<Plan, PlanError>, TierHints) {
    match serde_json::from_str::<serde_json::Value>(planex_core::strip_fence(text)) {
        Ok(mut value) => {
            let hints = split_tier_hints(&mut value);
            (Plan::from_value(value, catalog, limits), hints)
        }
        Err(_) => (Plan::parse(text, catalog, limits), TierHints::new()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use planex_core::ToolSpec;

    #[test]
    fn the_prompt_states_the_step_limit_and_that_the_answer_is_not_a_step() {
        let catalog =
            Catalog::new(vec![ToolSpec::one_arg_llm("lookup", "topic", "small", 64)]).unwrap();
        let prompt = system_prompt(&catalog, 8);
        assert!(prompt.contains("Use at most 8 steps"), "{prompt}");
        assert!(
            prompt.contains("not a step and does not count toward the 8"),
            "{prompt}"
        );
    }

    #[test]
    fn a_long_catalog_is_cut_to_the_listing_budget_and_says_what_is_left_out() {
        let tools: Vec<ToolSpec> = (0..40)
            .map(|i| ToolSpec::one_arg_llm(&format!("tool_{i:02}"), "text", "small", 64))
            .collect();
        let catalog = Catalog::new(tools).unwrap();
        let (all, none) = fitted_catalog(&catalog, 1_000_000);
        assert_eq!((all.len(), none.len()), (40, 0));
        let line = catalog.prompt_listing().lines().next().unwrap().len() + 1;
        let (shown, left_out) = fitted_catalog(&catalog, line * 10);
        assert_eq!(shown.len(), 10);
        assert_eq!(left_out.len(), 30);
        assert_eq!(
            left_out[0], "tool_10",
            "catalog order: the first ones are kept"
        );
        let schema = shown.plan_schema(8).to_string();
        assert!(
            schema.contains("tool_09") && !schema.contains("tool_10"),
            "{schema}"
        );
        let (one, _) = fitted_catalog(&catalog, 1);
        assert_eq!(one.len(), 1, "at least one tool is offered");
    }
}
