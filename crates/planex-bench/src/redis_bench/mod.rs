//! `planex-bench redis`: how fast steps flow through the Redis store (docs/BENCHMARKS.md).
//! Both benchmarks run against the Redis `--url` names, or else a private `redis-server` of their own
//! (`server.rs`).
//!
//! - `throughput`: W worker *processes* (this binary, `planex-bench redis worker`) run the engine's real
//!   worker loop and executor against one Redis; the parent submits tasks of 10 steps in three
//!   levels and waits for all of them. With `--model null` each model call returns at once
//!   in-process, so the figure is the store and worker path; `--model sim` adds a loopback HTTP call
//!   to a zero-latency simulator per step. Redis round trips and CPU time per step come from the
//!   server's `INFO commandstats` and `/proc`.
//!   `--model bare` runs no planex at all: a bare job queue on the same Redis with the same worker
//!   processes (`bare.rs`), the yardstick published job-queue figures correspond to, so the
//!   planex figure can be read as a ratio measured in the same run; `--model bare-sim` makes each
//!   bare job one call to the simulator, the yardstick for `sim`.
//! - `latency`: the time a dependency edge costs, store only: from `complete(step 1)` to another
//!   claimer holding step 2, for the memory store and for Redis, in one process.
//!
//! Key decision: the parent starts the clock only once every worker process is ready, and stops it
//! when the last task's `TaskCompleted` event arrives, so process start-up is excluded and task
//! submission (two script calls per task) is included, as in production. By default every task
//! is submitted at once (a burst, as job-queue benchmarks enqueue); `--clients N` runs N
//! closed-loop clients instead.

mod bare;
mod latency;
mod series;
mod server;
mod throughput;

use anyhow::{Context, Result};
use planex_app::Config as Settings;
use planex_core::{Plan, Stage, Step, StepId, TaskId};
use planex_engine::{Engine, EngineSettings, Models, WorkerSettings, run_worker};
use planex_llm::{InstantModel, TierSet};
use planex_store::{NewTask, RedisStore, RedisStoreOptions, StepSpec, Store};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Arguments of `planex-bench redis`.
#[derive(clap::Args)]
pub(crate) struct RedisBenchArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Steps per second through Redis with W worker processes (target ≥ 25,000 on 2 cores).
    Throughput(ThroughputArgs),
    /// Added latency per dependency edge, Redis versus the memory store (target p99 < 2 ms).
    Latency(LatencyArgs),
    /// One benchmark worker process (started by `throughput`).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ModelKind {
    /// No executor at all: each claimed step is completed at once (a no-op job, as in job-queue
    /// benchmarks): measures the store alone.
    Noop,
    /// In-process model answering at once: measures the store and worker path.
    Null,
    /// Loopback HTTP to a zero-latency simulator started by the parent.
    Sim,
    /// No planex at all: a bare job queue (XADD, XREADGROUP COUNT, XACK) with the same worker
    /// processes, as the yardstick that published job-queue figures correspond to.
    Bare,
    /// The bare job queue, each job making one call to the zero-latency simulator over loopback
    /// HTTP with the same client as `sim`: the yardstick for `sim`.
    BareSim,
}

