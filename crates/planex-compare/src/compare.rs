//! `planex compare --workload FILE`: runs every task of a JSONL workload both ways — plan-and-execute
//! and the ReAct baseline — and prints, per task and in total, model calls, tokens per tier, cost,
//! makespan and the savings (terminal table, `--markdown` or `--json`).
//!
//! Key decision: the two architectures run in two phases (all plan-and-execute tasks, then all ReAct
//! tasks) against separate simulators with the same per-call latency, `--concurrency` tasks at a
//! time, so neither slows the other and makespans measure the shape of the work.

use crate::CompareError;
use crate::harness::{self, ArchOutcome, Harness, HarnessOptions};
use crate::report::{Report, TaskRow};
use crate::workload::{self, WorkloadTask};
use futures::StreamExt;
use planex_app::Config as Settings;
use planex_core::Catalog;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `planex compare` (flatten into a clap subcommand).
#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// JSONL workload: `{"task": …, "plan": {…}}` per line (the `planex sim --workload` format;
    /// an optional "id" labels the task). Tasks without a pinned plan get the planner's own plan.
    #[arg(long, short)]
    pub workload: PathBuf,
    /// Config file (tiers, prices, tools); default: the embedded, simulated config. Simulated tiers
    /// are started per architecture; tiers with endpoints are called as configured.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Time to first token of every simulated call, in milliseconds (the same on every tier).
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
    /// Generation speed of simulated calls in tokens/s (0 = the whole answer after the latency).
    #[arg(long, default_value_t = 0.0)]
    pub tokens_per_second: f64,
    /// Tasks run at once (per architecture; the two architectures run one after the other).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Most ReAct actions per task (the loop stops there without an answer).
    #[arg(long, default_value_t = 40)]
    pub react_max_actions: usize,
    /// Run only the first N tasks.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Give up on one task after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub task_timeout_secs: u64,
    /// Print one JSON document.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print a Markdown table.
    #[arg(long)]
    pub markdown: bool,
    /// Print only the total row.
    #[arg(long)]
    pub totals_only: bool,
    /// Also print a Markdown table with one row per plan size (steps).
    #[arg(long, conflicts_with = "json")]
    pub by_steps: bool,
}

impl CompareArgs {
    fn options(&self) -> Result<HarnessOptions, CompareError> {
        let invalid = |message: String| Err(CompareError::InvalidArgument(message));
        if self.concurrency == 0 {
            return invalid("--concurrency must be at least 1".into());
        }
        if self.react_max_actions == 0 {
            return invalid("--react-max-actions must be at least 1".into());
        }
        if !self.tokens_per_second.is_finite() || self.tokens_per_second < 0.0 {
            return invalid(format!(
                "--tokens-per-second must be >= 0, got {}",
                self.tokens_per_second
            ));
        }
        Ok(HarnessOptions {
            latency_ms: self.latency_ms,
            tokens_per_second: self.tokens_per_second,
            react_max_actions: self.react_max_actions,
            task_timeout: Duration::from_secs(self.task_timeout_secs.max(1)),
        })
    }
}

/// `planex compare`: runs the workload both ways ([`run_comparison`]), prints the report
/// ([`print_report`]) and returns it. Runs that did not answer are in the report
/// ([`Report::failed_runs`]), not an error.
///
/// # Errors
/// Invalid flags, an unreadable config or workload, or simulators and tiers that cannot be set up.
pub async fn compare(args: &CompareArgs) -> Result<Report, CompareError> {
    let report = run_comparison(args).await?;
    print_report(&report, args)?;
    Ok(report)
}

