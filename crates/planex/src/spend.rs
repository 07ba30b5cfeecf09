//! `planex spend export`: a month of the caller's tenant's spend by cost center, task type, stage
//! and tier, as CSV or JSON, from a running `planex serve` (`GET /v1/spend/export`).

use crate::api_call::ServerArgs;
use anyhow::{Context, Result};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::path::PathBuf;
use std::process::ExitCode;

/// `planex spend …`.
#[derive(clap::Args)]
pub struct SpendArgs {
    #[command(subcommand)]
    command: SpendCommand,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Subcommand)]
enum SpendCommand {
    /// Export a month's spend by cost center, task type, stage and tier.
    Export {
        /// `YYYY-MM` (UTC; default: this month).
        #[arg(long)]
        month: Option<String>,
        /// `csv` or `json`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write it to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Runs `planex spend`: exit 0 on success, 1 when the server refused (the reason is printed).
pub async fn run(args: SpendArgs) -> Result<ExitCode> {
    let SpendCommand::Export {
        month,
        format,
        output,
    } = args.command;
    let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    let mut path = format!("/v1/spend/export?format={}", encode(&format));
    if let Some(month) = &month {
        path.push_str(&format!("&month={}", encode(month)));
    }
    let (status, text, headers) = args
        .server
        .call_text(reqwest::Method::GET, &path, None)
        .await?;
    let complete = headers
        .get("x-planex-complete")
        .is_none_or(|value| value.as_bytes() != b"false");
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        eprintln!("planex: spend export: HTTP {status}: {message}");
        return Ok(ExitCode::FAILURE);
    }
    if !complete {
        eprintln!(
            "planex: spend export: the export is incomplete: it stopped before the month's start (more tasks than one export reads); the JSON format says the same as `complete: false`"
        );
    }
    match output {
        Some(file) => std::fs::write(&file, &text)
            .with_context(|| format!("cannot write {}", file.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
