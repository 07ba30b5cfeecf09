//! The price model on its own (`planex cost`): a workload profile (model calls and tokens per call
//! for each architecture) and two tier prices give the cost per task and per 1,000 tasks of a ReAct
//! loop and of plan-and-execute, and the savings.
//!
//! Key decision: the *reference rounding*, which reproduces the reference cost table exactly
//! (H200 $4.54/h at 2,500 tok/s, L40S $0.96/h at 6,000 tok/s; ReAct 10 calls × 1,500 tokens;
//! plan-and-execute 2,000 planner tokens + 9 × 800 executor tokens → $0.504 and $0.044 per 1M tokens,
//! $0.00756 vs $0.00133 per task, $7.56 vs $1.33 per 1,000 tasks, 82% savings):
//! 1. each tier's price per 1M tokens is *quoted* rounded half away from zero to 3 decimals
//!    ($0.50444… → $0.504, $0.04444… → $0.044), and costs are computed from the quoted price, exactly;
//! 2. costs are displayed rounded **up** (away from zero): per task to 5 decimals, per 1,000 tasks to
//!    2 decimals, so a quote never understates a cost (plan-and-execute is exactly $0.0013248 per
//!    task, shown $0.00133; with exact prices ReAct would be $0.0075666…, not the table's $0.00756);
//! 3. savings = 1 − plan-and-execute / ReAct on the exact costs of step 1, displayed rounded **down**
//!    to a whole percent (82.47… → 82%), so a quote never overstates savings.
//!
//! [`Rounding::Exact`] skips step 1 (full-precision prices); display rounding stays as in 2 and 3.
//! Everything is `Decimal`; averages (9.4 calls per task) are fine.

use planex_core::{Decimal, Price};
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

/// Calls of one kind per task and their average size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallProfile {
    /// Model calls per task (may be an average).
    pub calls: Decimal,
    /// Tokens per call, prompt plus completion (may be an average).
    pub tokens_per_call: Decimal,
}

impl CallProfile {
    /// `calls` calls of `tokens_per_call` tokens each.
    pub fn new(calls: impl Into<Decimal>, tokens_per_call: impl Into<Decimal>) -> Self {
        CallProfile {
            calls: calls.into(),
            tokens_per_call: tokens_per_call.into(),
        }
    }

    /// Tokens per task.
    pub fn tokens(&self) -> Decimal {
        self.calls * self.tokens_per_call
    }
}

/// What one task costs in model calls under each architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadProfile {
    /// ReAct: every call on the planner tier, each carrying the history so far.
    pub react: CallProfile,
    /// Plan-and-execute calls on the planner tier (the plan, and a synthesis when used).
    pub planner: CallProfile,
    /// Plan-and-execute step calls on the executor tier.
    pub executor: CallProfile,
    /// Share (0–1) of each call's tokens that are completion tokens; matters only for prices with
    /// different input and output rates.
    pub completion_share: Decimal,
}

impl WorkloadProfile {
    /// The reference profile: ReAct 10 calls × 1,500 tokens; one planner call of 2,000 tokens and
    /// 9 executor calls × 800 tokens.
    pub fn reference() -> Self {
        WorkloadProfile {
            react: CallProfile::new(10, 1500),
            planner: CallProfile::new(1, 2000),
            executor: CallProfile::new(9, 800),
            completion_share: Decimal::ZERO,
        }
    }
}

/// How prices are rounded before costs are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Prices per 1M tokens quoted to 3 decimals, as in the reference table.
    Reference,
    /// Full-precision prices.
    Exact,
}

/// A tier's price per 1M tokens as used by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotedPrice {
    /// USD per 1M prompt tokens.
    pub input: Decimal,
    /// USD per 1M completion tokens.
    pub output: Decimal,
}

impl QuotedPrice {
    /// The quoted price of `price` under `rounding`.
    pub fn of(price: &Price, rounding: Rounding) -> Self {
        let (input, output) = price.per_million();
        let quote = |p: Decimal| match rounding {
            Rounding::Reference => {
                p.round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero)
            }
            Rounding::Exact => p,
        };
        QuotedPrice {
            input: quote(input),
            output: quote(output),
        }
    }

    /// Exact USD for `tokens` tokens of which `completion_share` are completion tokens.
    pub fn cost(&self, tokens: Decimal, completion_share: Decimal) -> Decimal {
        let completion = tokens * completion_share;
        ((tokens - completion) * self.input + completion * self.output)
            / Decimal::from(1_000_000u32)
    }
}

/// One architecture's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchitectureCost {
    /// Model calls per task.
    pub calls: Decimal,
    /// Tokens per task.
    pub tokens: Decimal,
    /// Exact USD per task (from the quoted prices).
    pub per_task: Decimal,
}

impl ArchitectureCost {
    /// Exact USD per 1,000 tasks.
    pub fn per_thousand(&self) -> Decimal {
        self.per_task * Decimal::from(1000u32)
    }
}

/// Both architectures priced on one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostComparison {
    /// The rounding used.
    pub rounding: Rounding,
    /// The planner tier's quoted price.
    pub planner_price: QuotedPrice,
    /// The executor tier's quoted price.
    pub executor_price: QuotedPrice,
    /// The ReAct loop.
    pub react: ArchitectureCost,
    /// Plan-and-execute.
    pub plan_execute: ArchitectureCost,
}

