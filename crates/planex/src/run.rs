//! `planex run "<task>"`: plan and execute one task in this process, with progress per step;
//! `planex run --plan FILE` / `--plans FILE`: run client-written plans (no planner call), one
//! task or a JSONL file of them one after another (`plan_file.rs` reads the files).

use crate::{output, plan_file};
use anyhow::{Context, Result};
use futures::StreamExt;
use planex_app::{App, Config, StoreSettings, Workers};
use planex_engine::TaskRequest;
use planex_store::{EventKind, TaskRecord, TaskStatus};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `planex run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The task, in plain words (with --plan it replaces the file's own `task`).
    #[arg(required_unless_present_any = ["plan", "plans"])]
    task: Option<String>,
    /// Run this plan instead of calling the planner: one JSON document, `{"task"?, "steps":
    /// [...]}` or `{"task"?, "plan": {"steps": [...]}}`. An invalid plan exits with status 2,
    /// naming the rule and the step; nothing is run.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["plans", "max_subtasks"])]
    plan: Option<PathBuf>,
    /// Run every plan of a JSONL file, one task a line (`{"task", "plan": {"steps": [...]}}` or
    /// `{"task", "steps": [...]}`, optionally with `id`, `synthesis`, `budget_usd`), one after
    /// another. Every line is checked first: if any is invalid, nothing is run and the status
    /// is 2, each bad line named with its rule and step.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["task", "max_subtasks"])]
    plans: Option<PathBuf>,
    /// Config file pointing the tiers at real servers (default: the embedded, simulated config).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print one machine-readable JSON result on stdout instead of the human report.
    #[arg(long)]
    json: bool,
    /// Most steps the planner may use.
    #[arg(long)]
    max_subtasks: Option<usize>,
    /// Task type for drift statistics and guards (letters, digits, `-`, `_`, `.`; default
    /// `default`).
    #[arg(long)]
    task_type: Option<String>,
    /// Skip the final synthesis step (the answer is then the last steps' results).
    #[arg(long)]
    no_synthesis: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Store to use instead of the config's: `memory` or a Redis URL (redis://host:6379).
    #[arg(long)]
    store: Option<String>,
}

pub async fn run(args: RunArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(store) = &args.store {
        config.store = StoreSettings::from_flag(store)?;
    }
    let app = App::from_config(config, Workers::EveryTier).await?;
    if app.is_simulated() && !args.json {
        eprintln!("{}", output::SIMULATED_BANNER);
    }
    let result = tokio::select! {
        result = execute(&app, &args, started) => result,
        () = planex_app::shutdown_signal() => Ok(ExitCode::from(INTERRUPTED)),
    };
    let interrupted = matches!(&result, Ok(code) if *code == ExitCode::from(INTERRUPTED));
    if interrupted {
        eprintln!("planex run: interrupted; stopping the workers");
    }
    let released = app.stop().await;
    if interrupted {
        eprintln!("planex run: stopped ({released} unfinished steps released to the store)");
    }
    result
}

/// Exit status after SIGTERM or Ctrl-C (128 + SIGINT, as shells report an interrupted command).
const INTERRUPTED: u8 = 130;

/// Exit status of a run refused because a plan is invalid (nothing was run).
const INVALID_PLAN: u8 = 2;

