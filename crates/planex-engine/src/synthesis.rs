//! The synthesis step the engine appends to a plan: its reserved tool name, its step id, and the
//! request its model call makes (prompt and answer options).

use planex_core::{AnswerFormat, Plan, StepId, value_text};
use planex_llm::{ChatMessage, ChatRequest};
use planex_store::StepLease;

/// The reserved tool name of the synthesis step the engine appends to a plan.
pub const SYNTHESIS_TOOL: &str = "planex.synthesize";

/// The synthesis step's id: one past the plan's highest step id. A validated plan's ids are at
/// most `StepId::MAX` (`u32::MAX - 1`), so this never saturates; saturating keeps it from
/// wrapping to 0 regardless.
pub(crate) fn synthesis_id(plan: &Plan) -> StepId {
    let highest = plan.steps.iter().map(|s| s.step_id.0).max().unwrap_or(0);
    StepId(highest.saturating_add(1))
}

/// `max_tokens` of a synthesis call whose answer options set none.
const SYNTHESIS_MAX_TOKENS: u32 = 1024;

/// The synthesis call: instructions, `prompt`, and the answer options (length, sampling, stop,
/// response format, passed to the model as given).
pub(crate) fn answer_request(
    options: &planex_core::AnswerOptions,
    format: &AnswerFormat,
    prompt: String,
) -> ChatRequest {
    let mut system =
        "You write the final answer of an agent from the results of its steps.".to_owned();
    match format {
        AnswerFormat::Text => {}
        AnswerFormat::JsonObject => system.push_str(" Answer with one JSON object only."),
        AnswerFormat::JsonSchema(schema) => system.push_str(&format!(
            " Answer with JSON only, valid against this JSON Schema: {schema}"
        )),
    }
    let mut request =
        ChatRequest::new(vec![ChatMessage::system(system), ChatMessage::user(prompt)])
            .with_max_tokens(options.max_tokens.unwrap_or(SYNTHESIS_MAX_TOKENS));
    request.temperature = options.temperature;
    request.top_p = options.top_p;
    request.stop = options.stop.clone();
    request.response_format = options.response_format.clone();
    request
}

/// The shortest a synthesis input is clipped to before the synthesis gives up for budget.
pub(crate) const MIN_SYNTHESIS_INPUT_CHARS: usize = 200;

/// The synthesis prompt: the task, each dependency's result clipped to `clip` characters, and the
/// steps that have none.
pub(crate) fn synthesis_prompt(lease: &StepLease, clip: usize) -> String {
    let mut prompt = format!(
        "Task: {}\n\nResults of the plan's steps:\n",
        lease.task_text
    );
    let mut missing = Vec::new();
    for step in &lease.spec.step.depends_on {
        match lease.dep_results.get(step) {
            Some(result) => {
                let clipped: String = value_text(result).chars().take(clip).collect();
                prompt.push_str(&format!("[step {step}] {clipped}\n"));
            }
            None => {
                missing.push(step.to_string());
                prompt.push_str(&format!(
                    "[step {step}] (no result: the step failed or was skipped)\n"
                ));
            }
        }
    }
    if !missing.is_empty() {
        // The simulator echoes this line in its answer (docs/ARCHITECTURE.md §8).
        prompt.push_str(&format!(
            "\nMissing steps: {}.\nThese steps have no result. The answer must say that the \
             results of steps {} are missing and what it cannot cover without them; never \
             invent their results.\n",
            missing.join(", "),
            missing.join(", ")
        ));
    }
    prompt.push_str("\nWrite the final answer to the task from these results.");
    prompt
}
