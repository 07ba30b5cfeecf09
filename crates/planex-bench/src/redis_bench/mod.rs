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

mod args;
mod bare;
mod latency;
mod plan;
mod series;
mod server;
mod throughput;
mod worker;

pub(crate) use args::RedisBenchArgs;

use anyhow::{Result, bail};
use args::{ThroughputArgs, Which};
use server::BenchRedis;
use std::process::ExitCode;

/// Runs one Redis benchmark (or, hidden, one of `throughput`'s worker processes).
pub(crate) async fn run(args: RedisBenchArgs) -> Result<ExitCode> {
    match args.which {
        Which::Throughput(args) => run_throughput(args).await,
        Which::Latency(args) => latency::run(args).await,
        Which::Worker(args) => worker::run(args).await,
    }
}

/// `throughput`: one measurement, or a series when several variants or runs are asked for.
async fn run_throughput(args: ThroughputArgs) -> Result<ExitCode> {
    if args.workers == 0 || args.tasks == 0 || args.concurrency == 0 || args.runs == 0 {
        bail!("--workers, --tasks, --concurrency and --runs must be at least 1");
    }
    if args.model.is_empty() {
        bail!("--model needs at least one variant");
    }
    let redis = BenchRedis::open(args.url.as_deref()).await?;
    if args.model.len() > 1 || args.runs > 1 {
        series::run(&args, redis.url()).await
    } else {
        throughput::run(&args, redis.url(), args.model[0]).await
    }
}
