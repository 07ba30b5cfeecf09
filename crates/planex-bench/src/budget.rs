//! `planex-bench budget`: how per-task budgets hold under concurrency. planex starts through
//! `planex_app::App` on the embedded default (both tiers simulated, memory store and ledger,
//! in-process workers); the mean cost of a task without a budget is measured first, then for each
//! budget (a fraction of that mean) `--tasks` tasks with distinct texts run at once, and the table
//! gives how many were admitted, completed, ended partial or were refused, how many were re-planned
//! for the budget, and the largest overspend (a task's cost over its budget; 0 is the guarantee).
//! Run: `cargo run --release -p planex-bench -- budget`.

use anyhow::{Context, Result};
use planex_app::{App, Config, DEFAULT_CONFIG, Workers};
use planex_core::{Decimal, Stage};
use planex_engine::{EngineError, TaskRequest};
use planex_store::{TaskRecord, TaskStatus};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long one task may take.
const TASK_TIMEOUT: Duration = Duration::from_secs(120);
/// Tasks run without a budget to measure the mean cost.
const PROBES: usize = 5;

/// Arguments of `planex-bench budget`.
#[derive(clap::Args)]
pub(crate) struct BudgetArgs {
    /// Tasks submitted at once for each budget.
    #[arg(long, default_value_t = 50)]
    tasks: usize,
    /// Budgets as fractions of the mean unconstrained task cost, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.7,0.9,1.5")]
    fractions: Vec<Decimal>,
}

/// One row of the table.
#[derive(Default)]
struct Row {
    admitted: usize,
    complete: usize,
    partial: usize,
    refused: usize,
    replanned: usize,
    over: usize,
    max_overspend: Decimal,
    /// Why tasks did not complete (the start of their error), with counts.
    reasons: std::collections::BTreeMap<String, usize>,
}

impl Row {
    fn count(&mut self, record: &TaskRecord, budget: Decimal) {
        let cost = record.cost().total.cost_usd;
        if cost > budget {
            self.over += 1;
            self.max_overspend = self.max_overspend.max(cost - budget);
        }
        let plans = record
            .calls
            .iter()
            .filter(|c| c.stage == Stage::Plan)
            .count();
        if plans > 1 {
            self.replanned += 1;
        }
        match record.status {
            TaskStatus::Complete => self.complete += 1,
            TaskStatus::Partial => self.partial += 1,
            _ => {}
        }
        if let Some(error) = &record.error {
            let reason: String = error.chars().take(160).collect();
            *self.reasons.entry(reason).or_default() += 1;
        }
    }
}

/// Runs the benchmark and prints the table.
pub(crate) async fn run(args: BudgetArgs) -> Result<ExitCode> {
    let config = Config::from_toml(DEFAULT_CONFIG).context("reading the embedded default")?;
    let app = App::from_config(config, Workers::EveryTier)
        .await
        .context("starting planex on the embedded default")?;
    let engine = app.engine().clone();
    let mut total = Decimal::ZERO;
    for i in 0..PROBES {
        let record = engine
            .run(request(&format!("probe {i}"), Decimal::ZERO), TASK_TIMEOUT)
            .await
            .context("running a task without a budget")?;
        total += record.cost().total.cost_usd;
    }
    let mean = total / Decimal::from(PROBES as u64);
    println!(
        "planex-bench budget (SIMULATED tiers, embedded default prices): mean task cost without a budget ${}",
        mean.round_dp(9)
    );
    println!(
        "{:>12} {:>6} {:>9} {:>9} {:>8} {:>8} {:>10} {:>6} {:>14}",
        "budget_usd",
        "tasks",
        "admitted",
        "complete",
        "partial",
        "refused",
        "replanned",
        "over",
        "max_overspend"
    );
    for (round, fraction) in args.fractions.iter().enumerate() {
        let budget = (mean * fraction).round_dp(9);
        let handles: Vec<_> = (0..args.tasks)
            .map(|i| {
                let engine = Arc::clone(&engine);
                let text = format!("budget round {round} task {i}");
                tokio::spawn(async move {
                    let outcome = engine.run(request(&text, budget), TASK_TIMEOUT).await;
                    (engine, outcome)
                })
            })
            .collect();
        let mut row = Row::default();
        for handle in handles {
            let (engine, outcome) = handle.await.context("a benchmark task panicked")?;
            match outcome {
                Ok(record) => {
                    row.admitted += 1;
                    row.count(&record, budget);
                }
                Err(EngineError::Budget(refusal)) => {
                    row.refused += 1;
                    if let Some(id) = &refusal.task_id
                        && let Ok(Some(record)) = engine.store().get_task(id).await
                    {
                        row.count(&record, budget);
                    }
                }
                Err(error) => return Err(error).context("a benchmark task failed"),
            }
        }
        println!(
            "{:>12} {:>6} {:>9} {:>9} {:>8} {:>8} {:>10} {:>6} {:>14}",
            budget.to_string(),
            args.tasks,
            row.admitted,
            row.complete,
            row.partial,
            row.refused,
            row.replanned,
            row.over,
            row.max_overspend.round_dp(9).to_string()
        );
        if let Some((reason, count)) = row.reasons.iter().max_by_key(|(_, n)| **n) {
            println!("{:>12}   most common reason ({count}): {reason}", "");
        }
    }
    app.stop().await;
    Ok(ExitCode::SUCCESS)
}

fn request(task: &str, budget: Decimal) -> TaskRequest {
    TaskRequest {
        task: task.to_owned(),
        budget_usd: Some(budget),
        bypass_cache: true,
        ..TaskRequest::default()
    }
}
