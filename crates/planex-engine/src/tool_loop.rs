//! Function calling for `llm` tools that list `uses` (docs/ARCHITECTURE.md §3): the step's prompt
//! goes to the tier's model with those tools in the OpenAI `tools` format; the tools it calls run
//! (http or MCP, exactly as plan steps of those tools would, concurrently within a round) and
//! their results go back to it, for at most `max_tool_rounds` rounds; then the model must answer
//! in text (`tool_choice: "none"`).
//!
//! Key decisions: a tool call the model gets wrong (a tool it may not use, arguments that are not
//! a JSON object or break the tool's schema, a tool that fails) is answered with the error as
//! the tool's result, so the model can correct itself, rather than failing the step. Every model
//! round is a call record with its round and latency; every tool that ran is a `tool_call` record
//! (no model cost) with its round and latency, so the task's cost breakdown shows the loop. Once
//! a tool has run, the step is not escalated to another tier: that would run the tools again.

use async_trait::async_trait;
use planex_core::{CallRecord, Catalog, LlmTool, Stage, StepId, ToolSpec, Usage, clip_chars};
use planex_llm::{CallContext, ChatMessage, ChatModel, ChatOutcome, ChatRequest, ToolCall};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest tool result fed back to the model, in characters.
pub const MAX_TOOL_RESULT_CHARS: usize = 16_000;

/// Milliseconds of `elapsed`, saturated.
pub(crate) fn millis(elapsed: Duration) -> Option<u64> {
    Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// The record of a step's model call (and its token metric): round `round` of a tool loop, or
/// `None` for an `llm` tool that uses no tools.
pub(crate) fn step_call(
    model: &dyn ChatModel,
    tool: &ToolSpec,
    step_id: StepId,
    outcome: &ChatOutcome,
    round: Option<u32>,
) -> CallRecord {
    metrics::counter!("executor_token_total", "step_type" => tool.name.clone())
        .increment(outcome.usage.total());
    CallRecord {
        stage: Stage::Step,
        tier: model.tier_name().to_owned(),
        model: model.model_name().to_owned(),
        tool: Some(tool.name.clone()),
        step_id: Some(step_id),
        usage: outcome.usage,
        cost_usd: model.cost(&outcome.usage),
        mark: None,
        round,
        latency_ms: millis(outcome.latency),
        response_id: outcome.response_id.clone(),
    }
}

/// What one tool call the model asked for produced.
struct Answered {
    /// The tool message's text: the result, or `error: …`.
    text: String,
    /// The record of a tool that ran.
    record: Option<CallRecord>,
    attempts: u32,
}

/// What a model round and the tools it called add to a step.
pub(crate) struct RoundTally<'a> {
    /// Attempts of every model call and tool call.
    pub(crate) attempts: &'a mut u32,
    /// Call records, in order.
    pub(crate) calls: &'a mut Vec<CallRecord>,
    /// Set once a tool has run (the step is then not escalated).
    pub(crate) acted: &'a mut bool,
}

/// What the loop needs from the executor running the step: its catalog, and a way to run one
/// tool exactly as a plan step of it would run.
#[async_trait]
pub(crate) trait ToolRunner: Sync {
    /// The catalog now.
    fn catalog_now(&self) -> Arc<Catalog>;

    /// Runs `spec` with final `args`; its result (or why it failed) and the attempts it took.
    async fn run_one(
        &self,
        spec: &ToolSpec,
        args: &serde_json::Map<String, serde_json::Value>,
        step_id: StepId,
        ctx: &CallContext,
    ) -> (Result<serde_json::Value, String>, u32);
}

/// The OpenAI `tools` of `llm.uses`, from their catalog entries.
fn tool_definitions(runner: &dyn ToolRunner, llm: &LlmTool) -> Vec<serde_json::Value> {
    let catalog = runner.catalog_now();
    llm.uses
        .iter()
        .filter_map(|name| catalog.get(name))
        .map(|spec| {
            serde_json::json!({"type": "function", "function": {
                "name": spec.name, "description": spec.description, "parameters": spec.input_schema,
            }})
        })
        .collect()
}