async fn execute(app: &App, args: &RunArgs, started: Instant) -> Result<ExitCode> {
    let file = match (&args.plan, &args.plans) {
        (Some(file), _) | (None, Some(file)) => file,
        (None, None) => {
            let request = TaskRequest {
                task: args.task.clone().unwrap_or_default(),
                max_subtasks: args.max_subtasks,
                ..options(args)
            };
            let record = run_task(app, request, args).await?;
            report(app, &record, args.json, started.elapsed())?;
            return Ok(exit_status(&record));
        }
    };
    let entries = match &args.plan {
        Some(path) => vec![plan_file::read_plan(path, args.task.as_deref())?],
        None => plan_file::read_plans(file)?,
    };
    let Some(requests) = check_all(app, file, entries, args).await else {
        return Ok(ExitCode::from(INVALID_PLAN));
    };
    let batch = args.plans.is_some();
    let (total, mut complete) = (requests.len(), 0);
    for (place, request) in requests {
        let task_started = Instant::now();
        if batch && !args.json {
            println!("== {place}");
        }
        let record = match run_task(app, request, args).await {
            Ok(record) => record,
            // One refused task (a budget, a store error) does not stop the others of a file.
            Err(error) if batch => {
                eprintln!(
                    "planex: {place}: {}",
                    output::one_line(&format!("{error:#}"))
                );
                continue;
            }
            Err(error) => return Err(error),
        };
        let elapsed = if batch {
            task_started.elapsed()
        } else {
            started.elapsed()
        };
        if batch && args.json {
            let result = output::json_result(&record, app.is_simulated(), elapsed);
            println!("{}", serde_json::to_string(&result)?);
        } else {
            report(app, &record, args.json, elapsed)?;
        }
        if exit_status(&record) == ExitCode::SUCCESS {
            complete += 1;
        }
    }
    if batch {
        eprintln!("planex: {complete} of {total} tasks complete");
    }
    Ok(if complete == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The request options the command line sets for every task.
fn options(args: &RunArgs) -> TaskRequest {
    TaskRequest {
        synthesis: args.no_synthesis.then_some(false),
        task_type: args.task_type.clone(),
        ..TaskRequest::default()
    }
}

/// Checks every entry the way submission would; `None` (after naming each bad entry on stderr)
/// when any is invalid, so that nothing of the file runs.
async fn check_all(
    app: &App,
    file: &std::path::Path,
    entries: Vec<plan_file::Entry>,
    args: &RunArgs,
) -> Option<Vec<(String, TaskRequest)>> {
    let total = entries.len();
    let mut requests = Vec::new();
    let mut refused = 0;
    for entry in entries {
        let place = match &entry.id {
            Some(id) => format!("{} ({id})", entry.place(file)),
            None => entry.place(file),
        };
        let checked = match entry.request {
            Ok(request) => {
                let defaults = options(args);
                let request = TaskRequest {
                    synthesis: defaults.synthesis.or(request.synthesis),
                    task_type: defaults.task_type,
                    ..request
                };
                match app.engine().check(&request).await {
                    Ok(_) => Ok(request),
                    Err(error) => Err(plan_file::refusal(&error)),
                }
            }
            Err(why) => Err(why),
        };
        match checked {
            Ok(request) => requests.push((place, request)),
            Err(why) => {
                eprintln!("planex: {place}: {why}");
                refused += 1;
            }
        }
    }
    if refused > 0 {
        eprintln!("planex: {refused} of {total} plans refused; nothing was run");
        return None;
    }
    Some(requests)
}

/// Prints a finished task: the JSON result or the human report.
fn report(app: &App, record: &TaskRecord, json: bool, elapsed: Duration) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::json_result(
                record,
                app.is_simulated(),
                elapsed
            ))?
        );
    } else {
        output::print_report(record, app.is_simulated(), elapsed);
    }
    Ok(())
}

/// Success for a complete task; otherwise the status and reason go to stderr.
fn exit_status(record: &TaskRecord) -> ExitCode {
    match record.status {
        TaskStatus::Complete => ExitCode::SUCCESS,
        status => {
            let reason = record.error.as_deref().unwrap_or("no reason recorded");
            eprintln!("planex: task {status}: {}", output::one_line(reason));
            ExitCode::FAILURE
        }
    }
}

/// Submits one task and follows it to the end (progress per step unless `--json`).
async fn run_task(app: &App, request: TaskRequest, args: &RunArgs) -> Result<TaskRecord> {
    let engine = app.engine();
    // A client plan needs no planner call: nothing to wait for.
    let planning = (!args.json && request.plan.is_none()).then(|| {
        output::spinner(&format!(
            "planning on tier {}",
            engine.settings().planner_tier
        ))
    });
    let task_id = engine.submit(request).await?;
    if let Some(spinner) = planning {
        spinner.finish_and_clear();
    }
    let store = engine.store();
    let planned = store
        .get_task(&task_id)
        .await?
        .context("the task vanished from the store")?;
    let mut progress = None;
    // A streamed plan's steps may all have finished by the time it closed: the task is then
    // complete already, and its plan is shown all the same.
    let started = planned.status == TaskStatus::Running
        || (planned.status.is_terminal() && planned.plan.is_some());
    if !args.json && started {
        output::print_plan(&planned);
        // Scripts and tests read this line: the task's steps are queued from here on.
        println!("Task {task_id} running");
        progress = Some(output::StepProgress::new(&planned));
    }
    let mut events = store.events(&task_id).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_secs);
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => {
                if let Some(progress) = &progress {
                    progress.update(&event.kind);
                }
                if matches!(event.kind, EventKind::TaskCompleted { .. }) {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                anyhow::bail!(
                    "task {task_id} did not finish within {} s; raise --timeout-secs",
                    args.timeout_secs
                )
            }
        }
    }
    if let Some(progress) = progress {
        progress.finish();
    }
    store
        .get_task(&task_id)
        .await?
        .context("the task vanished from the store")
}
