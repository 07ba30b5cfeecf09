//! The ReAct baseline: the same task, tools and tiers run as a thought → action → observation loop
//! on the planner tier, so users can measure what plan-and-execute saves on their own workload
//! (`planex compare`).
//!
//! Each turn sends the *whole* history (system prompt, task, every earlier action and observation) to
//! the planner tier and asks, with structured output (`response_format` json_schema named
//! `react_step`), for one `{"thought", "action": {"tool_name", "args"}}` object; the action runs and
//! its result comes back as the next observation, until the model answers with the reserved action
//! `final_answer` or the step limit is reached.
//!
//! Key decisions:
//! - Actions run through [`Executor::call_tool`], the code that runs plan steps: the same tiers,
//!   retries, escalation, output schemas and pricing. An `llm` tool therefore runs on its own
//!   (cheap) tier here too, which makes this a *conservative* baseline: the savings measured against
//!   it come only from planning once with a flat context instead of re-reading a growing history.
//! - Bad turns (not JSON, unknown tool, invalid args) and failed tools become observations the model
//!   can react to, as in any ReAct agent; only a failed model call (after the tier's retries) ends
//!   the run. Every turn counts towards the limit, so the loop is bounded by `max_actions + 1` calls.
//! - Call records reuse the plan-and-execute stages so one cost table fits both: a turn that asks for
//!   an action is `plan`, the turn that answers is `synthesis`, tool calls are `step`.

use crate::CompareError;
use planex_core::{CallRecord, CostBreakdown, Stage, StepId, value_text};
use planex_engine::{Engine, Executor};
use planex_llm::{CallContext, ChatMessage, ChatRequest};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The reserved action name a ReAct turn uses to give the final answer.
pub const FINAL_ACTION: &str = "final_answer";

/// The `json_schema` name of a ReAct turn's structured output (the simulator keys its role on it).
pub const REACT_SCHEMA_NAME: &str = "react_step";

/// Settings of the ReAct loop.
#[derive(Debug, Clone)]
pub struct ReactSettings {
    /// Most tool actions; the loop makes at most `max_actions + 1` model calls.
    pub max_actions: usize,
    /// Cap on each turn's answer in tokens.
    pub max_tokens: u32,
    /// Sampling temperature (0 for reproducible runs).
    pub temperature: f32,
    /// Longest observation put into the history, in characters (as for the synthesis prompt).
    pub observation_chars: usize,
}

impl Default for ReactSettings {
    fn default() -> Self {
        ReactSettings {
            max_actions: 20,
            max_tokens: 2048,
            temperature: 0.0,
            observation_chars: 4000,
        }
    }
}

/// How a ReAct run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactStatus {
    /// The model gave a final answer.
    Answered,
    /// The step limit was reached without a final answer.
    StepLimit,
    /// A model call failed after its retries.
    Failed,
}

impl std::fmt::Display for ReactStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReactStatus::Answered => "answered",
            ReactStatus::StepLimit => "step_limit",
            ReactStatus::Failed => "failed",
        })
    }
}

/// One executed action and what it observed.
#[derive(Debug, Clone, Serialize)]
pub struct ReactAction {
    /// The model's reasoning for this action.
    pub thought: String,
    /// The tool it called.
    pub tool_name: String,
    /// The args it passed.
    pub args: Value,
    /// The observation fed back (the tool's result, or `Error: …`).
    pub observation: String,
    /// Whether the tool succeeded.
    pub succeeded: bool,
}

/// The outcome of one ReAct run.
#[derive(Debug, Clone, Serialize)]
pub struct ReactRun {
    /// How it ended.
    pub status: ReactStatus,
    /// The final answer, when the model gave one.
    pub answer: Option<String>,
    /// Executed actions, in order.
    pub actions: Vec<ReactAction>,
    /// Every priced model call: the turns on the planner tier and the tools' calls.
    pub calls: Vec<CallRecord>,
    /// Why the run did not answer (step limit or the failed call).
    pub error: Option<String>,
    /// Wall time of the whole loop.
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl ReactRun {
    /// The run's cost by stage, tier and tool.
    pub fn cost(&self) -> CostBreakdown {
        CostBreakdown::from_records(&self.calls)
    }
}

/// A parsed turn of the model.
enum Turn {
    Act {
        thought: String,
        tool_name: String,
        args: Map<String, Value>,
    },
    Final {
        answer: String,
    },
}

/// Runs tasks as ReAct loops on the planner tier with the engine's tools.
pub struct ReactRunner {
    executor: Arc<Executor>,
    planner_tier: String,
    settings: ReactSettings,
    system: String,
    response_format: Value,
}

impl ReactRunner {
    /// A runner over `executor`'s tools and tiers, thinking on `planner_tier`.
    ///
    /// # Errors
    /// The tier does not exist ([`CompareError::Engine`]), or a tool is named like the reserved
    /// final action ([`CompareError::ReservedToolName`]).
    pub fn new(
        executor: Arc<Executor>,
        planner_tier: &str,
        settings: ReactSettings,
    ) -> Result<Self, CompareError> {
        executor
            .models
            .get(planner_tier)
            .map_err(|source| CompareError::Engine {
                what: "the ReAct baseline's planner tier",
                source,
            })?;
        if executor.catalog.current().contains(FINAL_ACTION) {
            return Err(CompareError::ReservedToolName { name: FINAL_ACTION });
        }
        let system = system_prompt(&executor, settings.max_actions);
        let response_format = json!({
            "type": "json_schema",
            "json_schema": {"name": REACT_SCHEMA_NAME, "strict": true, "schema": turn_schema(&executor)},
        });
        Ok(ReactRunner {
            executor,
            planner_tier: planner_tier.to_owned(),
            settings,
            system,
            response_format,
        })
    }

