//! `planex tools list`: the tool catalog a config gives plans (what `GET /v1/tools` serves).

use anyhow::Result;
use planex_app::Config as Settings;
use std::path::PathBuf;
use std::process::ExitCode;

/// `planex tools …`.
#[derive(clap::Args)]
pub struct ToolsArgs {
    #[command(subcommand)]
    command: ToolsCommand,
}

#[derive(clap::Subcommand)]
enum ToolsCommand {
    /// Print each tool plans may use: name, kind, tier, arguments and description (MCP servers
    /// are connected to list theirs).
    List(ListArgs),
}

#[derive(clap::Args)]
struct ListArgs {
    /// Config with the tools (default: the embedded default).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print JSON (one array of tools, as `GET /v1/tools` shows them, without availability).
    #[arg(long)]
    json: bool,
}

/// Runs `planex tools …`.
pub async fn run(args: ToolsArgs) -> Result<ExitCode> {
    match args.command {
        ToolsCommand::List(args) => list(&args).await,
    }
}

async fn list(args: &ListArgs) -> Result<ExitCode> {
    let settings = Settings::load(args.config.as_deref())?;
    // Connects the `[[mcp_servers]]` (starting stdio ones) to list their tools.
    let (catalog, _servers) = planex_app::connect_tools(&settings).await?;
    let mut tools: Vec<_> = catalog.specs().map(|tool| tool.summary()).collect();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tools)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<5} {:<10} ARGS (* required)",
        "TOOL", "KIND", "TIER"
    );
    for tool in &tools {
        let args: Vec<String> = tool
            .args
            .iter()
            .map(|arg| {
                let mark = if arg.required { "*" } else { "" };
                format!("{}{mark}: {}", arg.name, arg.kind)
            })
            .collect();
        println!(
            "{:<20} {:<5} {:<10} {}",
            tool.name,
            tool.kind,
            tool.tier,
            args.join(", ")
        );
        if let Some(server) = &tool.server {
            println!("{:<20} from MCP server {server}", "");
        }
        println!("{:<20} {}", "", tool.description);
    }
    Ok(ExitCode::SUCCESS)
}
