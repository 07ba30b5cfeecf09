//! The price model: token usage, tier prices and the per-call cost records a task accumulates.
//!
//! Money is `rust_decimal::Decimal`, never `f64`: sums over millions of calls must be exact and
//! reproducible, and are rounded only for display.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Token usage of one model call, as reported by the server's `usage` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Prompt tokens served from the server's prefix cache, when reported.
    #[serde(default)]
    pub cached_tokens: u64,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Adds another call's usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cached_tokens += other.cached_tokens;
    }
}

/// The price of a tier: either a GPU pool billed by the hour, or an API billed per token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Price {
    /// A self-hosted GPU pool: cost per token = `usd_per_hour / (tokens_per_second * 3600)`,
    /// the same for prompt and completion tokens (the reference cost table's model).
    GpuHour {
        /// Rental price of one node per hour, in USD.
        usd_per_hour: Decimal,
        /// Aggregate throughput of one node in tokens per second.
        tokens_per_second: Decimal,
    },
    /// An API provider with separate input and output prices per million tokens.
    PerMillion {
        /// USD per million prompt tokens.
        usd_per_million_input: Decimal,
        /// USD per million completion tokens.
        usd_per_million_output: Decimal,
    },
}

impl Price {
    /// A price of zero (tools that make no model call, tests).
    pub fn free() -> Self {
        Price::PerMillion {
            usd_per_million_input: Decimal::ZERO,
            usd_per_million_output: Decimal::ZERO,
        }
    }

    /// USD per million tokens for prompt and completion tokens.
    pub fn per_million(&self) -> (Decimal, Decimal) {
        match self {
            Price::GpuHour {
                usd_per_hour,
                tokens_per_second,
            } => {
                if tokens_per_second.is_zero() {
                    return (Decimal::ZERO, Decimal::ZERO);
                }
                let per_million = *usd_per_hour * Decimal::from(1_000_000u32)
                    / (*tokens_per_second * Decimal::from(3600u32));
                (per_million, per_million)
            }
            Price::PerMillion {
                usd_per_million_input,
                usd_per_million_output,
            } => (*usd_per_million_input, *usd_per_million_output),
        }
    }

    /// The exact cost of one call with this usage.
    pub fn cost(&self, usage: &Usage) -> Decimal {
        let (input, output) = self.per_million();
        (input * Decimal::from(usage.prompt_tokens)
            + output * Decimal::from(usage.completion_tokens))
            / Decimal::from(1_000_000u32)
    }
}

/// Which part of a task a model call served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The planner call (and its one re-plan).
    Plan,
    /// A step of the plan.
    Step,
    /// The optional synthesis of the final answer on the planner tier.
    Synthesis,
    /// A tool a step's model called (function calling): no model call of its own, priced 0; its
    /// record says which tool ran, in which round, and how long it took.
    ToolCall,
    /// The joiner's decision after a plan's steps ran (finish, or add steps): a call on the
    /// planner tier, one per round (`[engine] max_replans`).
    Replan,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Plan => "plan",
            Stage::Step => "step",
            Stage::Synthesis => "synthesis",
            Stage::ToolCall => "tool_call",
            Stage::Replan => "replan",
        })
    }
}

/// One priced model call, the unit of cost attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Plan, step or synthesis.
    pub stage: Stage,
    /// The tier whose endpoint served the call.
    pub tier: String,
    /// The model name sent to the endpoint.
    pub model: String,
    /// The tool the call ran for (steps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The step the call ran for (steps and synthesis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<crate::StepId>,
    /// Token usage reported by the server.
    pub usage: Usage,
    /// Exact cost in USD under the tier's price.
    pub cost_usd: Decimal,
    /// Set on calls that are not a step's ordinary first execution (docs/ARCHITECTURE.md §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<CallMark>,
    /// The function-calling round (1 = the first model call) of a step whose `llm` tool uses
    /// tools: set on its model calls and on the tool calls they asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Wall time of the call in milliseconds (retries included), where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The completion's `id` as the model server answered it (`chatcmpl-…`), for a call whose
    /// answer arrived: it ties the bill to the server's own log of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

