//! `planex dlq list|show|replay|purge`: the dead-letter queue of a running `planex serve`, with the
//! caller's API key (`/v1/dead-letters`), so it works on either store and any replica.
//!
//! Key decision: the CLI only talks HTTP, like `planex cancel`: a replay is a submission (checked,
//! estimated and booked by the server), and tenants see only their own letters.

use crate::api_call::{Answer, ServerArgs};
use anyhow::{Result, bail};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// `planex dlq …`.
#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// List dead letters, newest first (`--group`: counts by tool and error instead).
    List {
        #[command(flatten)]
        filter: Filter,
        /// Most letters to show (all pages are read up to this many).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Count the letters by tool and error instead of listing them (reads every page).
        #[arg(long)]
        group: bool,
        /// Print JSON lines (one letter each) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter in full.
    Show {
        /// The letter's id (`MS-SEQ`, as `list` shows it).
        id: String,
    },
    /// Replay a dead letter: a new task repeating its task, reusing the completed steps' results.
    Replay {
        /// The letter's id.
        id: String,
        /// Purge the letter once the new task is recorded.
        #[arg(long)]
        purge: bool,
    },
    /// Purge dead letters: the ids given, or with --all every letter matching the filters.
    Purge {
        /// Letter ids.
        ids: Vec<String>,
        /// Purge every letter matching --tool and --error (all of them without filters).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[command(flatten)]
        filter: Filter,
    },
}

/// The filters of `list` and `purge --all`.
#[derive(clap::Args, Default)]
struct Filter {
    /// Only letters of this tool.
    #[arg(long)]
    tool: Option<String>,
    /// Only letters whose error contains this text (ignoring case).
    #[arg(long)]
    error: Option<String>,
}

/// Runs `planex dlq`: exit 0 on success, 1 when the server refused (the reason is printed).
pub async fn run(args: DlqArgs) -> Result<ExitCode> {
    let server = &args.server;
    match args.command {
        DlqCommand::List {
            filter,
            limit,
            group,
            json,
        } => {
            let letters = collect(server, &filter, if group { usize::MAX } else { limit }).await?;
            if group {
                print_groups(&letters);
            } else if json {
                for letter in &letters {
                    println!("{}", serde_json::to_string(letter)?);
                }
            } else {
                print_table(&letters);
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Show { id } => {
            let answer = server
                .call(
                    Method::GET,
                    &format!("/v1/dead-letters/{}", segment(&id)),
                    None,
                )
                .await?;
            if !answer.status.is_success() {
                return refused("show", &id, &answer);
            }
            println!("{}", serde_json::to_string_pretty(&answer.body)?);
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay { id, purge } => {
            let path = format!("/v1/dead-letters/{}/replay?purge={purge}", segment(&id));
            let answer = server.call(Method::POST, &path, None).await?;
            if !answer.status.is_success() {
                return refused("replay", &id, &answer);
            }
            let b = &answer.body;
            println!(
                "Dead letter {id} replayed as task {} (retry of {}): {} reused, {} run again{}; follow it at {}",
                text(&b["task_id"]),
                text(&b["retry_of"]),
                steps(count(&b["reused_steps"])),
                steps(count(&b["rerun_steps"])),
                if b["purged"] == true {
                    ", letter purged"
                } else {
                    ""
                },
                text(&b["location"]),
            );
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Purge { ids, all, filter } => {
            let ids = if all {
                collect(server, &filter, usize::MAX)
                    .await?
                    .iter()
                    .map(|l| text(&l["id"]))
                    .collect()
            } else if ids.is_empty() {
                bail!(
                    "name the letters to purge (ids from `planex dlq list`), or pass --all (with --tool/--error to narrow it)"
                );
            } else {
                ids
            };
            let mut failed = 0;
            for id in &ids {
                let answer = server
                    .call(
                        Method::DELETE,
                        &format!("/v1/dead-letters/{}", segment(id)),
                        None,
                    )
                    .await?;
                if !answer.status.is_success() {
                    refused("purge", id, &answer)?;
                    failed += 1;
                }
            }
            let purged = ids.len() - failed;
            println!(
                "{purged} dead letter{} purged",
                if purged == 1 { "" } else { "s" }
            );
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Up to `limit` letters matching `filter`, following `next_cursor` page by page.
async fn collect(server: &ServerArgs, filter: &Filter, limit: usize) -> Result<Vec<Value>> {
    let mut letters = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_owned())];
        query.extend(filter.tool.clone().map(|t| ("tool", t)));
        query.extend(filter.error.clone().map(|e| ("error", e)));
        query.extend(cursor.clone().map(|c| ("cursor", c)));
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        let path = format!("/v1/dead-letters?{}", query.join("&"));
        let answer = server.call(Method::GET, &path, None).await?;
        if !answer.status.is_success() {
            bail!(
                "GET /v1/dead-letters: HTTP {}: {}",
                answer.status,
                answer.message()
            );
        }
        if let Some(page) = answer.body["dead_letters"].as_array() {
            letters.extend(page.iter().cloned());
        }
        cursor = answer.body["next_cursor"].as_str().map(str::to_owned);
        if letters.len() >= limit || cursor.is_none() {
            letters.truncate(limit);
            return Ok(letters);
        }
    }
}

fn refused(action: &str, id: &str, answer: &Answer) -> Result<ExitCode> {
    eprintln!(
        "planex: dlq {action} {id}: HTTP {}: {}",
        answer.status,
        answer.message()
    );
    Ok(ExitCode::FAILURE)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn count(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// `1 step`, `2 steps`.
fn steps(n: usize) -> String {
    format!("{n} step{}", if n == 1 { "" } else { "s" })
}

/// `text` as one URL path segment.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// The first line of an error, cut to `chars` characters.
fn short(error: &str, chars: usize) -> String {
    planex_core::clip_chars(error.lines().next().unwrap_or(""), chars)
}

fn print_table(letters: &[Value]) {
    if letters.is_empty() {
        println!("No dead letters.");
        return;
    }
    println!(
        "{:<17} {:<36} {:>4} {:<16} {:<10} {:>5} {:>5}  ERROR",
        "ID", "TASK", "STEP", "TOOL", "TIER", "DELIV", "TRIES"
    );
    for l in letters {
        println!(
            "{:<17} {:<36} {:>4} {:<16} {:<10} {:>5} {:>5}  {}",
            text(&l["id"]),
            text(&l["task_id"]),
            text(&l["step_id"]),
            text(&l["tool_name"]),
            text(&l["tier"]),
            text(&l["deliveries"]),
            text(&l["attempts"]),
            short(&text(&l["error"]), 80),
        );
    }
}

fn print_groups(letters: &[Value]) {
    let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in letters {
        let key = (text(&l["tool_name"]), short(&text(&l["error"]), 80));
        *groups.entry(key).or_default() += 1;
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    println!("{:>6}  {:<16}  ERROR", "COUNT", "TOOL");
    for ((tool, error), n) in groups {
        println!("{n:>6}  {tool:<16}  {error}");
    }
}
