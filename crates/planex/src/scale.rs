//! `planex scale status`: per tier, queue depth, in-flight, p95 TTFT, healthy endpoints, the
//! desired node count and the reason — from a running server (`--url`) or from this process.

use anyhow::{Context, Result};
use planex_app::{App, Config, Workers};
use planex_engine::scaling::ScalingReport;
use std::path::PathBuf;
use std::process::ExitCode;

/// `planex scale …`.
#[derive(clap::Args)]
pub struct ScaleArgs {
    #[command(subcommand)]
    command: ScaleCommand,
}

#[derive(clap::Subcommand)]
enum ScaleCommand {
    /// Print the autoscaling decision per tier (the same report as `GET /v1/scaling`).
    Status(StatusArgs),
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Ask a running `planex serve` (e.g. http://127.0.0.1:8080) instead of probing from here.
    #[arg(long)]
    url: Option<String>,
    /// Config whose tiers and store to probe (default: the embedded default).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `planex scale …`.
pub async fn run(args: ScaleArgs) -> Result<ExitCode> {
    match args.command {
        ScaleCommand::Status(args) => status(&args).await,
    }
}

async fn status(args: &StatusArgs) -> Result<ExitCode> {
    let report = match &args.url {
        Some(url) => fetch(url).await?,
        None => {
            let settings = Config::load(args.config.as_deref())?;
            let local_note = (!settings.store.is_shared()).then_some(
                "note: the store is in memory, so queue depths are this process's (empty) and no \
                 TTFT has been measured yet; use --url to ask a running server, or a Redis store",
            );
            // No workers: this process only looks (endpoints are checked at start-up).
            let app = App::from_config(settings, Workers::None).await?;
            let report = app.engine().scaling_report().await;
            app.stop().await;
            if let (Some(note), false) = (local_note, args.json) {
                eprintln!("planex: {note}");
            }
            report?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch(url: &str) -> Result<ScalingReport> {
    let endpoint = format!("{}/v1/scaling", url.trim_end_matches('/'));
    let client = planex_llm::default_client()?;
    let response = client
        .get(&endpoint)
        .send()
        .await
        .with_context(|| format!("GET {endpoint} failed; is `planex serve` running there?"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .context("reading the scaling report")?;
    if !status.is_success() {
        anyhow::bail!("GET {endpoint} answered HTTP {status}: {body}");
    }
    serde_json::from_str(&body)
        .with_context(|| format!("GET {endpoint} did not return a scaling report: {body}"))
}

fn print_table(report: &ScalingReport) {
    let t = &report.thresholds;
    println!(
        "thresholds: planner p95 TTFT > {} s, executor queue depth > {}, scale in after {} s empty",
        t.planner_ttft_p95_seconds, t.executor_queue_depth, t.scale_in_after_seconds
    );
    println!(
        "{:<10} {:<11} {:>6} {:>9} {:>9} {:>8} {:>8} {:<10} reason",
        "tier", "rule", "queue", "in-flight", "p95 TTFT", "healthy", "desired", "action"
    );
    for d in &report.tiers {
        let ttft = d
            .ttft_p95_seconds
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s"));
        println!(
            "{:<10} {:<11} {:>6} {:>9} {:>9} {:>8} {:>8} {:<10} {}",
            d.tier,
            word(&d.rule),
            d.queue_depth,
            d.in_flight,
            ttft,
            d.healthy_endpoints,
            d.desired_replicas,
            word(&d.action),
            d.reason
        );
    }
}

/// The snake_case word serde writes for an enum value.
fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
