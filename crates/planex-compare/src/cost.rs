//! `planex cost`: the price model alone. Tier prices (GPU $/h and tokens/s, or $/1M tokens) and a
//! workload profile (calls and tokens per call) give the cost per task and per 1,000 tasks of a ReAct
//! loop and of plan-and-execute. With no flags it prints the reference table.
//!
//! Key decision: the arithmetic and its rounding live in [`CostComparison`] (documented in
//! `profile.rs`); this file only reads flags or a config's tier prices and prints.

use crate::CompareError;
use crate::profile::{
    CallProfile, CostComparison, QuotedPrice, Rounding, WorkloadProfile, display_per_task,
    display_per_thousand, display_price, display_savings_percent,
};
use planex_core::{Decimal, Price};
use std::path::PathBuf;

/// Arguments of `planex cost` (flatten into a clap subcommand).
#[derive(clap::Args, Clone, Debug)]
pub struct CostArgs {
    /// Planner tier: GPU price in USD per hour (default 4.54, an H200 SXM5).
    #[arg(long)]
    pub planner_usd_per_hour: Option<Decimal>,
    /// Planner tier: aggregate tokens per second of one GPU node (default 2500).
    #[arg(long)]
    pub planner_tokens_per_second: Option<Decimal>,
    /// Planner tier: API price in USD per 1M tokens instead of a GPU price.
    #[arg(long, conflicts_with_all = ["planner_usd_per_hour", "planner_tokens_per_second"])]
    pub planner_usd_per_million: Option<Decimal>,
    /// Planner tier: API price per 1M completion tokens (default: the input price).
    #[arg(long, requires = "planner_usd_per_million")]
    pub planner_usd_per_million_output: Option<Decimal>,
    /// Executor tier: GPU price in USD per hour (default 0.96, an L40S).
    #[arg(long)]
    pub executor_usd_per_hour: Option<Decimal>,
    /// Executor tier: aggregate tokens per second of one GPU node (default 6000).
    #[arg(long)]
    pub executor_tokens_per_second: Option<Decimal>,
    /// Executor tier: API price in USD per 1M tokens instead of a GPU price.
    #[arg(long, conflicts_with_all = ["executor_usd_per_hour", "executor_tokens_per_second"])]
    pub executor_usd_per_million: Option<Decimal>,
    /// Executor tier: API price per 1M completion tokens (default: the input price).
    #[arg(long, requires = "executor_usd_per_million")]
    pub executor_usd_per_million_output: Option<Decimal>,
    /// Take both tiers' prices from this config file instead of the flags above.
    #[arg(long, short, conflicts_with_all = [
        "planner_usd_per_hour", "planner_tokens_per_second", "planner_usd_per_million",
        "executor_usd_per_hour", "executor_tokens_per_second", "executor_usd_per_million"])]
    pub config: Option<PathBuf>,
    /// With --config: the tier that runs the steps (the planner tier comes from [engine]).
    #[arg(long, default_value = "executor", requires = "config")]
    pub executor_tier: String,
    /// ReAct model calls per task (may be an average, e.g. 9.4).
    #[arg(long, default_value = "10")]
    pub react_calls: Decimal,
    /// Tokens per ReAct call, prompt plus completion (the average over the growing history).
    #[arg(long, default_value = "1500")]
    pub react_tokens: Decimal,
    /// Plan-and-execute calls on the planner tier per task (the plan; 2 with a synthesis call).
    #[arg(long, default_value = "1")]
    pub planner_calls: Decimal,
    /// Tokens per planner call.
    #[arg(long, default_value = "2000")]
    pub planner_tokens: Decimal,
    /// Plan-and-execute step calls on the executor tier per task.
    #[arg(long, default_value = "9")]
    pub executor_calls: Decimal,
    /// Tokens per executor call.
    #[arg(long, default_value = "800")]
    pub executor_tokens: Decimal,
    /// Share (0-1) of tokens that are completion tokens (matters only for split API prices).
    #[arg(long, default_value = "0")]
    pub completion_share: Decimal,
    /// Use full-precision prices instead of quoting them to 3 decimals per 1M tokens.
    #[arg(long)]
    pub exact: bool,
    /// Print one JSON document (exact decimals as strings) instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn gpu_or_api(
    who: &str,
    per_hour: Option<Decimal>,
    tps: Option<Decimal>,
    api: Option<Decimal>,
    api_output: Option<Decimal>,
    default: (Decimal, Decimal),
) -> Result<Price, CompareError> {
    if let Some(input) = api {
        return Ok(Price::PerMillion {
            usd_per_million_input: input,
            usd_per_million_output: api_output.unwrap_or(input),
        });
    }
    let usd_per_hour = per_hour.unwrap_or(default.0);
    let tokens_per_second = tps.unwrap_or(default.1);
    if tokens_per_second <= Decimal::ZERO || usd_per_hour < Decimal::ZERO {
        return Err(CompareError::InvalidArgument(format!(
            "the {who} tier needs a price >= 0 and tokens per second > 0 (got ${usd_per_hour}/h at {tokens_per_second} tok/s)"
        )));
    }
    Ok(Price::GpuHour {
        usd_per_hour,
        tokens_per_second,
    })
}

