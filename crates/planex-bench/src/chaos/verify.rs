//! What a chaos run checks once its tasks have ended, from the store and the simulator's own
//! counters, and the report it prints.
//!
//! Invariants (each broken one is a line in `violations`, and the exit code is 1):
//! - **0 lost**: every task the API accepted (202) has a record;
//! - **0 stuck**: every one of them ended before the deadline;
//! - **every failed step is dead-lettered** with a reason;
//! - **no budget overspent**: no task's recorded cost is above the budget it was submitted with;
//! - **every served call billed once, at what was served**: the tasks' call records against the
//!   simulator's ledger of answers, call by call (`billing.rs`), and billed ≥ served overall.

use super::billing::{Billed, BillingCheck};
use super::redelivery::KillReport;
use anyhow::Result;
use futures::StreamExt;
use planex_core::{Decimal, TaskId};
use planex_sim::{CallLedger, SimStats};
use planex_store::{RedisStore, StepState, Store, TaskStatus, wait_for_status};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What the submissions gave.
pub struct Submitted {
    /// The ids of the tasks the API accepted (202).
    pub accepted: Vec<TaskId>,
    /// Submissions answered with another 4xx (refused, e.g. over budget): not accepted, not lost.
    pub refused: usize,
    /// Submissions sent again after a connection error or a 5xx.
    pub retries: usize,
}

/// What the store says about the accepted tasks.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Accepted tasks by final status (`stuck` for those that had not ended by the deadline).
    pub statuses: BTreeMap<String, usize>,
    /// Accepted tasks with no record.
    pub lost: usize,
    /// Accepted tasks not ended by the deadline.
    pub stuck: usize,
    /// Steps that ended `failed`.
    pub failed_steps: usize,
    /// Of those, the ones with a dead letter that gives a reason.
    pub failed_steps_dead_lettered: usize,
    /// Tasks whose recorded cost is above their budget.
    pub over_budget: usize,
    /// The most any task cost, in USD.
    pub max_task_cost_usd: Decimal,
    /// The tasks' model-call records, for the call-by-call billing check.
    #[serde(skip)]
    pub billed: Billed,
    /// Broken invariants, one line each (empty: the run passed).
    pub violations: Vec<String>,
}