/// Runs `tool`'s conversation with `model` until the model answers in text; returns that
/// answer. A model failure is returned as the failure it is (the caller counts it).
pub(crate) async fn chat_with_tools(
    runner: &dyn ToolRunner,
    model: &dyn ChatModel,
    (tool, llm): (&ToolSpec, &LlmTool),
    request: &ChatRequest,
    step_id: StepId,
    ctx: &CallContext,
    tally: RoundTally<'_>,
) -> Result<Result<ChatOutcome, String>, planex_llm::ChatFailure> {
    let mut request = request
        .clone()
        .with_tools(tool_definitions(runner, llm), None);
    for round in 1..=llm.max_tool_rounds + 1 {
        let last = round > llm.max_tool_rounds;
        if last {
            request.tool_choice = Some(serde_json::json!("none"));
        }
        let outcome = model.chat(&request, ctx).await?;
        *tally.attempts += outcome.attempts;
        tally
            .calls
            .push(step_call(model, tool, step_id, &outcome, Some(round)));
        if outcome.tool_calls.is_empty() {
            return Ok(Ok(outcome));
        }
        if last {
            return Ok(Err(format!(
                "tool {}: the model still called tools ({}) after max_tool_rounds ({}) and being told to answer; raise max_tool_rounds or use a model that follows tool_choice",
                tool.name,
                names(&outcome.tool_calls),
                llm.max_tool_rounds
            )));
        }
        tracing::debug!(tool = %tool.name, round, calls = %names(&outcome.tool_calls), "model called tools");
        let answered = futures::future::join_all(
            outcome
                .tool_calls
                .iter()
                .map(|call| answer_call(runner, call, llm, step_id, ctx, round)),
        )
        .await;
        request.messages.push(ChatMessage::assistant_calls(
            outcome.content.clone(),
            outcome.tool_calls.clone(),
        ));
        for (call, answered) in outcome.tool_calls.iter().zip(answered) {
            *tally.attempts += answered.attempts;
            if let Some(record) = answered.record {
                *tally.acted = true;
                tally.calls.push(record);
            }
            request
                .messages
                .push(ChatMessage::tool_result(&call.id, answered.text));
        }
    }
    // The last round either answered or returned above.
    Ok(Err(format!(
        "tool {}: the tool-calling loop ended without an answer",
        tool.name
    )))
}

/// Runs one tool call the model asked for; its result (or why it could not run) is the text
/// the model gets back.
async fn answer_call(
    runner: &dyn ToolRunner,
    call: &ToolCall,
    llm: &LlmTool,
    step_id: StepId,
    ctx: &CallContext,
    round: u32,
) -> Answered {
    let refused = |text: String| Answered {
        text: format!("error: {text}"),
        record: None,
        attempts: 0,
    };
    if !llm.uses.contains(&call.name) {
        return refused(format!(
            "there is no tool {:?} here; the tools you may call are: {}",
            call.name,
            llm.uses.join(", ")
        ));
    }
    let catalog = runner.catalog_now();
    let Some(spec) = catalog.get(&call.name) else {
        let available: Vec<&str> = llm
            .uses
            .iter()
            .filter(|name| catalog.contains(name))
            .map(String::as_str)
            .collect();
        return refused(format!(
            "tool {:?} is not available now (its MCP server stopped listing it); the tools you may call are: {}",
            call.name,
            available.join(", ")
        ));
    };
    let arguments = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    let args: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(arguments) {
        Ok(args) => args,
        Err(e) => {
            return refused(format!(
                "the arguments of {} are not a JSON object ({e}): {}",
                call.name,
                clip_chars(arguments, 200)
            ));
        }
    };
    if let Err(errors) = catalog.validate_args(&call.name, &args) {
        return refused(format!(
            "the arguments of {} do not match its schema: {}",
            call.name,
            errors.join("; ")
        ));
    }
    let started = Instant::now();
    let (result, attempts) = runner.run_one(spec, &args, step_id, ctx).await;
    let record = CallRecord {
        stage: Stage::ToolCall,
        tier: spec.tier.clone(),
        model: String::new(),
        tool: Some(spec.name.clone()),
        step_id: Some(step_id),
        usage: Usage::default(),
        cost_usd: planex_core::Decimal::ZERO,
        mark: None,
        round: Some(round),
        latency_ms: millis(started.elapsed()),
        response_id: None,
    };
    let text = match result {
        Ok(serde_json::Value::String(text)) => text,
        Ok(value) => value.to_string(),
        Err(error) => format!("error: {error}"),
    };
    Answered {
        text: clip_chars(&text, MAX_TOOL_RESULT_CHARS),
        record: Some(record),
        attempts,
    }
}

fn names(calls: &[ToolCall]) -> String {
    calls
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
