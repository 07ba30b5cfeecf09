//! Human and JSON output of `planex run`: the plan as a tree, per-step progress bars, the answer
//! and a cost table per stage and tier.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use planex_core::{CallRecord, Decimal, Stage, StepId, dag, format_usd, value_text};
use planex_store::{EventKind, StepState, TaskRecord};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub const SIMULATED_BANNER: &str = "planex: NOTE: model output below is SIMULATED by the built-in simulator \
(no GPU, no model weights); token counts are real tokenizer counts and costs use the configured prices. \
Point the tiers at vLLM, SGLang, llama.cpp, Ollama or any OpenAI-compatible server with --config planex.toml.";

pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn describe_args(args: &serde_json::Map<String, serde_json::Value>) -> String {
    let text: Vec<String> = args
        .iter()
        .map(|(k, v)| {
            let value = value_text(v).replace('\n', " ");
            let short: String = value.chars().take(48).collect();
            let ellipsis = if value.chars().count() > 48 {
                "…"
            } else {
                ""
            };
            format!("{k}={short:?}{ellipsis}")
        })
        .collect();
    text.join(" ")
}

pub fn print_plan(record: &TaskRecord) {
    let levels = dag::levels(record.steps.values().map(|s| &s.spec.step));
    println!(
        "Plan: {} steps in {} levels (steps in one level run in parallel)",
        record.steps.len(),
        levels.len()
    );
    for (i, level) in levels.iter().enumerate() {
        let last_level = i + 1 == levels.len();
        println!("{} level {}", if last_level { "└─" } else { "├─" }, i + 1);
        for (j, id) in level.iter().enumerate() {
            let spec = &record.steps[id].spec;
            let branch = if j + 1 == level.len() {
                "└─"
            } else {
                "├─"
            };
            let deps = if spec.step.depends_on.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = spec.step.depends_on.iter().map(|d| d.to_string()).collect();
                format!("  ← {}", ids.join(", "))
            };
            println!(
                "{}  {branch} [{id}] {} on {}  {}{deps}",
                if last_level { " " } else { "│" },
                spec.step.tool_name,
                spec.tier,
                describe_args(&spec.step.args)
            );
        }
    }
    println!();
}

/// One progress line per step, updated from the task's events.
pub struct StepProgress {
    _multi: MultiProgress,
    bars: HashMap<StepId, ProgressBar>,
}

impl StepProgress {
    pub fn new(record: &TaskRecord) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix:<28} {msg} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = record
            .steps
            .iter()
            .map(|(id, step)| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(format!("[{id}] {}", step.spec.step.tool_name));
                bar.set_message("waiting");
                (*id, bar)
            })
            .collect();
        StepProgress {
            _multi: multi,
            bars,
        }
    }

    pub fn update(&self, event: &EventKind) {
        let (id, message, done) = match event {
            EventKind::StepStarted {
                step_id,
                tier,
                delivery,
                ..
            } => {
                let again = if *delivery > 1 {
                    format!(" (delivery {delivery})")
                } else {
                    String::new()
                };
                (*step_id, format!("running on {tier}{again}"), false)
            }
            EventKind::StepCompleted { step_id } => (*step_id, "done".to_owned(), true),
            EventKind::StepFailed { step_id, error } => {
                (*step_id, format!("FAILED: {}", one_line(error)), true)
            }
            EventKind::StepSkipped { step_id, .. } => (*step_id, "skipped".to_owned(), true),
            _ => return,
        };
        if let Some(bar) = self.bars.get(&id) {
            if done {
                bar.finish_with_message(message);
            } else {
                bar.reset_elapsed();
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(message);
            }
        }
    }

    pub fn finish(self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
    }
}

pub fn one_line(text: &str) -> String {
    let line = text.replace('\n', " ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

#[derive(Default)]
struct Row {
    calls: u64,
    prompt: u64,
    completion: u64,
    cost: Decimal,
}

fn cost_rows(calls: &[CallRecord]) -> BTreeMap<(Stage, String), Row> {
    let mut rows: BTreeMap<(Stage, String), Row> = BTreeMap::new();
    for call in calls {
        let row = rows.entry((call.stage, call.tier.clone())).or_default();
        row.calls += 1;
        row.prompt += call.usage.prompt_tokens;
        row.completion += call.usage.completion_tokens;
        row.cost += call.cost_usd;
    }
    rows
}

pub fn print_report(record: &TaskRecord, simulated: bool, elapsed: Duration) {
    println!();
    println!(
        "Task {} {} in {:.2} s",
        record.task_id,
        record.status,
        elapsed.as_secs_f64()
    );
    let problems = record.problems();
    if !problems.is_empty() {
        println!("Steps that did not complete:");
        for (id, state, why) in problems {
            let word = if state == StepState::Failed {
                "failed"
            } else {
                "skipped"
            };
            println!("  [{id}] {word}: {}", one_line(&why));
        }
    } else if let Some(error) = &record.error {
        println!("Reason: {}", one_line(error));
    }
    for e in planex_engine::escalations(record) {
        let outcome = if e.succeeded { "succeeded" } else { "failed" };
        println!(
            "Escalated: [{}] {} {} -> {} ({outcome})",
            e.step_id, e.tool, e.from, e.to
        );
    }
    println!();
    match record.answer() {
        Some(answer) => {
            let label = if simulated {
                "Answer (SIMULATED model output):"
            } else {
                "Answer:"
            };
            println!("{label}\n{answer}\n");
        }
        None => println!("No answer was produced.\n"),
    }
    println!(
        "Cost by stage and tier{}:",
        if simulated {
            " (simulated calls, configured prices)"
        } else {
            ""
        }
    );
    println!(
        "  {:<10} {:<10} {:>5} {:>9} {:>11} {:>12}",
        "stage", "tier", "calls", "prompt", "completion", "cost"
    );
    for ((stage, tier), row) in cost_rows(&record.calls) {
        println!(
            "  {:<10} {:<10} {:>5} {:>9} {:>11} {:>12}",
            stage.to_string(),
            tier,
            row.calls,
            row.prompt,
            row.completion,
            format_usd(row.cost)
        );
    }
    let total = record.cost().total;
    println!(
        "  {:<10} {:<10} {:>5} {:>9} {:>11} {:>12}",
        "total",
        "",
        total.calls,
        total.usage.prompt_tokens,
        total.usage.completion_tokens,
        format_usd(total.cost_usd)
    );
}

pub fn json_result(record: &TaskRecord, simulated: bool, elapsed: Duration) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = record
        .steps
        .values()
        .map(|s| {
            serde_json::json!({
                "step_id": s.spec.step.step_id,
                "tool_name": s.spec.step.tool_name,
                "tier": s.spec.tier,
                "depends_on": s.spec.step.depends_on,
                "state": s.state,
                "attempts": s.attempts,
                "result": s.result,
                "error": s.error,
            })
        })
        .collect();
    serde_json::json!({
        "task_id": record.task_id,
        "task": record.task,
        "task_type": record.task_type,
        "status": record.status,
        "plan_source": record.plan.as_ref().map(|plan| {
            plan.get("source").and_then(serde_json::Value::as_str).unwrap_or("planner")
        }),
        "simulated": simulated,
        "answer": record.answer(),
        "error": record.error,
        "steps": steps,
        "escalations": planex_engine::escalations(record),
        "cost": record.cost(),
        "calls": record.calls,
        "elapsed_ms": elapsed.as_millis() as u64,
    })
}
