//! The budget guard's validated settings (`[budget]` of `planex.toml`, read by planex-app) and
//! how a request's per-task budget is resolved from them.

use planex_core::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;

/// Validated `[budget]` settings plus tenants' monthly budgets.
#[derive(Debug, Clone)]
pub struct BudgetSettings {
    /// Estimate, reserve and enforce.
    pub enabled: bool,
    /// Tokens per step of a tool until its mean is observed.
    pub default_tokens_per_step: u64,
    /// `Retry-After` of a refusal that waiting can cure.
    pub retry_after: Duration,
    /// Monthly budget per tenant.
    pub tenant_monthly_usd: BTreeMap<String, Decimal>,
    /// Monthly budget per (tenant, cost center).
    pub cost_center_monthly_usd: BTreeMap<(String, String), Decimal>,
    /// Per-task budget of a request that names none (`None`: unlimited).
    pub default_task_usd: Option<Decimal>,
    /// Per-task budget by tenant, over `default_task_usd` (`None`: unlimited).
    pub tenant_task_usd: BTreeMap<String, Option<Decimal>>,
    /// Per-task budget by (tenant, cost center), over the tenant's (`None`: unlimited).
    pub cost_center_task_usd: BTreeMap<(String, String), Option<Decimal>>,
    /// Longest a submission waits for other tasks' held worst cases to settle before an account
    /// budget refuses it.
    pub admission_wait: Duration,
}

impl BudgetSettings {
    /// The reference design's per-task budget: $0.01.
    pub const DEFAULT_TASK_USD: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

    /// The per-task budget of a request: its own (`0` = unlimited), else its cost center's, its
    /// tenant's or the default. `None` is unlimited.
    pub fn task_budget(
        &self,
        requested: Option<Decimal>,
        tenant: &str,
        cost_center: &str,
    ) -> Option<Decimal> {
        let unlimited_if_zero = |amount: Decimal| (!amount.is_zero()).then_some(amount);
        if let Some(amount) = requested {
            return unlimited_if_zero(amount);
        }
        let key = (tenant.to_owned(), cost_center.to_owned());
        self.cost_center_task_usd
            .get(&key)
            .or_else(|| self.tenant_task_usd.get(tenant))
            .copied()
            .unwrap_or(self.default_task_usd)
            .and_then(unlimited_if_zero)
    }
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            enabled: true,
            default_tokens_per_step: 800,
            retry_after: Duration::from_secs(60),
            tenant_monthly_usd: BTreeMap::new(),
            cost_center_monthly_usd: BTreeMap::new(),
            default_task_usd: Some(Self::DEFAULT_TASK_USD),
            tenant_task_usd: BTreeMap::new(),
            cost_center_task_usd: BTreeMap::new(),
            admission_wait: Duration::from_secs(120),
        }
    }
}