/// Runs every task of `args.workload` with plan-and-execute, then as ReAct, and sums the figures.
/// Progress notes go to stderr unless `args.json`.
///
/// # Errors
/// As [`compare`].
pub async fn run_comparison(args: &CompareArgs) -> Result<Report, CompareError> {
    let options = args.options()?;
    let (settings, catalog) = harness::load_config(args.config.as_deref())?;
    let mut tasks = workload::read(&args.workload)?;
    if let Some(limit) = args.limit {
        tasks.truncate(limit);
    }
    let pinned =
        planex_sim::Workload::from_path(&args.workload).map_err(CompareError::PinnedPlans)?;
    let harness = Harness::start(&settings, &catalog, &pinned, &options).await?;
    if harness.simulated && !args.json {
        eprintln!(
            "planex compare: simulated tiers ({} ms per call): model output is synthetic, token counts are real (cl100k_base), costs use the configured prices.",
            options.latency_ms
        );
    }
    let rows = compare_tasks(&harness, &tasks, args.concurrency, !args.json).await;
    let report = Report::new(
        rows,
        harness.server_counts(),
        harness.simulated,
        options.latency_ms,
        args.concurrency,
        &harness.planner_tier,
    );
    harness.stop().await;
    Ok(report)
}

/// Prints `report` on stdout as `args` asks: JSON, Markdown or a terminal table, optionally only
/// the totals, and the per-plan-size table with `--by-steps`.
///
/// # Errors
/// The report cannot be written as JSON.
pub fn print_report(report: &Report, args: &CompareArgs) -> Result<(), CompareError> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if args.markdown {
        print!("{}", report.markdown(args.totals_only));
    } else {
        print!("{}", report.human(args.totals_only));
    }
    if args.by_steps {
        print!("\n{}", report.by_steps_markdown());
    }
    Ok(())
}

/// Runs every task with plan-and-execute, then every task as ReAct, `concurrency` at a time.
async fn compare_tasks(
    harness: &Harness,
    tasks: &[WorkloadTask],
    concurrency: usize,
    progress: bool,
) -> Vec<TaskRow> {
    let phase = |name: &'static str| {
        if progress {
            eprintln!("planex compare: {name}: {} tasks…", tasks.len());
        }
    };
    phase("plan-and-execute");
    let plan_execute = in_order(tasks, concurrency, |t| async move {
        harness.run_plan_execute(&t.task, t.steps, false).await
    })
    .await;
    phase("plan-and-execute, streamed plans");
    let streamed = in_order(tasks, concurrency, |t| async move {
        harness.run_plan_execute(&t.task, t.steps, true).await
    })
    .await;
    phase("ReAct");
    let react = in_order(tasks, concurrency, |t| async move {
        harness.run_react(&t.task).await
    })
    .await;
    tasks
        .iter()
        .zip(plan_execute.iter().zip(&react).zip(&streamed))
        .map(|(t, ((p, r), s))| TaskRow::new(&t.label, &t.task, t.steps, p, r, s))
        .collect()
}

async fn in_order<'a, F, Fut>(
    tasks: &'a [WorkloadTask],
    concurrency: usize,
    run: F,
) -> Vec<ArchOutcome>
where
    F: Fn(&'a WorkloadTask) -> Fut,
    Fut: std::future::Future<Output = ArchOutcome>,
{
    let mut results: Vec<(usize, ArchOutcome)> = futures::stream::iter(tasks.iter().enumerate())
        .map(|(i, t)| {
            let fut = run(t);
            async move { (i, fut.await) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Runs the comparison of generated tasks for the savings curves (shared with `curve`).
pub(crate) async fn compare_generated(
    settings: &Settings,
    catalog: &Arc<Catalog>,
    lines: &str,
    options: &HarnessOptions,
) -> Result<Report, CompareError> {
    let tasks = workload::parse(lines).map_err(|source| CompareError::WorkloadInvalid {
        origin: "generated for the savings curves".into(),
        source,
    })?;
    let pinned = planex_sim::Workload::from_jsonl(lines).map_err(CompareError::PinnedPlans)?;
    let harness = Harness::start(settings, catalog, &pinned, options).await?;
    let rows = compare_tasks(&harness, &tasks, 4, false).await;
    let report = Report::new(
        rows,
        harness.server_counts(),
        harness.simulated,
        options.latency_ms,
        4,
        &harness.planner_tier,
    );
    harness.stop().await;
    Ok(report)
}
