//! `planex run "<task>"`: plan and execute one task in this process, with progress per step.

use crate::output;
use anyhow::{Context, Result};
use futures::StreamExt;
use planex_app::{App, Config, StoreSettings, Workers};
use planex_engine::TaskRequest;
use planex_store::{EventKind, TaskStatus};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `planex run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The task, in plain words.
    task: String,
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

async fn execute(app: &App, args: &RunArgs, started: Instant) -> Result<ExitCode> {
    let engine = app.engine();
    let request = TaskRequest {
        task: args.task.clone(),
        max_subtasks: args.max_subtasks,
        synthesis: args.no_synthesis.then_some(false),
        task_type: args.task_type.clone(),
        ..TaskRequest::default()
    };
    let planning = (!args.json).then(|| {
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
    if !args.json && planned.status == TaskStatus::Running {
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
    let record = store
        .get_task(&task_id)
        .await?
        .context("the task vanished from the store")?;
    let elapsed = started.elapsed();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::json_result(
                &record,
                app.is_simulated(),
                elapsed
            ))?
        );
    } else {
        output::print_report(&record, app.is_simulated(), elapsed);
    }
    Ok(match record.status {
        TaskStatus::Complete => ExitCode::SUCCESS,
        status => {
            let reason = record.error.as_deref().unwrap_or("no reason recorded");
            eprintln!("planex: task {status}: {}", output::one_line(reason));
            ExitCode::FAILURE
        }
    })
}
