//! Runs one leased step: fills in placeholders, runs its tool (`llm` on its tier, `http` against its
//! configured base URL, or the built-in synthesis), escalates once on failure, and prices every call.
//!
//! Key decision: the executor never touches the store. It turns a `StepLease` into a `StepOutcome`,
//! so the same code serves in-process workers, remote worker processes and the `/v1/execute` API.

use crate::Models;
use crate::budget::MeteredModel;
use crate::http_tool;
use crate::synthesis::{
    MIN_SYNTHESIS_INPUT_CHARS, SYNTHESIS_TOOL, answer_request, synthesis_prompt,
};
use planex_core::ANSWER_ARG;
use planex_core::{CallRecord, Catalog, LlmTool, Stage, StepId, ToolKind, ToolSpec};
use planex_core::{render, substitute_args};
use planex_llm::{CallContext, ChatFailure, ChatMessage, ChatModel, ChatRequest, RetryPolicy};
use planex_store::{StepLease, StepOutcome};
use std::sync::Arc;
use tracing::Instrument;

const DEFAULT_SYSTEM: &str = "You execute one step of a larger plan. Do exactly what the step asks, using only the given input. Be concise.";

/// Everything a step needs besides its lease.
#[derive(Clone)]
pub struct Executor {
    /// The tool catalog the plans were validated against.
    pub catalog: planex_core::LiveCatalog,
    /// The model tiers.
    pub models: Models,
    /// HTTP clients of `http` tools (guarded against internal addresses unless a tool allows them).
    pub http: crate::http_guard::HttpClients,
    /// Retry policy of `http` tools (model calls use their tier's policy).
    pub http_retry: RetryPolicy,
    /// Longest dependency result passed to the synthesis prompt, in characters.
    pub synthesis_input_chars: usize,
    /// Budget guard whose meter every model call of a plan step draws from (`budget/meter.rs`).
    pub budget: Option<Arc<crate::BudgetGuard>>,
    /// The MCP servers `mcp` tools are called on (none connected: `McpServers::none()`).
    pub mcp: Arc<crate::mcp::McpServers>,
}

/// The result of one tool call made outside a plan ([`Executor::call_tool`]).
#[derive(Debug, Clone)]
pub struct ToolCallOutcome {
    /// The tool's result, or why it failed (for people: names the tool and the cause).
    pub result: Result<serde_json::Value, String>,
    /// Attempts made over every tier tried (at least 1).
    pub attempts: u32,
    /// Priced model calls made (none for `http` tools).
    pub calls: Vec<CallRecord>,
}

/// Attempts and priced calls accumulated over a step's tries (first tier, then escalation).
#[derive(Default)]
struct Tally {
    attempts: u32,
    calls: Vec<CallRecord>,
    /// The task whose budget an escalation is booked against (plan steps only).
    task: Option<planex_core::TaskId>,
    /// The tier routing chose for a plan step (`routing.rs`); the tool's tier when absent.
    tier: Option<String>,
    /// The `CLAIM` part of the step's call ids (`budget::claim_tag`; plan steps only).
    claim: String,
    /// Metered models handed out for this step so far (each names its calls apart).
    metered: u32,
    /// A call was refused by the budget or a cancel: nothing more is tried.
    stopped: bool,
    /// A tool the step's model called has run (function calling): escalating would run it again.
    acted: bool,
    /// The catalog the step was started with: every later lookup of the step uses it.
    catalog: Option<Arc<Catalog>>,
    /// What each failed attempt said, in order (every tier tried), for the dead letter.
    errors: Vec<String>,
}

impl Tally {
    /// Counts a failed call's attempts and returns its error text; a budget refusal or a cancel
    /// stops the step (no escalation).
    fn failed(&mut self, failure: &ChatFailure) -> String {
        self.attempts += failure.attempts;
        let tier = &failure.tier;
        self.errors
            .extend(failure.earlier.iter().map(|e| format!("tier {tier}, {e}")));
        if matches!(
            failure.error,
            planex_llm::LlmError::BudgetExhausted { .. } | planex_llm::LlmError::Cancelled
        ) {
            self.stopped = true;
        }
        let text = planex_core::cause::chain_text(failure);
        self.errors.push(text.clone());
        text
    }
}

