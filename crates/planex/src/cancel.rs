//! `planex cancel ID`: asks a running `planex serve` to cancel a task (`POST
//! /v1/tasks/{id}/cancel`) and prints what it stopped.
//!
//! Key decision: the CLI only talks HTTP here (the server owns the budget settlement), so it works
//! against any replica of a deployment, with the caller's API key.

use anyhow::{Context, Result};
use std::process::ExitCode;

/// `planex cancel …`.
#[derive(clap::Args)]
pub struct CancelArgs {
    /// The task id (as `POST /v1/tasks` returned it).
    id: String,
    /// The running `planex serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (when the server requires one; default: `PLANEX_API_KEY`).
    #[arg(long, env = "PLANEX_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `planex cancel`: exit 0 when the task was cancelled, 1 when it had finished already or
/// could not be cancelled (the reason is printed).
pub async fn run(args: CancelArgs) -> Result<ExitCode> {
    let endpoint = format!(
        "{}/v1/tasks/{}/cancel",
        args.url.trim_end_matches('/'),
        args.id
    );
    let client = planex_llm::default_client()?;
    let mut request = client.post(&endpoint);
    if let Some(key) = &args.api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {endpoint} failed; is `planex serve` running there?"))?;
    let status = response.status();
    let body = response.text().await.context("reading the cancel answer")?;
    let value: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("POST {endpoint} answered HTTP {status} without JSON: {body}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or(&body);
        eprintln!("planex: cancel {}: HTTP {status}: {message}", args.id);
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