impl ModelKind {
    /// The name `--model` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ModelKind::Noop => "noop",
            ModelKind::Null => "null",
            ModelKind::Sim => "sim",
            ModelKind::Bare => "bare",
            ModelKind::BareSim => "bare-sim",
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct ThroughputArgs {
    /// A Redis of its own (never a shared one): redis://127.0.0.1:PORT. Default: a private
    /// redis-server started for this run.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Worker processes.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
    /// Tasks of 10 steps each.
    #[arg(long, default_value_t = 2000)]
    pub(crate) tasks: usize,
    /// Steps each worker runs at once.
    #[arg(long, default_value_t = 128)]
    pub(crate) concurrency: usize,
    /// Tasks in flight: closed-loop clients, each submitting a task and waiting for it before
    /// the next. Default: all tasks at once (a burst, as job-queue benchmarks enqueue).
    #[arg(long)]
    pub(crate) clients: Option<usize>,
    /// What answers the steps' model calls; several, comma-separated, run interleaved and are
    /// compared with the first (e.g. `bare,noop`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "null")]
    pub(crate) model: Vec<ModelKind>,
    /// Runs of each variant; with more than one variant or run, the report gives each variant's
    /// median and range and its ratio to the first variant, run by run.
    #[arg(long, default_value_t = 1)]
    pub(crate) runs: usize,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct LatencyArgs {
    /// A Redis of its own: redis://127.0.0.1:PORT. Default: a private redis-server started for
    /// this run.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Timed dependency edges per store.
    #[arg(long, default_value_t = 2000)]
    pub(crate) iterations: usize,
    /// Untimed edges first.
    #[arg(long, default_value_t = 200)]
    pub(crate) warmup: usize,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
struct WorkerArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    prefix: String,
    #[arg(long)]
    concurrency: usize,
    #[arg(long)]
    model_url: Option<String>,
    #[arg(long)]
    noop: bool,
    /// Run the bare job queue, stopping the count at this many jobs.
    #[arg(long)]
    bare_total: Option<usize>,
}

pub(crate) const TIER: &str = "bench";
pub(crate) const STEPS_PER_TASK: usize = 10;

/// Runs one Redis benchmark (or, hidden, one of `throughput`'s worker processes).
pub(crate) async fn run(args: RedisBenchArgs) -> Result<ExitCode> {
    match args.which {
        Which::Throughput(args) => throughput::run(args).await,
        Which::Latency(args) => latency::run(args).await,
        Which::Worker(args) => worker(args).await,
    }
}

fn bench_config(endpoint: &str) -> String {
    format!(
        r#"
[engine]
planner_tier = "{TIER}"
synthesis = false
[tiers.{TIER}]
model = "bench-model"
endpoints = ["{endpoint}"]
usd_per_hour = 1
tokens_per_second = 1000
stream = false
max_concurrency = 4096
retry = {{ max_retries = 0, initial_backoff_ms = 1, max_backoff_ms = 1 }}
[[tools]]
name = "echo"
description = "Repeat the text"
tier = "{TIER}"
input_schema = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}
kind = {{ type = "llm", prompt = "Echo: {{text}}", max_tokens = 16 }}
"#
    )
}

async fn worker(args: WorkerArgs) -> Result<ExitCode> {
    if let Some(total) = args.bare_total {
        let model = match &args.model_url {
            Some(url) => Some(bench_models(url)?.get(TIER)?.clone()),
            None => None,
        };
        return bare::worker(&args.url, &args.prefix, total, args.concurrency, model).await;
    }
    // The bare queue above uses no planex store.
    let options = RedisStoreOptions {
        prefix: args.prefix.clone(),
        ..RedisStoreOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect_with(&args.url, options).await?);
    if args.noop {
        return noop_worker(store, args.concurrency).await;
    }
    let endpoint = args
        .model_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:9/v1".into());
    let settings = Settings::from_toml(&bench_config(&endpoint))?;
    let catalog = Arc::new(settings.catalog()?);
    let mut models = Models::new();
    match &args.model_url {
        None => {
            let price = settings
                .tiers
                .first()
                .context("the bench config has one tier")?
                .price
                .clone();
            models.insert(Arc::new(InstantModel::new(TIER, price)));
        }
        Some(url) => models = bench_models(url)?,
    }
    let engine_settings = EngineSettings {
        planner_tier: TIER.into(),
        synthesis: false,
        ..EngineSettings::default()
    };
    let engine = Engine::new(store.clone(), catalog, models, engine_settings)?;
    let mut settings = WorkerSettings::new(TIER, format!("bench-{}", std::process::id()));
    settings.concurrency = args.concurrency.max(1);
    settings.idle_wait = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run_worker(
        store,
        engine.executor().clone(),
        settings,
        shutdown.clone(),
    ));
    println!("ready");
    crate::shutdown_signal().await;
    shutdown.cancel();
    let _ = handle.await;
    Ok(ExitCode::SUCCESS)
}

/// The bench tier's model behind the simulator at `endpoint`, as the engine builds it.
fn bench_models(endpoint: &str) -> Result<Models> {
    let settings = Settings::from_toml(&bench_config(endpoint))?;
    let client = planex_llm::default_client()?;
    Ok(Models::from_tier_set(&TierSet::from_configs(
        settings.tiers,
        &client,
    )?))
}

/// The plan the benches start their tasks with. A store keeps the plan and never reads it, so an
/// empty one keeps each task's stored plan as small as the steps allow.
pub(crate) static EMPTY_PLAN: Plan = Plan {
    task: String::new(),
    steps: Vec::new(),
};

/// The bench plan: 6 roots, 3 steps joining two roots each, 1 step joining those three.
pub(crate) fn plan_steps() -> Vec<StepSpec> {
    let step = |id: u32, deps: &[u32]| {
        let text = if deps.is_empty() {
            format!("input {id}")
        } else {
            deps.iter()
                .map(|d| format!("{{step_{d}_result}}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut args = serde_json::Map::new();
        args.insert("text".into(), serde_json::Value::String(text));
        StepSpec {
            step: Step {
                step_id: StepId(id),
                tool_name: "echo".into(),
                args,
                depends_on: deps.iter().map(|d| StepId(*d)).collect(),
            },
            tier: TIER.into(),
            stage: Stage::Step,
            tolerate_failed_deps: false,
        }
    };
    vec![
        step(1, &[]),
        step(2, &[]),
        step(3, &[]),
        step(4, &[]),
        step(5, &[]),
        step(6, &[]),
        step(7, &[1, 2]),
        step(8, &[3, 4]),
        step(9, &[5, 6]),
        step(10, &[7, 8, 9]),
    ]
}

pub(crate) async fn submit(store: &dyn Store, task: &str) -> Result<TaskId> {
    let task_id = TaskId::new_random();
    store
        .create_task(NewTask {
            task_id: task_id.clone(),
            task: task.to_owned(),
            tenant: None,
            cost_center: None,
        })
        .await?;
    store
        .start_task(&task_id, &EMPTY_PLAN, plan_steps(), Vec::new())
        .await?;
    Ok(task_id)
}

/// Claims up to `concurrency` steps at a time and completes each at once, concurrently.
async fn noop_worker(store: Arc<dyn Store>, concurrency: usize) -> Result<ExitCode> {
    let worker = format!("noop-{}", std::process::id());
    println!("ready");
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let claimed = tokio::select! {
            claimed = store.claim(TIER, &worker, concurrency.max(1), Duration::from_secs(30), Duration::from_secs(1)) => claimed?,
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
        };
        let completions = claimed.into_iter().map(|lease| {
            let store = store.clone();
            async move {
                let outcome = planex_store::StepOutcome::Succeeded {
                    result: serde_json::json!("ok"),
                    attempts: 1,
                    calls: Vec::new(),
                };
                store.complete(&lease, outcome).await
            }
        });
        for completion in futures::future::join_all(completions).await {
            completion?;
        }
    }
}
