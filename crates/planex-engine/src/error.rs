//! [`EngineError`]: every failure of the engine's API, each saying what failed and what to do.

use crate::BudgetExceeded;
use planex_core::{CatalogError, PlanError, TaskId};
use planex_store::StoreError;

/// An engine failure; each says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tool or config names a tier that does not exist.
    #[error("unknown tier {tier:?} (known tiers: {}); add it to [tiers] or fix the name", .known.join(", "))]
    UnknownTier {
        /// The name used.
        tier: String,
        /// The tiers that exist.
        known: Vec<String>,
    },
    /// The request's tool subset names unknown tools.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The task did not finish in time (it keeps running; read it later by id).
    #[error(
        "task {0} did not finish within the wait timeout; it is still running, read it later by id"
    )]
    Timeout(TaskId),
    /// The request is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A client-supplied plan breaks a plan rule (HTTP 422 naming the rule and the step); nothing
    /// was recorded or booked.
    #[error("the plan was refused (rule {}); fix it and submit it again", .0.rule())]
    InvalidPlan(#[source] PlanError),
    /// A tool the task needs has its MCP server down (HTTP 503, retry later).
    #[error(
        "tool {tool:?} needs the MCP server {server:?}, which is unavailable now: {reason}; retry later"
    )]
    ToolUnavailable {
        /// The tool.
        tool: String,
        /// Its server.
        server: String,
        /// Why the server cannot take calls.
        reason: String,
    },
    /// A budget refused the task (HTTP 429).
    #[error(transparent)]
    Budget(#[from] Box<BudgetExceeded>),
    /// The background planning of an accepted task stopped abnormally (a panic, or the runtime
    /// shutting down); the task stays `planning` until orphan recovery fails it.
    #[error(
        "the planning of task {task_id} stopped abnormally; read the task later by id, or submit it again"
    )]
    Admission {
        /// The task.
        task_id: TaskId,
        /// Why its background task ended.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// A ledger failure as an engine error (HTTP 503: the spend ledger is a backend like the store).
pub(crate) fn ledger_down(error: planex_store::LedgerError) -> EngineError {
    EngineError::Store(StoreError::Unavailable {
        what: "the budget check failed".into(),
        source: Some(planex_core::cause::SharedSource::new(error)),
    })
}
