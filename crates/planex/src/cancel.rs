//! `planex cancel ID`: asks a running `planex serve` to cancel a task (`POST
//! /v1/tasks/{id}/cancel`) and prints what it stopped.
//!
//! Key decision: the CLI only talks HTTP here (the server owns the budget settlement), so it works
//! against any replica of a deployment, with the caller's API key.

use crate::api_call::ServerArgs;
use anyhow::Result;
use reqwest::Method;
use std::process::ExitCode;

/// `planex cancel …`.
#[derive(clap::Args)]
pub struct CancelArgs {
    /// The task id (as `POST /v1/tasks` returned it).
    id: String,
    #[command(flatten)]
    server: ServerArgs,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `planex cancel`: exit 0 when the task was cancelled, 1 when it had finished already or
/// could not be cancelled (the reason is printed).
pub async fn run(args: CancelArgs) -> Result<ExitCode> {
    let path = format!("/v1/tasks/{}/cancel", args.id);
    let answer = args.server.call(Method::POST, &path, None).await?;
    let value = &answer.body;
    if args.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    }
    if !answer.status.is_success() {
        eprintln!(
            "planex: cancel {}: HTTP {}: {}",
            args.id,
            answer.status,
            answer.message()
        );
        return Ok(ExitCode::FAILURE);
    }
    if !args.json {
        let skipped = value["steps"].as_array().map_or(0, |steps| {
            steps.iter().filter(|s| s["error"] == "cancelled").count()
        });
        let running = value["steps"].as_array().map_or(0, |steps| {
            steps.iter().filter(|s| s["state"] == "running").count()
        });
        println!(
            "Task {} {}: {skipped} steps skipped, {running} in flight finish and are billed; cost so far ${}",
            args.id,
            value["status"].as_str().unwrap_or("?"),
            value["cost"]["total"]["cost_usd"].as_str().unwrap_or("?"),
        );
    }
    Ok(ExitCode::SUCCESS)
}
