//! `planex tools list`: the tool catalog a config gives plans (what `GET /v1/tools` serves);
//! `planex tools call`: one tool run once, for debugging it.

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
    /// Run one tool once with literal args and print its result (for debugging a tool: no plan,
    /// no placeholders; llm tools run on their tier, simulated unless --config says otherwise).
    Call(CallArgs),
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

#[derive(clap::Args)]
struct CallArgs {
    /// The tool's catalog name (`planex tools list`).
    name: String,
    /// Its args as a JSON object, e.g. '{"path": "/srv/data/a.txt"}'.
    #[arg(long, default_value = "{}")]
    args: String,
    /// Config with the tools, tiers and MCP servers (default: the embedded default).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// Runs `planex tools …`.
pub async fn run(args: ToolsArgs) -> Result<ExitCode> {
    match args.command {
        ToolsCommand::List(args) => list(&args).await,
        ToolsCommand::Call(args) => call(&args).await,
    }
}

async fn call(args: &CallArgs) -> Result<ExitCode> {
    let Ok(serde_json::Value::Object(tool_args)) = serde_json::from_str(&args.args) else {
        anyhow::bail!(
            "--args must be a JSON object, e.g. '{{\"query\": \"H200\"}}'; got {}",
            args.args
        );
    };
    let settings = Settings::load(args.config.as_deref())?;
    let app = planex_app::App::from_config(settings, planex_app::Workers::None).await?;
    if app.is_simulated() {
        eprintln!("planex: llm tools run on the built-in simulator: their output is SIMULATED");
    }
    let outcome = app
        .engine()
        .executor()
        .call_tool(
            &args.name,
            &tool_args,
            planex_core::StepId(1),
            &planex_llm::CallContext::default(),
        )
        .await;
    app.stop().await;
    let cost: planex_core::Decimal = outcome.calls.iter().map(|c| c.cost_usd).sum();
    match outcome.result {
        Ok(value) => {
            match value {
                serde_json::Value::String(text) => println!("{text}"),
                other => println!("{}", serde_json::to_string_pretty(&other)?),
            }
            eprintln!(
                "planex: {} ran in {} attempt(s), {} model call(s), ${cost}",
                args.name,
                outcome.attempts,
                outcome.calls.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("planex: {} failed: {error}", args.name);
            Ok(ExitCode::FAILURE)
        }
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