/// Why a call record is not an ordinary one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallMark {
    /// Made by an execution of a step that an earlier one started and did not finish (its worker
    /// lost its lease, or was stopped): billed like any call.
    Redelivered,
    /// Cut off by a worker crash before its usage was known: billed at the worst case that was
    /// reserved for it (its usage is that worst case's tokens).
    Interrupted,
    /// Completed by an execution of the step that recorded no outcome (its worker died or was
    /// stopped first), recorded by the execution that did: billed at its real usage.
    Abandoned,
}

/// Tokens and money summed over a group of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostTotals {
    /// Number of model calls.
    pub calls: u64,
    /// Summed usage.
    pub usage: Usage,
    /// Summed cost in USD.
    pub cost_usd: Decimal,
}

impl CostTotals {
    fn add(&mut self, record: &CallRecord) {
        self.calls += 1;
        self.usage.add(&record.usage);
        self.cost_usd += record.cost_usd;
    }
}

/// A task's cost broken down by stage, tier and tool (derived from its call records).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// Everything.
    pub total: CostTotals,
    /// Keyed by stage name (`plan`, `step`, `synthesis`).
    pub by_stage: BTreeMap<String, CostTotals>,
    /// Keyed by tier name.
    pub by_tier: BTreeMap<String, CostTotals>,
    /// Keyed by tool name (step calls only).
    pub by_tool: BTreeMap<String, CostTotals>,
}

impl CostBreakdown {
    /// Sums a list of call records.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a CallRecord>) -> Self {
        let mut out = CostBreakdown::default();
        for record in records {
            out.total.add(record);
            out.by_stage
                .entry(record.stage.to_string())
                .or_default()
                .add(record);
            out.by_tier
                .entry(record.tier.clone())
                .or_default()
                .add(record);
            if let Some(tool) = &record.tool {
                out.by_tool.entry(tool.clone()).or_default().add(record);
            }
        }
        out
    }
}

/// Formats USD for people: six decimals below one cent, else four.
pub fn format_usd(amount: Decimal) -> String {
    let places = if amount.abs() < Decimal::new(1, 2) {
        6
    } else {
        4
    };
    format!("${}", amount.round_dp(places))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn gpu_hour_prices_match_the_reference_table() {
        let h200 = Price::GpuHour {
            usd_per_hour: d("4.54"),
            tokens_per_second: d("2500"),
        };
        let l40s = Price::GpuHour {
            usd_per_hour: d("0.96"),
            tokens_per_second: d("6000"),
        };
        assert_eq!(h200.per_million().0.round_dp(3), d("0.504"));
        assert_eq!(l40s.per_million().0.round_dp(3), d("0.044"));
        let react = h200.cost(&Usage {
            prompt_tokens: 15_000,
            ..Usage::default()
        });
        // 15k tokens cost 0.0075666… USD; the reference table truncates to 0.00756.
        assert_eq!(
            react.round_dp_with_strategy(5, rust_decimal::RoundingStrategy::ToZero),
            d("0.00756")
        );
        assert_eq!(react.round_dp(5), d("0.00757"));
    }

    #[test]
    fn per_million_prices_split_input_and_output() {
        let api = Price::PerMillion {
            usd_per_million_input: d("1"),
            usd_per_million_output: d("3"),
        };
        let cost = api.cost(&Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            cached_tokens: 0,
        });
        assert_eq!(cost, d("4"));
    }

    #[test]
    fn breakdown_sums_by_stage_tier_and_tool() {
        let rec = |stage, tier: &str, tool: Option<&str>, p, c| CallRecord {
            stage,
            tier: tier.into(),
            model: "m".into(),
            tool: tool.map(Into::into),
            step_id: None,
            usage: Usage {
                prompt_tokens: p,
                completion_tokens: c,
                cached_tokens: 0,
            },
            cost_usd: Decimal::from(p + c),
            mark: None,
            round: None,
            latency_ms: None,
            response_id: None,
        };
        let records = [
            rec(Stage::Plan, "planner", None, 10, 5),
            rec(Stage::Step, "small", Some("extract"), 3, 2),
            rec(Stage::Step, "small", Some("extract"), 1, 1),
        ];
        let b = CostBreakdown::from_records(&records);
        assert_eq!(b.total.calls, 3);
        assert_eq!(b.total.usage.total(), 22);
        assert_eq!(b.by_stage["step"].cost_usd, Decimal::from(7));
        assert_eq!(b.by_tier["planner"].usage.prompt_tokens, 10);
        assert_eq!(b.by_tool["extract"].calls, 2);
    }
}