/// Waits for every accepted task (until `deadline` has passed), then checks the invariants that
/// the store can show.
pub async fn check(
    store: &RedisStore,
    submitted: &Submitted,
    budget: Decimal,
    deadline: Duration,
) -> Result<Outcome> {
    let until = Instant::now() + deadline;
    let ended: Vec<(TaskId, Option<TaskStatus>)> = futures::stream::iter(&submitted.accepted)
        .map(|id| async move {
            let left = until.saturating_duration_since(Instant::now());
            (
                id.clone(),
                wait_for_status(store, id, left).await.ok().flatten(),
            )
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let letters: BTreeSet<(String, u32)> = store
        .dead_letters(usize::MAX >> 1)
        .await?
        .into_iter()
        .filter(|letter| !letter.error.trim().is_empty())
        .map(|letter| (letter.task_id.0, letter.step_id.0))
        .collect();
    let mut outcome = Outcome::default();
    for (id, status) in ended {
        let Some(record) = store.get_task(&id).await? else {
            outcome.lost += 1;
            outcome
                .violations
                .push(format!("task {id} was accepted and has no record"));
            continue;
        };
        let status = status
            .filter(|s| s.is_terminal())
            .or_else(|| record.status.is_terminal().then_some(record.status));
        let Some(status) = status else {
            outcome.stuck += 1;
            *outcome.statuses.entry("stuck".into()).or_default() += 1;
            outcome.violations.push(format!(
                "task {id} had not ended {}s after the last submission (status {})",
                deadline.as_secs(),
                record.status
            ));
            continue;
        };
        *outcome.statuses.entry(status.to_string()).or_default() += 1;
        for (step_id, step) in &record.steps {
            if step.state == StepState::Failed {
                outcome.failed_steps += 1;
                if letters.contains(&(id.0.clone(), step_id.0)) {
                    outcome.failed_steps_dead_lettered += 1;
                } else {
                    outcome.violations.push(format!(
                        "step {step_id} of task {id} failed ({}) and has no dead letter",
                        step.error.as_deref().unwrap_or("no error given")
                    ));
                }
            }
        }
        let cost: Decimal = record.calls.iter().map(|call| call.cost_usd).sum();
        outcome.max_task_cost_usd = outcome.max_task_cost_usd.max(cost);
        if cost > budget {
            outcome.over_budget += 1;
            outcome.violations.push(format!(
                "task {id} cost {cost} USD, above its budget of {budget} USD"
            ));
        }
        outcome.billed.add(&id.0, &record.calls);
    }
    Ok(outcome)
}

/// Everything a run reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Tasks submitted.
    pub tasks: usize,
    /// Tasks the API accepted.
    pub accepted: usize,
    /// Tasks the API refused with a 4xx (not accepted, so not counted as lost).
    pub refused: usize,
    /// Submissions sent again (same `Idempotency-Key`) after a connection error or a 5xx.
    pub submission_retries: usize,
    /// How long restarting Redis took, in ms.
    pub redis_restart_ms: Option<u64>,
    /// How long restarting the API took, in ms.
    pub api_restart_ms: Option<u64>,
    /// Each worker kill and how long its steps took to be handed out again.
    pub redeliveries: Vec<KillReport>,
    /// The simulator's counters.
    pub sim: SimStats,
    /// What the store shows.
    pub outcome: Outcome,
    /// The tasks' bills against the simulator's ledger, call by call.
    pub billing: BillingCheck,
    /// The run's wall time, in seconds.
    pub wall_secs: f64,
    /// Where the processes' logs are.
    pub logs: String,
}

impl Report {
    /// Adds the checks only the simulator's ledger allows: each served call billed once, at
    /// what it served, and billed ≥ served overall.
    pub fn check_billing(&mut self, ledger: &CallLedger) {
        let cut_off = (self.sim.cut_off_answers, self.sim.cut_off_tokens_total);
        self.billing = super::billing::compare(
            &self.outcome.billed,
            ledger,
            cut_off,
            &mut self.outcome.violations,
        );
    }

    /// Prints the report, as JSON or as text.
    pub fn print(&self, json: bool) {
        if json {
            match serde_json::to_string_pretty(self) {
                Ok(text) => println!("{text}"),
                Err(error) => eprintln!("planex-bench chaos: cannot encode the report: {error}"),
            }
            return;
        }
        let o = &self.outcome;
        println!(
            "chaos: {} tasks submitted, {} accepted, {} refused, {} submissions retried ({:.0} s, simulated model output)",
            self.tasks, self.accepted, self.refused, self.submission_retries, self.wall_secs
        );
        println!("  statuses: {:?}", o.statuses);
        println!(
            "  lost {} · stuck {} · failed steps {} ({} dead-lettered) · over budget {} (max task cost {} USD)",
            o.lost,
            o.stuck,
            o.failed_steps,
            o.failed_steps_dead_lettered,
            o.over_budget,
            o.max_task_cost_usd
        );
        let b = &self.billing;
        println!(
            "  tokens: served {} in {} answers (simulator), billed {} (records); faults injected {} of {} requests",
            b.served_tokens,
            b.served_calls,
            b.billed_tokens,
            self.sim.errors_injected,
            self.sim.requests_total
        );
        println!(
            "  calls: {} billed exactly as served; {} served ({} tokens) named by no record, covered by {} unnamed records ({} tokens); {} answers cut off ({} tokens, not billed)",
            b.matched_calls,
            b.unnamed_served_calls,
            b.unnamed_served_tokens,
            b.unnamed_billed_calls,
            b.unnamed_billed_tokens,
            b.cut_off_answers,
            b.cut_off_tokens
        );
        println!(
            "  redis restart {} ms · API restart {} ms",
            opt(self.redis_restart_ms),
            opt(self.api_restart_ms)
        );
        let times: Vec<u64> = self
            .redeliveries
            .iter()
            .filter_map(|k| k.redelivered_after_ms)
            .collect();
        println!(
            "  {} workers killed; {} held steps; redelivered after (ms, per kill that held some): {:?}",
            self.redeliveries.len(),
            self.redeliveries.iter().map(|k| k.held).sum::<usize>(),
            times
        );
        if o.violations.is_empty() {
            println!("  PASS: no invariant broken (logs: {})", self.logs);
        } else {
            println!(
                "  FAIL: {} invariants broken (logs: {}):",
                o.violations.len(),
                self.logs
            );
            for line in o.violations.iter().take(50) {
                println!("    - {line}");
            }
        }
    }
}

fn opt(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}
