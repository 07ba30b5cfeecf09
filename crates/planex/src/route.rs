//! `planex route explain <plan.json>`: which tier each step of a plan would run on, and why.

use anyhow::{Context, Result};
use planex_app::Config as Settings;
use planex_engine::{RouteDecision, explain_plan};
use std::path::PathBuf;
use std::process::ExitCode;

/// `planex route …`.
#[derive(clap::Args)]
pub struct RouteArgs {
    #[command(subcommand)]
    command: RouteCommand,
}

#[derive(clap::Subcommand)]
enum RouteCommand {
    /// Validate a plan file and print the tier each step would run on and the rule that chose it.
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// A plan as JSON: `{"steps": [{step_id, tool_name, args, depends_on, tier?}]}`.
    plan: PathBuf,
    /// Config with the tools, tiers and `[routing]` rules (default: the embedded default).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Leave out the synthesis step.
    #[arg(long)]
    no_synthesis: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `planex route …`.
pub fn run(args: RouteArgs) -> Result<ExitCode> {
    match args.command {
        RouteCommand::Explain(args) => explain(&args),
    }
}

fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let settings = Settings::load(args.config.as_deref())?;
    let catalog = settings.catalog()?;
    let text = std::fs::read_to_string(&args.plan)
        .with_context(|| format!("reading the plan file {}", args.plan.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not JSON; a plan is {{\"steps\": [{{\"step_id\", \"tool_name\", \"args\", \"depends_on\"}}]}}",
            args.plan.display()
        )
    })?;
    let synthesis = settings.engine.synthesis && !args.no_synthesis;
    let decisions = explain_plan(
        value,
        &catalog,
        &settings.engine.routing,
        &settings.engine.planner_tier,
        synthesis,
    )
    .with_context(|| format!("the plan in {} is invalid", args.plan.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&decisions)?);
    } else {
        print_table(&decisions);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(decisions: &[RouteDecision]) {
    let tool_width = decisions
        .iter()
        .map(|d| d.tool.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let tier_width = decisions
        .iter()
        .map(|d| d.tier.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    println!(
        "{:>4}  {:<tool_width$}  {:<tier_width$}  {:>8}  why",
        "step", "tool", "tier", "~tokens"
    );
    for d in decisions {
        println!(
            "{:>4}  {:<tool_width$}  {:<tier_width$}  {:>8}  {}",
            d.step_id.to_string(),
            d.tool,
            d.tier,
            d.estimated_input_tokens,
            d.reason
        );
    }
    let mut per_tier: std::collections::BTreeMap<&str, usize> = Default::default();
    for d in decisions {
        *per_tier.entry(d.tier.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = per_tier
        .iter()
        .map(|(tier, n)| format!("{tier}: {n}"))
        .collect();
    println!("steps per tier: {}", summary.join(", "));
}