impl Executor {
    /// Runs the step and reports its outcome; never panics, never returns early without an outcome.
    pub async fn run(&self, lease: &StepLease, ctx: &CallContext) -> StepOutcome {
        let mut tally = Tally {
            task: Some(lease.task_id.clone()),
            tier: Some(lease.spec.tier.clone()),
            claim: crate::budget::claim_tag(lease),
            ..Tally::default()
        };
        let left_behind = match &self.budget {
            Some(guard) => guard.calls_left_behind(lease, &self.models).await,
            None => Vec::new(),
        };
        let span = tracing::info_span!("execute_tool", otel.name = %format!("execute_tool {}", lease.spec.step.tool_name),
            gen_ai.operation.name = "execute_tool", gen_ai.tool.name = %lease.spec.step.tool_name,
            planex.task_id = %lease.task_id, planex.step_id = %lease.spec.step.step_id, planex.tier = %lease.spec.tier);
        // The step joins its task's trace, whichever process admitted the task.
        if let Some(parent) = &lease.trace_parent {
            planex_llm::trace_context::set_remote_parent(&span, parent, None);
        }
        let result = if lease.spec.step.tool_name == SYNTHESIS_TOOL {
            self.synthesize(lease, ctx, &mut tally)
                .instrument(span)
                .await
        } else {
            self.run_tool(lease, ctx, &mut tally).instrument(span).await
        };
        let attempts = tally.attempts.max(1);
        if lease.resumed {
            for call in &mut tally.calls {
                call.mark = Some(planex_core::CallMark::Redelivered);
            }
        }
        tally.calls.splice(0..0, left_behind);
        match result {
            Ok(result) => StepOutcome::Succeeded {
                result,
                attempts,
                calls: tally.calls,
            },
            Err(error) => {
                // Failures the step's error already quotes (its last one, and the first tier's
                // after an escalation) are not listed again.
                tally
                    .errors
                    .retain(|earlier| !error.contains(earlier.as_str()));
                StepOutcome::Failed {
                    error,
                    attempts,
                    calls: tally.calls,
                    attempt_errors: tally.errors,
                }
            }
        }
    }

    /// Runs tool `tool_name` once with literal `args` (no placeholders are substituted), outside
    /// any plan: the ReAct baseline's actions (`planex-compare`) and single-step APIs. The args are
    /// validated against the tool's input schema first; the tool then runs exactly as a plan step
    /// would (its tier, retries, escalation, output schema, pricing).
    pub async fn call_tool(
        &self,
        tool_name: &str,
        args: &serde_json::Map<String, serde_json::Value>,
        step_id: StepId,
        ctx: &CallContext,
    ) -> ToolCallOutcome {
        let catalog = self.catalog.current();
        let mut tally = Tally {
            catalog: Some(catalog.clone()),
            ..Tally::default()
        };
        let result = match tool(&catalog, tool_name) {
            Ok(tool) => match catalog.validate_args(tool_name, args) {
                Ok(()) => self.dispatch(tool, args, step_id, ctx, &mut tally).await,
                Err(errors) => Err(format!(
                    "args of tool {tool_name} do not match its input schema: {}",
                    errors.join("; ")
                )),
            },
            Err(error) => Err(error),
        };
        ToolCallOutcome {
            result,
            attempts: tally.attempts.max(1),
            calls: tally.calls,
        }
    }

    /// `model`, metered against the step's task when budgets are on (plan steps only). Its calls
    /// are named `STEP/CLAIM/N/TIER/K`, so a later claim finds what this one left (`budget/left_behind.rs`).
    fn metered(
        &self,
        model: &Arc<dyn ChatModel>,
        step_id: StepId,
        tally: &mut Tally,
    ) -> Arc<dyn ChatModel> {
        let (Some(guard), Some(task)) = (&self.budget, &tally.task) else {
            return model.clone();
        };
        tally.metered += 1;
        let prefix = format!(
            "{step_id}/{}/{}/{}/",
            tally.claim,
            tally.metered,
            model.tier_name()
        );
        Arc::new(MeteredModel::new(
            model.clone(),
            guard.clone(),
            task.clone(),
            prefix,
        ))
    }

    async fn run_tool(
        &self,
        lease: &StepLease,
        ctx: &CallContext,
        tally: &mut Tally,
    ) -> Result<serde_json::Value, String> {
        let catalog = self.catalog.current();
        tally.catalog = Some(catalog.clone());
        let tool = tool(&catalog, &lease.spec.step.tool_name)?;
        let args = substitute_args(&lease.spec.step.args, &lease.dep_results)
            .map_err(|e| e.to_string())?;
        self.dispatch(tool, &args, lease.spec.step.step_id, ctx, tally)
            .await
    }

