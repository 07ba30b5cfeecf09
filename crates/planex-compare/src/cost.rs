//! `planex cost`: the price model alone. Tier prices (GPU $/h and tokens/s, or $/1M tokens) and a
//! workload profile (calls and tokens per call) give the cost per task and per 1,000 tasks of a ReAct
//! loop and of plan-and-execute. With no flags it prints the reference table.
//!
//! Key decision: the arithmetic and its rounding live in `planex_core::CostComparison` (documented
//! there); this file only reads flags or a config's tier prices and prints.

use anyhow::{Context, Result, bail};
use planex_core::{
    CallProfile, CostComparison, Decimal, Price, Rounding, WorkloadProfile, display_per_task,
    display_per_thousand, display_price, display_savings_percent,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `planex cost`.
#[derive(clap::Args)]
pub struct CostArgs {
    /// Planner tier: GPU price in USD per hour (default 4.54, an H200 SXM5).
    #[arg(long)]
    planner_usd_per_hour: Option<Decimal>,
    /// Planner tier: aggregate tokens per second of one GPU node (default 2500).
    #[arg(long)]
    planner_tokens_per_second: Option<Decimal>,
    /// Planner tier: API price in USD per 1M tokens instead of a GPU price.
    #[arg(long, conflicts_with_all = ["planner_usd_per_hour", "planner_tokens_per_second"])]
    planner_usd_per_million: Option<Decimal>,
    /// Planner tier: API price per 1M completion tokens (default: the input price).
    #[arg(long, requires = "planner_usd_per_million")]
    planner_usd_per_million_output: Option<Decimal>,
    /// Executor tier: GPU price in USD per hour (default 0.96, an L40S).
    #[arg(long)]
    executor_usd_per_hour: Option<Decimal>,
    /// Executor tier: aggregate tokens per second of one GPU node (default 6000).
    #[arg(long)]
    executor_tokens_per_second: Option<Decimal>,
    /// Executor tier: API price in USD per 1M tokens instead of a GPU price.
    #[arg(long, conflicts_with_all = ["executor_usd_per_hour", "executor_tokens_per_second"])]
    executor_usd_per_million: Option<Decimal>,
    /// Executor tier: API price per 1M completion tokens (default: the input price).
    #[arg(long, requires = "executor_usd_per_million")]
    executor_usd_per_million_output: Option<Decimal>,
    /// Take both tiers' prices from this config file instead of the flags above.
    #[arg(long, short, conflicts_with_all = [
        "planner_usd_per_hour", "planner_tokens_per_second", "planner_usd_per_million",
        "executor_usd_per_hour", "executor_tokens_per_second", "executor_usd_per_million"])]
    config: Option<PathBuf>,
    /// With --config: the tier that runs the steps (the planner tier comes from [engine]).
    #[arg(long, default_value = "executor", requires = "config")]
    executor_tier: String,
    /// ReAct model calls per task (may be an average, e.g. 9.4).
    #[arg(long, default_value = "10")]
    react_calls: Decimal,
    /// Tokens per ReAct call, prompt plus completion (the average over the growing history).
    #[arg(long, default_value = "1500")]
    react_tokens: Decimal,
    /// Plan-and-execute calls on the planner tier per task (the plan; 2 with a synthesis call).
    #[arg(long, default_value = "1")]
    planner_calls: Decimal,
    /// Tokens per planner call.
    #[arg(long, default_value = "2000")]
    planner_tokens: Decimal,
    /// Plan-and-execute step calls on the executor tier per task.
    #[arg(long, default_value = "9")]
    executor_calls: Decimal,
    /// Tokens per executor call.
    #[arg(long, default_value = "800")]
    executor_tokens: Decimal,
    /// Share (0-1) of tokens that are completion tokens (matters only for split API prices).
    #[arg(long, default_value = "0")]
    completion_share: Decimal,
    /// Use full-precision prices instead of quoting them to 3 decimals per 1M tokens.
    #[arg(long)]
    exact: bool,
    /// Print one JSON document (exact decimals as strings) instead of the table.
    #[arg(long)]
    json: bool,
}

fn gpu_or_api(
    who: &str,
    per_hour: Option<Decimal>,
    tps: Option<Decimal>,
    api: Option<Decimal>,
    api_output: Option<Decimal>,
    default: (&str, &str),
) -> Result<Price> {
    if let Some(input) = api {
        return Ok(Price::PerMillion {
            usd_per_million_input: input,
            usd_per_million_output: api_output.unwrap_or(input),
        });
    }
    let usd_per_hour = per_hour.unwrap_or(default.0.parse()?);
    let tokens_per_second = tps.unwrap_or(default.1.parse()?);
    if tokens_per_second <= Decimal::ZERO || usd_per_hour < Decimal::ZERO {
        bail!(
            "the {who} tier needs a price >= 0 and tokens per second > 0 (got ${usd_per_hour}/h at {tokens_per_second} tok/s)"
        );
    }
    Ok(Price::GpuHour {
        usd_per_hour,
        tokens_per_second,
    })
}

