//! The command-line arguments of the engine benchmarks (`overhead`, `http`, `makespan`) and their
//! limits.

use anyhow::{Result, bail};

/// Most tasks `--tasks` and `--warmup` may ask for.
pub(crate) const MAX_TASKS: usize = 1_000_000;
/// Most runs `--runs` and `--sequential-runs` may ask for.
pub(crate) const MAX_RUNS: usize = 10_000;

/// Arguments of `overhead` (and, flattened, of `http`).
#[derive(clap::Args)]
pub(crate) struct StepArgs {
    /// Tasks to time (each a 10-step plan in three levels), run one at a time.
    #[arg(long, default_value_t = 3000)]
    pub(crate) tasks: usize,
    /// Untimed tasks run first.
    #[arg(long, default_value_t = 200)]
    pub(crate) warmup: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `http`.
#[derive(clap::Args)]
pub(crate) struct HttpArgs {
    // Task counts and output format, as for `overhead`.
    #[command(flatten)]
    pub(crate) steps: StepArgs,
    /// Ask for whole (non-streamed) answers instead of the tiers' default SSE streaming.
    #[arg(long)]
    pub(crate) no_stream: bool,
}

/// Arguments of `makespan`.
#[derive(clap::Args)]
pub(crate) struct MakespanArgs {
    /// Timed runs of the 3-level plan.
    #[arg(long, default_value_t = 20)]
    pub(crate) runs: usize,
    /// Timed runs of the 10-step chain (the sequential equivalent); 0 skips them.
    #[arg(long, default_value_t = 3)]
    pub(crate) sequential_runs: usize,
    /// Time to first token of the executor simulator = time per step, in ms (default 200; with
    /// `--planner-tps`, both 200 and 2000 unless given).
    #[arg(long)]
    pub(crate) step_ms: Option<u64>,
    /// Time to first token of the planner simulator, in ms.
    #[arg(long, default_value_t = 0)]
    pub(crate) planner_ttft_ms: u64,
    /// Ask for whole (non-streamed) answers instead of the tiers' default SSE streaming.
    #[arg(long)]
    pub(crate) no_stream: bool,
    /// Compare streamed against whole-plan planning with a planner writing this many output
    /// tokens per second (simulated), interleaved run by run.
    #[arg(long)]
    pub(crate) planner_tps: Option<f64>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Fails unless `value` (the flag `--name`) is between 1 and `max`.
pub(crate) fn check_count(name: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        bail!("--{name} must be between 1 and {max}, got {value}");
    }
    Ok(())
}