    /// Runs one tool with final args: `llm` on its tier (with escalation), `http` to its base URL,
    /// `mcp` as a `tools/call` on its server.
    async fn dispatch(
        &self,
        tool: &ToolSpec,
        args: &serde_json::Map<String, serde_json::Value>,
        step_id: StepId,
        ctx: &CallContext,
        tally: &mut Tally,
    ) -> Result<serde_json::Value, String> {
        let started = std::time::Instant::now();
        let result = match &tool.kind {
            ToolKind::Llm(llm) => return self.run_llm(tool, llm, args, step_id, ctx, tally).await,
            ToolKind::Http(http) => {
                let (result, attempts) = http_tool::call(
                    &self.http,
                    http,
                    args,
                    &self.http_retry,
                    step_id,
                    ctx,
                    &mut tally.errors,
                )
                .await;
                tally.attempts += attempts;
                result
            }
            ToolKind::Mcp(mcp) => {
                let span = tracing::info_span!("tool_call", otel.name = %format!("tools/call {}", mcp.tool),
                    gen_ai.tool.name = %tool.name, planex.mcp_server = %mcp.server);
                match self
                    .mcp
                    .call(mcp, args, &self.http_retry)
                    .instrument(span)
                    .await
                {
                    Ok((value, attempts)) => {
                        tally.attempts += attempts;
                        // A server's declared outputSchema binds its results.
                        snapshot(&self.catalog, tally)
                            .validate_output(&tool.name, &value)
                            .map(|()| value)
                            .map_err(|errors| {
                                format!(
                                    "MCP tool {}/{} returned a result that does not match its output schema: {}",
                                    mcp.server,
                                    mcp.tool,
                                    errors.join("; ")
                                )
                            })
                    }
                    Err((error, attempts)) => {
                        tally.attempts += attempts;
                        Err(error)
                    }
                }
            }
        };
        // Calls of tools that are not models (`http`, `mcp`); model calls have their own metrics.
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("tool_calls_total", "tool" => tool.name.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("tool_call_seconds", "tool" => tool.name.clone())
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn run_llm(
        &self,
        tool: &ToolSpec,
        llm: &LlmTool,
        args: &serde_json::Map<String, serde_json::Value>,
        step_id: StepId,
        ctx: &CallContext,
        tally: &mut Tally,
    ) -> Result<serde_json::Value, String> {
        let prompt = render(&llm.prompt, args, str::to_owned).map_err(|e| e.to_string())?;
        let system = llm
            .system
            .clone()
            .unwrap_or_else(|| DEFAULT_SYSTEM.to_owned());
        let mut request =
            ChatRequest::new(vec![ChatMessage::system(system), ChatMessage::user(prompt)])
                .with_max_tokens(llm.max_tokens);
        if let Some(schema) = &tool.output_schema {
            request = request.with_response_format(serde_json::json!({
                "type": "json_schema",
                "json_schema": {"name": tool.name, "strict": true, "schema": schema},
            }));
        }
        let tier = tally.tier.clone().unwrap_or_else(|| tool.tier.clone());
        let model = self.models.get(&tier).map_err(|e| e.to_string())?;
        let model = self.metered(model, step_id, tally);
        let first = self
            .try_llm(model.as_ref(), tool, &request, step_id, ctx, tally)
            .await;
        let Err(first_error) = first else {
            return first;
        };
        let Some(next) = model.escalate_to().map(str::to_owned) else {
            return Err(first_error);
        };
        if tally.stopped {
            return Err(format!("{first_error}; not escalated to tier {next}"));
        }
        if tally.acted {
            return Err(format!(
                "{first_error}; not escalated to tier {next}: the tools the model called have run, and escalating would run them again"
            ));
        }
        let escalated = self
            .models
            .get(&next)
            .map_err(|e| format!("{first_error}; escalation failed: {e}"))?;
        let escalated = self.metered(escalated, step_id, tally);
        metrics::counter!("step_escalations_total", "from" => tier.clone(), "to" => next.to_owned())
            .increment(1);
        tracing::info!(tool = %tool.name, from = %tier, to = %next, "escalating step");
        self.try_llm(escalated.as_ref(), tool, &request, step_id, ctx, tally)
            .await
            .map_err(|second| format!("{first_error}; after escalation to tier {next}: {second}"))
    }

    /// One try of an `llm` tool on one tier (the tier client retries transport errors inside).
    async fn try_llm(
        &self,
        model: &dyn ChatModel,
        tool: &ToolSpec,
        request: &ChatRequest,
        step_id: StepId,
        ctx: &CallContext,
        tally: &mut Tally,
    ) -> Result<serde_json::Value, String> {
        let outcome = match &tool.kind {
            ToolKind::Llm(llm) if !llm.uses.is_empty() => {
                let rounds = crate::tool_loop::RoundTally {
                    attempts: &mut tally.attempts,
                    calls: &mut tally.calls,
                    acted: &mut tally.acted,
                };
                match crate::tool_loop::chat_with_tools(
                    self,
                    model,
                    (tool, llm),
                    request,
                    step_id,
                    ctx,
                    rounds,
                )
                .await
                {
                    Ok(answer) => answer?,
                    Err(failure) => return Err(tally.failed(&failure)),
                }
            }
            _ => {
                let outcome = model
                    .chat(request, ctx)
                    .await
                    .map_err(|failure: ChatFailure| tally.failed(&failure))?;
                tally.attempts += outcome.attempts;
                let record = crate::tool_loop::step_call(model, tool, step_id, &outcome, None);
                tally.calls.push(record);
                outcome
            }
        };
        if tool.output_schema.is_none() {
            return Ok(serde_json::Value::String(outcome.content));
        }
        let value: serde_json::Value = serde_json::from_str(outcome.content.trim()).map_err(|e| {
            format!("tool {} must return JSON matching its output schema, but the answer is not JSON: {e}", tool.name)
        })?;
        snapshot(&self.catalog, tally)
            .validate_output(&tool.name, &value)
            .map_err(|errors| {
                format!(
                    "tool {} answer does not match its output schema: {}",
                    tool.name,
                    errors.join("; ")
                )
            })?;
        Ok(value)
    }

    async fn synthesize(
        &self,
        lease: &StepLease,
        ctx: &CallContext,
        tally: &mut Tally,
    ) -> Result<serde_json::Value, String> {
        let model = self
            .models
            .get(&lease.spec.tier)
            .map_err(|e| e.to_string())?;
        let model = self.metered(model, lease.spec.step.step_id, tally);
        let options: planex_core::AnswerOptions = match lease.spec.step.args.get(ANSWER_ARG) {
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| format!("the task's answer options cannot be read: {e}"))?,
            None => planex_core::AnswerOptions::default(),
        };
        let format = options.format().map_err(|e| e.to_string())?;
        // Inputs are clipped further when the call does not fit what is left of the task's
        // budget: a shorter answer from clipped results beats no answer.
        let mut clip = self.synthesis_input_chars;
        let outcome = loop {
            let request = answer_request(&options, &format, synthesis_prompt(lease, clip));
            match model.chat(&request, ctx).await {
                Ok(outcome) => break outcome,
                Err(failure)
                    if matches!(failure.error, planex_llm::LlmError::BudgetExhausted { .. })
                        && clip > MIN_SYNTHESIS_INPUT_CHARS =>
                {
                    clip = (clip / 4).max(MIN_SYNTHESIS_INPUT_CHARS);
                    tracing::info!(task = %lease.task_id, clip, "synthesis inputs clipped to fit the task's budget");
                }
                Err(failure) => return Err(tally.failed(&failure)),
            }
        };
        tally.attempts += outcome.attempts;
        metrics::counter!("planner_token_total", "stage" => "synthesis")
            .increment(outcome.usage.total());
        tally.calls.push(CallRecord {
            stage: Stage::Synthesis,
            tier: model.tier_name().to_owned(),
            model: model.model_name().to_owned(),
            tool: None,
            step_id: Some(lease.spec.step.step_id),
            usage: outcome.usage,
            cost_usd: model.cost(&outcome.usage),
            mark: None,
            round: None,
            latency_ms: crate::tool_loop::millis(outcome.latency),
            response_id: outcome.response_id.clone(),
        });
        format.validate(&outcome.content)?;
        Ok(serde_json::Value::String(outcome.content))
    }
}

#[async_trait::async_trait]
impl crate::tool_loop::ToolRunner for Executor {
    fn catalog_now(&self) -> Arc<Catalog> {
        self.catalog.current()
    }

    async fn run_one(
        &self,
        spec: &ToolSpec,
        args: &serde_json::Map<String, serde_json::Value>,
        step_id: StepId,
        ctx: &CallContext,
    ) -> (Result<serde_json::Value, String>, u32) {
        let mut tally = Tally {
            catalog: Some(self.catalog.current()),
            ..Tally::default()
        };
        let result = self.dispatch(spec, args, step_id, ctx, &mut tally).await;
        (result, tally.attempts)
    }
}

/// The catalog the step of `tally` started with (the live one's current value if none was kept).
fn snapshot(live: &planex_core::LiveCatalog, tally: &Tally) -> Arc<Catalog> {
    tally.catalog.clone().unwrap_or_else(|| live.current())
}

/// Tool `name` of `catalog`, or why it is missing.
fn tool<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a ToolSpec, String> {
    catalog.get(name).ok_or_else(|| {
        format!(
            "tool {name:?} is not in this worker's catalog (known: {}); deploy the same tool config to every process",
            catalog.names().join(", ")
        )
    })
}
