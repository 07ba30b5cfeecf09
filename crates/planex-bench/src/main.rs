//! `planex-bench`: the planex benchmarks, each measured in this process against simulated tiers or
//! an in-process null model (docs/BENCHMARKS.md holds the figures and the commands).
//!
//! - `overhead`, `http`, `makespan`: the engine's latency targets (`bed.rs` says how steps are timed).
//! - `redis throughput|latency`: steps per second and per-edge latency through the Redis store;
//!   without `--url` they start a private `redis-server` of their own.
//! - `execute-overhead`: the latency `POST /v1/execute` adds over calling the model server directly.
//! - `routing-cost`: the mixed 200-task workload routed across two tiers versus all on one.
//! - `chaos`: a bounded soak under faults and kills, checked for lost, stuck and unbilled work.
//!
//! Run as `cargo run --release -p planex-bench -- overhead`.

mod args;
mod bed;
mod budget;
mod chaos;
mod execute_overhead;
mod http;
mod makespan;
mod makespan_streamed;
mod overhead;
mod probe;
mod redis_bench;
mod report;
mod retention;
mod routing_cost;
mod stats;
mod workload;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// planex-bench: measure planex's engine, store and HTTP paths.
#[derive(Parser)]
#[command(name = "planex-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Engine overhead per step, model call excluded (in-process null model; target p99 < 50 µs).
    Overhead(args::StepArgs),
    /// Per step including a loopback HTTP call to a zero-latency simulator (target p99 < 0.5 ms).
    Http(args::HttpArgs),
    /// Makespan of a 10-step, 3-level plan at 200 ms per step (target ≤ 1.02 × (critical path + planning));
    /// with `--planner-tps N`, streamed against whole-plan planning (first dispatch, saved_of_max).
    Makespan(args::MakespanArgs),
    /// Steps per second and per-edge latency through the Redis store (a private redis-server
    /// unless --url is given).
    Redis(redis_bench::RedisBenchArgs),
    /// Memory under a bounded load: RSS and what the store keeps, memory store with a byte cap or
    /// Redis with a task TTL (must go flat once the cap or TTL is reached).
    Retention(retention::RetentionArgs),
    /// Latency `POST /v1/execute` adds over calling the simulator directly (open-loop load).
    ExecuteOverhead(execute_overhead::ExecuteOverheadArgs),
    /// Cost of the mixed 200-task workload routed over a 7B and a 14B tier versus all on the 14B.
    RoutingCost(routing_cost::RoutingCostArgs),
    /// Per-task budgets under concurrency: admitted, refused, re-planned, largest overspend.
    Budget(budget::BudgetArgs),
    /// A bounded soak under faults: kill -9 of workers, a Redis and an API restart, then 0 lost,
    /// 0 stuck, failures dead-lettered, budgets held, billed >= served (exit 1 otherwise).
    Chaos(chaos::ChaosArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("planex-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<ExitCode> = runtime.block_on(async {
        match cli.command {
            Command::Overhead(args) => overhead::run(args).await,
            Command::Retention(args) => retention::run(args).await,
            Command::Http(args) => http::run(args).await,
            Command::Makespan(args) => makespan::run(args).await,
            Command::Redis(args) => redis_bench::run(args).await,
            Command::ExecuteOverhead(args) => execute_overhead::run(args).await,
            Command::RoutingCost(args) => routing_cost::run(args).await,
            Command::Budget(args) => budget::run(args).await,
            Command::Chaos(args) => chaos::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("planex-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Console logs on stderr, filtered by PLANEX_LOG (default: errors only), as the `planex` CLI does.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLANEX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
}