fn prices(args: &CostArgs) -> Result<(Price, Price), CompareError> {
    if let Some(path) = &args.config {
        let settings =
            planex_app::Config::load(Some(path)).map_err(|source| CompareError::Config {
                path: Some(path.clone()),
                source,
            })?;
        let find = |name: &str| {
            settings
                .tiers
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.price.clone())
                .ok_or_else(|| CompareError::UnknownTier {
                    path: path.clone(),
                    tier: name.to_owned(),
                    known: settings.tiers.iter().map(|t| t.name.clone()).collect(),
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
        // An H200 SXM5: $4.54/h at 2,500 tok/s.
        (Decimal::new(454, 2), Decimal::from(2500)),
    )?;
    let executor = gpu_or_api(
        "executor",
        args.executor_usd_per_hour,
        args.executor_tokens_per_second,
        args.executor_usd_per_million,
        args.executor_usd_per_million_output,
        // An L40S: $0.96/h at 6,000 tok/s.
        (Decimal::new(96, 2), Decimal::from(6000)),
    )?;
    Ok((planner, executor))
}

fn profile(args: &CostArgs) -> Result<WorkloadProfile, CompareError> {
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
            return Err(CompareError::InvalidArgument(format!(
                "{flag} must be >= 0, got {value}"
            )));
        }
    }
    if args.completion_share < Decimal::ZERO || args.completion_share > Decimal::ONE {
        return Err(CompareError::InvalidArgument(format!(
            "--completion-share must be between 0 and 1, got {}",
            args.completion_share
        )));
    }
    Ok(WorkloadProfile {
        react: CallProfile::new(args.react_calls, args.react_tokens),
        planner: CallProfile::new(args.planner_calls, args.planner_tokens),
        executor: CallProfile::new(args.executor_calls, args.executor_tokens),
        completion_share: args.completion_share,
    })
}

/// Both architectures priced on one profile and two tier prices: what `planex cost` prints.
#[derive(Debug, Clone)]
pub struct CostReport {
    /// Calls and tokens per task of each architecture.
    pub profile: WorkloadProfile,
    /// The planner tier's price (ReAct runs entirely there).
    pub planner_price: Price,
    /// The executor tier's price.
    pub executor_price: Price,
    /// The priced comparison.
    pub comparison: CostComparison,
}

impl CostReport {
    /// One JSON document: the inputs, the comparison (exact decimals as strings), the costs per
    /// 1,000 tasks and the savings fraction.
    pub fn json(&self) -> serde_json::Value {
        let comparison = &self.comparison;
        serde_json::json!({
            "profile": self.profile,
            "planner_tier_price": self.planner_price,
            "executor_tier_price": self.executor_price,
            "comparison": comparison,
            "react_per_thousand": comparison.react.per_thousand(),
            "plan_execute_per_thousand": comparison.plan_execute.per_thousand(),
            "savings": comparison.savings(),
        })
    }

    /// The terminal table: tier prices, per-task and per-1,000-task costs, and the savings.
    pub fn table(&self) -> String {
        table(&self.comparison, &self.planner_price, &self.executor_price)
    }
}

/// Prices the profile of `args` with the tier prices of its flags or config.
///
/// # Errors
/// A negative or out-of-range figure, a GPU price without throughput, or a config that cannot be
/// loaded or lacks the executor tier.
pub fn cost_report(args: &CostArgs) -> Result<CostReport, CompareError> {
    let (planner_price, executor_price) = prices(args)?;
    let profile = profile(args)?;
    let rounding = if args.exact {
        Rounding::Exact
    } else {
        Rounding::Reference
    };
    let comparison = CostComparison::new(&profile, &planner_price, &executor_price, rounding);
    Ok(CostReport {
        profile,
        planner_price,
        executor_price,
        comparison,
    })
}

/// `planex cost`: prices the profile ([`cost_report`]) and prints the table, or one JSON document
/// with `--json`; returns the report.
///
/// # Errors
/// As [`cost_report`], or the report cannot be written as JSON.
pub fn cost(args: &CostArgs) -> Result<CostReport, CompareError> {
    let report = cost_report(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.table());
    }
    Ok(report)
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

fn per_million(quoted: &QuotedPrice) -> String {
    let input = display_price(quoted.input);
    let output = display_price(quoted.output);
    if input == output {
        format!("${input}")
    } else {
        format!("${input} in / ${output} out")
    }
}

/// Thousands separators for a whole or decimal number (`15000` → `15,000`).
pub(crate) fn group(value: Decimal) -> String {
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
fn table(c: &CostComparison, planner: &Price, executor: &Price) -> String {
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
