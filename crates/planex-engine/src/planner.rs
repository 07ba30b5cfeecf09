//! The planner call: one request to the planner tier that turns a task into a validated `Plan`.
//!
//! Key decision: planner calls are never retried blindly (DESIGN.md §4). Transport failures are already
//! retried inside the tier client; an answer that is not a valid plan gets exactly one re-plan that
//! carries the validation error, and a second invalid plan fails the task. Structured output
//! (`response_format: json_schema`, tool names as enums) makes a capable server emit the right shape,
//! but validation still runs because not every server honours it.

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
}

impl Default for PlannerSettings {
    fn default() -> Self {
        PlannerSettings {
            max_tokens: 2048,
            temperature: 0.0,
        }
    }
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
         - Use at most {max_steps} steps, and only the tools listed below, with args matching their schema.\n\
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
    let mut messages = vec![
        ChatMessage::system(system_prompt(catalog, limits.max_steps)),
        ChatMessage::user(task),
    ];
    let response_format = serde_json::json!({
        "type": "json_schema",
        "json_schema": {"name": "plan", "strict": true, "schema": catalog.plan_schema(limits.max_steps)},
    });
    let mut calls = Vec::new();
    let mut last_error = None;
    for round in 0..2u32 {
        let request = ChatRequest::new(messages.clone())
            .with_max_tokens(settings.max_tokens)
            .with_temperature(settings.temperature)
            .with_response_format(response_format.clone());
        let outcome = match planner.chat(&request, ctx).await {
            Ok(outcome) => outcome,
            Err(failure) => {
                return Err(PlanningFailed {
                    reason: format!("the planner call failed: {failure}"),
                    plan_error: None,
                    calls,
                });
            }
        };
        metrics::counter!("planner_token_total", "stage" => "plan")
            .increment(outcome.usage.total());
        calls.push(CallRecord {
            stage: Stage::Plan,
            tier: planner.tier_name().to_owned(),
            model: planner.model_name().to_owned(),
            tool: None,
            step_id: None,
            usage: outcome.usage,
            cost_usd: planner.cost(&outcome.usage),
        });
        match Plan::parse(&outcome.content, catalog, limits) {
            Ok(mut plan) => {
                plan.task = task.to_owned();
                return Ok(Planned {
                    plan,
                    calls,
                    replans: round,
                    elapsed: started.elapsed(),
                });
            }
            Err(error) => {
                tracing::warn!(round, %error, "planner returned an invalid plan");
                messages.push(ChatMessage::assistant(outcome.content));
                messages.push(ChatMessage::user(format!(
                    "That plan was rejected: {error}. Answer with a corrected plan (the JSON object only)."
                )));
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
