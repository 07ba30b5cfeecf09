//! planex-core: the product's vocabulary with no I/O.
//!
//! Plans and their validation, DAG helpers ([`dag`], the one place where the dependency graph is
//! computed), placeholder templating, the tool catalog, the price model and config types live here
//! so that every other crate (store, LLM client, engine, server, simulator) agrees on one
//! definition and the rules can be unit-tested without a network.

mod answer;
mod catalog;
mod catalog_uses;
pub mod cause;
mod clip;
mod cost;
pub mod dag;
#[cfg(test)]
mod fuzz_targets;
mod ids;
mod live_catalog;
mod plan;
mod plan_stream;
mod template;
#[cfg(test)]
mod test_support;
mod tool;
mod tool_summary;
mod validate;

pub use answer::{ANSWER_ARG, AnswerFormat, AnswerOptionError, AnswerOptions};
pub use catalog::{Catalog, CatalogError};
pub use clip::clip_chars;
pub use cost::{CallMark, CallRecord, CostBreakdown, CostTotals, Price, Stage, Usage, format_usd};
pub use ids::{StepId, TaskId};
pub use live_catalog::LiveCatalog;
pub use plan::{Plan, PlanError, PlanLimits, PlanSource, Step};
pub use plan_stream::{StepStream, StreamedStep};
pub use template::{
    Placeholder, TemplateError, placeholders, referenced_steps, rename_placeholders, render,
    substitute_args, value_text,
};
pub use tool::{HttpTool, LlmTool, MAX_TOOL_ROUNDS, McpTool, ToolKind, ToolSpec};
pub use tool_summary::{ToolArg, ToolSummary};
pub use validate::{PlanBuilder, strip_fence};

/// Re-exported so that users of the cost types need no direct dependency.
pub use rust_decimal::Decimal;
