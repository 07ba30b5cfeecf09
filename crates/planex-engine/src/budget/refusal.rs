//! A request refused by a budget ([`BudgetExceeded`]) and which budget it was ([`BudgetKind`]).

use planex_core::{Decimal, TaskId};
use std::fmt;
use std::time::Duration;

/// Which budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetKind {
    /// The request's own `budget_usd`.
    Task,
    /// The tenant's monthly budget.
    Tenant,
    /// The cost center's monthly budget.
    CostCenter,
}

impl BudgetKind {
    /// `task`, `tenant` or `cost_center` (metric label and API field).
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetKind::Task => "task",
            BudgetKind::Tenant => "tenant",
            BudgetKind::CostCenter => "cost_center",
        }
    }
}

impl fmt::Display for BudgetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request refused by a budget: which one and by how much.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{budget} budget {name:?} exceeded by ${over_by_usd}: limit ${limit_usd}, spent ${spent_usd}, reserved ${reserved_usd}, this request needs ${requested_usd}{}; retry after {} s or raise the budget",
    if *.replanned { " even after one re-plan with fewer steps" } else { "" },
    .retry_after.as_secs()
)]
pub struct BudgetExceeded {
    /// Which budget.
    pub budget: BudgetKind,
    /// The tenant, cost center or task it belongs to.
    pub name: String,
    /// Its limit.
    pub limit_usd: Decimal,
    /// Spent on it already.
    pub spent_usd: Decimal,
    /// Reserved on it by requests in flight.
    pub reserved_usd: Decimal,
    /// The estimate of this request.
    pub requested_usd: Decimal,
    /// How far over the limit the request would go.
    pub over_by_usd: Decimal,
    /// When retrying may succeed.
    pub retry_after: Duration,
    /// The task, when one was recorded (status `rejected`).
    pub task_id: Option<TaskId>,
    /// Whether a re-plan with fewer steps was tried first.
    pub replanned: bool,
}
