//! planex-compare: measures what plan-and-execute saves over a ReAct agent.
//!
//! This crate is the whole "savings" feature, so the product crates carry none of it: the ReAct
//! baseline ([`ReactRunner`]), which runs a task as a thought → action → observation loop on the
//! planner tier with the engine's own tool code; the comparison of both architectures on a JSONL
//! workload ([`compare`], `planex compare`); the price model alone ([`cost`], `planex cost`); the
//! savings curves drawn as SVG charts ([`curve`], `planex curve`); and the generator of the shipped
//! workloads ([`workload`], `planex workload`). Each command has a clap `Args` struct the CLI flattens
//! into its subcommand, a function that returns the figures, and one that prints them; errors are
//! [`CompareError`].

mod compare;
mod cost;
mod curve;
mod error;
mod generate;
mod harness;
mod profile;
mod react;
mod report;
mod workload;

pub use compare::{CompareArgs, compare, print_report, run_comparison};
pub use cost::{CostArgs, CostReport, cost, cost_report};
pub use curve::{CurveArgs, CurvePoint, Curves, curve, measure_curves};
pub use error::{CompareError, WorkloadLineError};
pub use generate::{WorkloadArgs, WorkloadKind, generate_workload, workload};
pub use profile::{
    ArchitectureCost, CallProfile, CostComparison, QuotedPrice, Rounding, WorkloadProfile,
    display_per_task, display_per_thousand, display_price, display_savings_percent, savings,
};
pub use react::{
    FINAL_ACTION, REACT_SCHEMA_NAME, ReactAction, ReactRun, ReactRunner, ReactSettings, ReactStatus,
};
pub use report::{ArchSummary, ArchTotals, Report, TaskRow};