    /// A runner with the engine's executor and planner tier.
    ///
    /// # Errors
    /// As [`ReactRunner::new`].
    pub fn for_engine(engine: &Engine, settings: ReactSettings) -> Result<Self, CompareError> {
        Self::new(
            engine.executor().clone(),
            &engine.settings().planner_tier,
            settings,
        )
    }

    /// The settings.
    pub fn settings(&self) -> &ReactSettings {
        &self.settings
    }

    /// Runs `task` until a final answer, the step limit, or a failed model call. Never panics.
    pub async fn run(&self, task: &str, ctx: &CallContext) -> ReactRun {
        let started = Instant::now();
        let mut run = ReactRun {
            status: ReactStatus::StepLimit,
            answer: None,
            actions: Vec::new(),
            calls: Vec::new(),
            error: None,
            elapsed: Duration::ZERO,
        };
        self.drive(task.trim(), ctx, &mut run).await;
        run.elapsed = started.elapsed();
        run
    }

    async fn drive(&self, task: &str, ctx: &CallContext, run: &mut ReactRun) {
        let planner = match self.executor.models.get(&self.planner_tier) {
            Ok(model) => model.clone(),
            Err(error) => return fail(run, error.to_string()),
        };
        let mut messages = vec![
            ChatMessage::system(self.system.clone()),
            ChatMessage::user(task),
        ];
        let limit = self.settings.max_actions;
        for turn_index in 0..=limit {
            let request = ChatRequest::new(messages.clone())
                .with_max_tokens(self.settings.max_tokens)
                .with_temperature(self.settings.temperature)
                .with_response_format(self.response_format.clone());
            let outcome = match planner.chat(&request, ctx).await {
                Ok(outcome) => outcome,
                Err(failure) => {
                    return fail(
                        run,
                        format!(
                            "ReAct turn {} on tier {} failed: {}",
                            turn_index + 1,
                            self.planner_tier,
                            planex_core::cause::ErrorChain(&failure)
                        ),
                    );
                }
            };
            let turn = parse_turn(&outcome.content);
            run.calls.push(CallRecord {
                stage: match turn {
                    Ok(Turn::Final { .. }) => Stage::Synthesis,
                    _ => Stage::Plan,
                },
                tier: planner.tier_name().to_owned(),
                model: planner.model_name().to_owned(),
                tool: None,
                step_id: None,
                usage: outcome.usage,
                cost_usd: planner.cost(&outcome.usage),
                mark: None,
                round: None,
                latency_ms: None,
                response_id: outcome.response_id.clone(),
            });
            let observation = match turn {
                Ok(Turn::Final { answer }) => {
                    run.status = ReactStatus::Answered;
                    run.answer = Some(answer);
                    return;
                }
                Ok(Turn::Act { .. }) if run.actions.len() >= limit => break,
                Ok(Turn::Act {
                    thought,
                    tool_name,
                    args,
                }) => self.act(thought, tool_name, args, ctx, run).await,
                Err(error) => format!(
                    "Error: your answer is not a valid action ({error}). Answer with the JSON object only."
                ),
            };
            messages.push(ChatMessage::assistant(outcome.content));
            messages.push(ChatMessage::user(format!("Observation: {observation}")));
        }
        run.status = ReactStatus::StepLimit;
        run.error = Some(format!(
            "stopped at the step limit ({limit} actions, {} model turns) without a final answer; raise the limit if the task needs more steps",
            limit + 1
        ));
    }

