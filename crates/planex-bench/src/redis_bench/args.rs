//! The command-line arguments of `planex-bench redis`.

/// Arguments of `planex-bench redis`.
#[derive(clap::Args)]
pub(crate) struct RedisBenchArgs {
    #[command(subcommand)]
    pub(crate) which: Which,
}

/// The Redis benchmarks.
#[derive(clap::Subcommand)]
pub(crate) enum Which {
    /// Steps per second through Redis with W worker processes (target ≥ 25,000 on 2 cores).
    Throughput(ThroughputArgs),
    /// Added latency per dependency edge, Redis versus the memory store (target p99 < 2 ms).
    Latency(LatencyArgs),
    /// One benchmark worker process (started by `throughput`).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// What answers the steps' model calls in `throughput`.
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

/// Arguments of `planex-bench redis throughput`.
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

/// Arguments of `planex-bench redis latency`.
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

/// Arguments of the hidden `planex-bench redis worker` (one of `throughput`'s worker processes).
#[derive(clap::Args)]
pub(crate) struct WorkerArgs {
    /// The Redis the parent uses.
    #[arg(long)]
    pub(crate) url: String,
    /// The parent's key prefix for this run.
    #[arg(long)]
    pub(crate) prefix: String,
    /// Steps run at once.
    #[arg(long)]
    pub(crate) concurrency: usize,
    /// The simulator the steps' model calls go to (none: an in-process model).
    #[arg(long)]
    pub(crate) model_url: Option<String>,
    /// Complete each claimed step at once, without an executor.
    #[arg(long)]
    pub(crate) noop: bool,
    /// Run the bare job queue, stopping the count at this many jobs.
    #[arg(long)]
    pub(crate) bare_total: Option<usize>,
}