fn prices(args: &CostArgs) -> Result<(Price, Price)> {
    if let Some(path) = &args.config {
        let settings = planex_engine::config::Settings::load(Some(path))?;
        let find = |name: &str| {
            settings
                .tiers
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.price.clone())
                .with_context(|| {
                    let known: Vec<&str> = settings.tiers.iter().map(|t| t.name.as_str()).collect();
                    format!(
                        "{} has no tier {name:?} (tiers: {}); pass --executor-tier",
                        path.display(),
                        known.join(", ")
                    )
                })
        };
        return Ok((
            find(&settings.engine.planner_tier)?,
            find(&args.executor_tier)?,
        ));
    }
    let planner = gpu_or_api(
        "planner",
        args.planner_usd_per_hour,
        args.planner_tokens_per_second,
        args.planner_usd_per_million,
        args.planner_usd_per_million_output,
        ("4.54", "2500"),
    )?;
    let executor = gpu_or_api(
        "executor",
        args.executor_usd_per_hour,
        args.executor_tokens_per_second,
        args.executor_usd_per_million,
        args.executor_usd_per_million_output,
        ("0.96", "6000"),
    )?;
    Ok((planner, executor))
}

fn profile(args: &CostArgs) -> Result<WorkloadProfile> {
    let values = [
        ("--react-calls", args.react_calls),
        ("--react-tokens", args.react_tokens),
        ("--planner-calls", args.planner_calls),
        ("--planner-tokens", args.planner_tokens),
        ("--executor-calls", args.executor_calls),
        ("--executor-tokens", args.executor_tokens),
    ];
    for (flag, value) in values {
        if value < Decimal::ZERO {
            bail!("{flag} must be >= 0, got {value}");
        }
    }
    if args.completion_share < Decimal::ZERO || args.completion_share > Decimal::ONE {
        bail!(
            "--completion-share must be between 0 and 1, got {}",
            args.completion_share
        );
    }
    Ok(WorkloadProfile {
        react: CallProfile::new(args.react_calls, args.react_tokens),
        planner: CallProfile::new(args.planner_calls, args.planner_tokens),
        executor: CallProfile::new(args.executor_calls, args.executor_tokens),
        completion_share: args.completion_share,
    })
}

/// Runs `planex cost`.
pub fn run(args: CostArgs) -> Result<ExitCode> {
    let (planner, executor) = prices(&args)?;
    let profile = profile(&args)?;
    let rounding = if args.exact {
        Rounding::Exact
    } else {
        Rounding::Reference
    };
    let comparison = CostComparison::new(&profile, &planner, &executor, rounding);
    if args.json {
        let doc = serde_json::json!({
            "profile": profile,
            "planner_tier_price": planner,
            "executor_tier_price": executor,
            "comparison": comparison,
            "react_per_thousand": comparison.react.per_thousand(),
            "plan_execute_per_thousand": comparison.plan_execute.per_thousand(),
            "savings": comparison.savings(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&comparison, &planner, &executor));
    Ok(ExitCode::SUCCESS)
}

fn describe(price: &Price) -> String {
    match price {
        Price::GpuHour {
            usd_per_hour,
            tokens_per_second,
        } => format!(
            "${}/h at {} tok/s",
            usd_per_hour.normalize(),
            group(tokens_per_second.normalize())
        ),
        Price::PerMillion {
            usd_per_million_input,
            usd_per_million_output,
        } => format!(
            "API ${} in / ${} out per 1M",
            usd_per_million_input.normalize(),
            usd_per_million_output.normalize()
        ),
    }
}

fn per_million(quoted: &planex_core::QuotedPrice) -> String {
    let input = display_price(quoted.input);
    let output = display_price(quoted.output);
    if input == output {
        format!("${input}")
    } else {
        format!("${input} in / ${output} out")
    }
}

/// Thousands separators for a whole or decimal number (`15000` → `15,000`).
pub fn group(value: Decimal) -> String {
    let text = value.to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{out}")
    } else {
        format!("{sign}{out}.{frac}")
    }
}

/// The human table.
pub fn table(c: &CostComparison, planner: &Price, executor: &Price) -> String {
    let rounding = match c.rounding {
        Rounding::Reference => {
            "reference rounding: prices per 1M tokens quoted to 3 decimals; costs rounded up, savings down"
        }
        Rounding::Exact => "exact prices (--exact); costs rounded up for display, savings down",
    };
    let mut out = format!("Price model ({rounding})\n");
    out.push_str(&format!(
        "  {:<10} {:<34} {}\n",
        "tier", "price", "per 1M tokens"
    ));
    for (name, price, quoted) in [
        ("planner", planner, &c.planner_price),
        ("executor", executor, &c.executor_price),
    ] {
        out.push_str(&format!(
            "  {:<10} {:<34} {}\n",
            name,
            describe(price),
            per_million(quoted)
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "  {:<18} {:>10} {:>12} {:>11} {:>17}\n",
        "architecture", "calls/task", "tokens/task", "cost/task", "cost/1,000 tasks"
    ));
    for (name, arch) in [("ReAct", &c.react), ("plan-and-execute", &c.plan_execute)] {
        out.push_str(&format!(
            "  {:<18} {:>10} {:>12} {:>11} {:>17}\n",
            name,
            group(arch.calls.normalize()),
            group(arch.tokens.normalize()),
            format!("${}", display_per_task(arch.per_task)),
            format!("${}", display_per_thousand(arch.per_thousand())),
        ));
    }
    out.push('\n');
    match c.savings() {
        Some(savings) => out.push_str(&format!(
            "Savings: {}% per task with plan-and-execute\n",
            display_savings_percent(savings)
        )),
        None => out.push_str("Savings: undefined (the ReAct profile costs nothing)\n"),
    }
    out
}