impl CostComparison {
    /// Prices `profile` with the planner and executor tiers' prices.
    pub fn new(
        profile: &WorkloadProfile,
        planner: &Price,
        executor: &Price,
        rounding: Rounding,
    ) -> Self {
        let planner_price = QuotedPrice::of(planner, rounding);
        let executor_price = QuotedPrice::of(executor, rounding);
        let share = profile.completion_share;
        let react = ArchitectureCost {
            calls: profile.react.calls,
            tokens: profile.react.tokens(),
            per_task: planner_price.cost(profile.react.tokens(), share),
        };
        let plan_execute = ArchitectureCost {
            calls: profile.planner.calls + profile.executor.calls,
            tokens: profile.planner.tokens() + profile.executor.tokens(),
            per_task: planner_price.cost(profile.planner.tokens(), share)
                + executor_price.cost(profile.executor.tokens(), share),
        };
        CostComparison {
            rounding,
            planner_price,
            executor_price,
            react,
            plan_execute,
        }
    }

    /// Exact savings as a fraction (0.8247… for the reference), `None` when ReAct costs nothing.
    pub fn savings(&self) -> Option<Decimal> {
        savings(self.react.per_task, self.plan_execute.per_task)
    }
}

/// `1 − plan_execute / react`, `None` when `react` is zero.
pub fn savings(react: Decimal, plan_execute: Decimal) -> Option<Decimal> {
    (!react.is_zero()).then(|| Decimal::ONE - plan_execute / react)
}

/// A price per 1M tokens as displayed: 3 decimals (half away from zero).
pub fn display_price(per_million: Decimal) -> Decimal {
    per_million.round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero)
}

/// A cost per task as displayed: rounded up to 5 decimals.
pub fn display_per_task(usd: Decimal) -> Decimal {
    usd.round_dp_with_strategy(5, RoundingStrategy::AwayFromZero)
}

/// A cost per 1,000 tasks as displayed: rounded up to 2 decimals.
pub fn display_per_thousand(usd: Decimal) -> Decimal {
    usd.round_dp_with_strategy(2, RoundingStrategy::AwayFromZero)
}

/// Savings as displayed: a whole percent, rounded down.
pub fn display_savings_percent(fraction: Decimal) -> Decimal {
    (fraction * Decimal::from(100u32)).round_dp_with_strategy(0, RoundingStrategy::ToZero)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn gpu(usd_per_hour: &str, tps: &str) -> Price {
        Price::GpuHour {
            usd_per_hour: d(usd_per_hour),
            tokens_per_second: d(tps),
        }
    }

    #[test]
    fn reference_inputs_give_the_reference_table() {
        let c = CostComparison::new(
            &WorkloadProfile::reference(),
            &gpu("4.54", "2500"),
            &gpu("0.96", "6000"),
            Rounding::Reference,
        );
        assert_eq!(c.planner_price.input, d("0.504"));
        assert_eq!(c.executor_price.input, d("0.044"));
        assert_eq!(c.react.per_task, d("0.00756"));
        assert_eq!(c.plan_execute.per_task, d("0.0013248"));
        assert_eq!(display_per_task(c.react.per_task), d("0.00756"));
        assert_eq!(display_per_task(c.plan_execute.per_task), d("0.00133"));
        assert_eq!(display_per_thousand(c.react.per_thousand()), d("7.56"));
        assert_eq!(
            display_per_thousand(c.plan_execute.per_thousand()),
            d("1.33")
        );
        assert_eq!(display_savings_percent(c.savings().unwrap()), d("82"));
        assert_eq!(c.react.calls, d("10"));
        assert_eq!(c.plan_execute.calls, d("10"));
        assert_eq!(c.plan_execute.tokens, d("9200"));
    }

    #[test]
    fn exact_rounding_keeps_full_precision_prices() {
        let c = CostComparison::new(
            &WorkloadProfile::reference(),
            &gpu("4.54", "2500"),
            &gpu("0.96", "6000"),
            Rounding::Exact,
        );
        assert_eq!(display_price(c.planner_price.input), d("0.504"));
        assert!(c.react.per_task > d("0.007566") && c.react.per_task < d("0.007567"));
        assert_eq!(display_per_task(c.react.per_task), d("0.00757"));
    }

    #[test]
    fn split_prices_use_the_completion_share() {
        let api = Price::PerMillion {
            usd_per_million_input: d("1"),
            usd_per_million_output: d("3"),
        };
        let profile = WorkloadProfile {
            react: CallProfile::new(1, 1_000_000),
            planner: CallProfile::new(0, 0),
            executor: CallProfile::new(0, 0),
            completion_share: d("0.25"),
        };
        let c = CostComparison::new(&profile, &api, &api, Rounding::Exact);
        assert_eq!(c.react.per_task, d("1.5"));
        assert_eq!(c.plan_execute.per_task, Decimal::ZERO);
        assert_eq!(c.savings(), Some(Decimal::ONE));
        assert_eq!(savings(Decimal::ZERO, Decimal::ONE), None);
    }
}
