//! The `planex` command line: a thin layer that parses arguments and calls the library crates.

mod api_call;
mod cancel;
mod dlq;
mod output;
mod plan_file;
mod route;
mod run;
mod scale;
mod serve;
mod spend;
mod tools;
mod worker;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// planex: plan once on a big model, execute every step on small ones.
#[derive(Parser)]
#[command(name = "planex", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plan and run one task in this process (or run client-written plans: --plan, --plans). With
    /// no --config, both model tiers are the built-in simulator (synthetic output) and the store
    /// is in memory.
    Run(run::RunArgs),
    /// Serve the HTTP API (tasks, SSE events, plan, execute, OpenAI-compatible agent, spend,
    /// metrics). With no --config the tiers are simulated and the store is in memory.
    Serve(serve::ServeArgs),
    /// Serve the simulated OpenAI-compatible model server (synthetic output, for tests and demos).
    Sim(planex_sim::SimArgs),
    /// Run a JSONL workload both ways (ReAct baseline and plan-and-execute) and compare calls,
    /// tokens, cost and makespan (simulated tiers unless --config points at real servers).
    Compare(planex_compare::CompareArgs),
    /// The price model alone: cost per task and per 1,000 tasks of ReAct and plan-and-execute for
    /// a workload profile (no flags: the reference table).
    Cost(planex_compare::CostArgs),
    /// Draw the savings curves (steps 2-32, DAG width) into SVG charts, on simulated tiers.
    Curve(planex_compare::CurveArgs),
    /// Print a generated workload as JSONL (the files in workloads/ come from here).
    Workload(planex_compare::WorkloadArgs),
    /// Run one tier's worker against a shared (Redis) store: claims that tier's steps, runs them,
    /// records outcomes. SIGTERM: stop claiming, finish or release held steps, exit.
    Worker(worker::WorkerArgs),
    /// Routing: `planex route explain plan.json` prints each step's tier and why.
    Route(route::RouteArgs),
    /// Autoscaling: `planex scale status` prints each tier's desired node count and why.
    Scale(scale::ScaleArgs),
    /// Tools: `planex tools list` prints the catalog plans may use.
    Tools(tools::ToolsArgs),
    /// Cancel a task on a running `planex serve`: steps not started are skipped, steps running
    /// finish (and are billed); the task ends `cancelled` with its cost so far.
    Cancel(cancel::CancelArgs),
    /// Dead letters of a running `planex serve`: `planex dlq list|show|replay|purge` (a replay is
    /// a new task that reuses the completed steps' results and runs the rest again).
    Dlq(dlq::DlqArgs),
    /// Spend of a running `planex serve`: `planex spend export --month YYYY-MM --format csv|json`
    /// (by cost center, task type, stage and tier).
    Spend(spend::SpendArgs),
    /// Check a config file and print what it would run.
    Config {
        /// The config file (default: the embedded default).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Services say what goes wrong while they run (a lost store, a failed heartbeat): warnings
    // by default. One-shot commands keep their output to errors.
    let default_log = match cli.command {
        Command::Serve(_) | Command::Worker(_) => "warn",
        _ => "error",
    };
    // Console logs follow PLANEX_LOG; spans go to OTLP only when an OTEL_* endpoint is set
    // (planex-server's telemetry.rs).
    let telemetry = planex_server::telemetry::otlp_layer();
    let _flush_spans_at_exit = telemetry.guard;
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let console = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(
                tracing_subscriber::EnvFilter::try_from_env("PLANEX_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
            );
        tracing_subscriber::registry()
            .with(telemetry.layer)
            .with(console)
            .init();
    }
    if let Some(warning) = telemetry.warning {
        eprintln!("planex: warning: {warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("planex: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<std::process::ExitCode> = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Sim(args) => sim(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Worker(args) => worker::run(args).await,
            Command::Compare(args) => compare(&args).await,
            Command::Cost(args) => {
                planex_compare::cost(&args)?;
                Ok(std::process::ExitCode::SUCCESS)
            }
            Command::Curve(args) => {
                planex_compare::curve(&args).await?;
                Ok(std::process::ExitCode::SUCCESS)
            }
            Command::Workload(args) => {
                planex_compare::workload(&args)?;
                Ok(std::process::ExitCode::SUCCESS)
            }
            Command::Route(args) => route::run(args),
            Command::Scale(args) => scale::run(args).await,
            Command::Tools(args) => tools::run(args).await,
            Command::Cancel(args) => cancel::run(args).await,
            Command::Dlq(args) => dlq::run(args).await,
            Command::Spend(args) => spend::run(args).await,
            Command::Config { config } => check_config(config),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("planex: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn sim(args: planex_sim::SimArgs) -> Result<std::process::ExitCode> {
    let config = args.into_config()?;
    let model = config.model.clone();
    let server = planex_sim::SimServer::start(config).await?;
    // This line is the readiness signal scripts and tests wait for: the port is bound.
    println!(
        "planex sim listening on {} (model {model:?}; SIMULATED output)",
        server.base_url()
    );
    eprintln!(
        "planex sim: this is a simulated OpenAI-compatible server; its output is synthetic. Ctrl-C or SIGTERM stops it."
    );
    planex_app::shutdown_signal().await;
    server.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `planex compare`: prints the report; exits 1 (with the first error) when any run did not answer.
async fn compare(args: &planex_compare::CompareArgs) -> Result<std::process::ExitCode> {
    let report = planex_compare::compare(args).await?;
    if report.failed_runs() == 0 {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    eprintln!(
        "planex: {} plan-and-execute and {} ReAct runs did not finish with an answer; first error: {}",
        report.plan_execute.failed,
        report.react.failed,
        output::one_line(report.first_error().unwrap_or_default())
    );
    Ok(std::process::ExitCode::FAILURE)
}

fn check_config(path: Option<PathBuf>) -> Result<std::process::ExitCode> {
    let settings = planex_app::Config::load(path.as_deref())?;
    let catalog = settings.catalog()?;
    println!("config OK");
    println!("planner tier: {}", settings.engine.planner_tier);
    for tier in &settings.tiers {
        let (input, output) = tier.price.per_million();
        let serving = match settings.simulated.get(&tier.name) {
            Some(_) => "built-in simulator (synthetic output)".to_owned(),
            None => tier
                .endpoints
                .iter()
                .map(|e| e.base_url.clone())
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!(
            "tier {}: model {} at ${}/${} per 1M tokens in/out; {}",
            tier.name,
            tier.model,
            input.round_dp(4),
            output.round_dp(4),
            serving
        );
    }
    println!("tools ({}):\n{}", catalog.len(), catalog.prompt_listing());
    Ok(std::process::ExitCode::SUCCESS)
}