    /// Runs one action through the shared tool code and returns the observation text.
    async fn act(
        &self,
        thought: String,
        tool_name: String,
        args: Map<String, Value>,
        ctx: &CallContext,
        run: &mut ReactRun,
    ) -> String {
        let step_id = StepId(u32::try_from(run.actions.len() + 1).unwrap_or(u32::MAX));
        let outcome = self
            .executor
            .call_tool(&tool_name, &args, step_id, ctx)
            .await;
        run.calls.extend(outcome.calls);
        let (observation, succeeded) = match outcome.result {
            Ok(value) => {
                let text = value_text(&value);
                let clipped: String = text.chars().take(self.settings.observation_chars).collect();
                (clipped, true)
            }
            Err(error) => (format!("Error: {error}"), false),
        };
        run.actions.push(ReactAction {
            thought,
            tool_name,
            args: Value::Object(args),
            observation: observation.clone(),
            succeeded,
        });
        observation
    }
}

fn fail(run: &mut ReactRun, error: String) {
    run.status = ReactStatus::Failed;
    run.error = Some(error);
}

/// The system prompt: the loop's rules and the compact tool listing.
fn system_prompt(executor: &Executor, max_actions: usize) -> String {
    format!(
        "You are an agent that solves the user's task step by step with tools. Each turn, answer with one \
         JSON object {{\"thought\": \"...\", \"action\": {{\"tool_name\": \"...\", \"args\": {{...}}}}}} and \
         nothing else. After each action you receive an observation with the tool's result. Tools do not \
         see the conversation: put everything a tool needs (including earlier results) into its args. Use \
         only the tools listed below, with args matching their schema, and at most {max_actions} actions. \
         When you can answer, use the action {{\"tool_name\": \"{FINAL_ACTION}\", \"args\": {{\"answer\": \"...\"}}}}.\n\
         Tools:\n{}",
        executor.catalog.current().prompt_listing()
    )
}

/// The JSON Schema of one turn: a thought and one action, each action one of the tools or the final answer.
fn turn_schema(executor: &Executor) -> Value {
    let catalog = executor.catalog.current();
    let mut actions: Vec<Value> = catalog
        .specs()
        .map(|tool| {
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["tool_name", "args"],
                "properties": {
                    "tool_name": {"type": "string", "enum": [tool.name]},
                    "args": tool.input_schema,
                },
            })
        })
        .collect();
    actions.push(json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["tool_name", "args"],
        "properties": {
            "tool_name": {"type": "string", "enum": [FINAL_ACTION]},
            "args": {
                "type": "object",
                "additionalProperties": false,
                "required": ["answer"],
                "properties": {"answer": {"type": "string"}},
            },
        },
    }));
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["thought", "action"],
        "properties": {
            "thought": {"type": "string"},
            "action": {"anyOf": actions},
        },
    })
}

/// Parses one turn; tolerates a Markdown code fence around the JSON object.
fn parse_turn(content: &str) -> Result<Turn, String> {
    let trimmed = content.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed)
        .trim();
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let thought = value
        .get("thought")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let action = value
        .get("action")
        .ok_or("the object has no \"action\" field")?;
    let tool_name = action
        .get("tool_name")
        .and_then(Value::as_str)
        .ok_or("the action has no string \"tool_name\"")?
        .to_owned();
    let args = match action.get("args") {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("the action's \"args\" is not a JSON object".to_owned()),
    };
    if tool_name == FINAL_ACTION {
        let answer = match args.get("answer") {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => return Err(format!("the {FINAL_ACTION} action has no \"answer\" arg")),
        };
        return Ok(Turn::Final { answer });
    }
    Ok(Turn::Act {
        thought,
        tool_name,
        args,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_actions_finals_and_fences() {
        let turn = parse_turn(
            "```json\n{\"thought\":\"t\",\"action\":{\"tool_name\":\"lookup\",\"args\":{\"topic\":\"x\"}}}\n```",
        )
        .unwrap();
        match turn {
            Turn::Act {
                thought,
                tool_name,
                args,
            } => {
                assert_eq!(thought, "t");
                assert_eq!(tool_name, "lookup");
                assert_eq!(args["topic"], "x");
            }
            Turn::Final { .. } => panic!("expected an action"),
        }
        let turn = parse_turn(
            "{\"thought\":\"done\",\"action\":{\"tool_name\":\"final_answer\",\"args\":{\"answer\":\"42\"}}}",
        )
        .unwrap();
        assert!(matches!(turn, Turn::Final { answer } if answer == "42"));
    }

    #[test]
    fn bad_turns_say_what_is_wrong() {
        let error = |text: &str| parse_turn(text).err().unwrap();
        assert!(error("not json").contains("not JSON"));
        assert!(error("{\"thought\":\"x\"}").contains("no \"action\""));
        assert!(error("{\"action\":{\"args\":{}}}").contains("tool_name"));
        assert!(error("{\"action\":{\"tool_name\":\"final_answer\"}}").contains("answer"));
        assert!(
            error("{\"action\":{\"tool_name\":\"t\",\"args\":[1]}}").contains("not a JSON object")
        );
    }
}
