//! The budget guard (docs/ARCHITECTURE.md §5): estimates, atomic reservations and their settlement.
//!
//! Key decisions: every estimate is *booked* in the [`SpendLedger`] before money is spent (never
//! check-then-record), and replaced by the real cost afterwards. A task holds two reservations:
//! `{task}/plan` (an upper bound of the planner call: its prompt at 3 characters per token plus
//! `planner_max_tokens`), settled as soon as the plan is in, and `{task}` (the executor estimate:
//! Σ over steps of the tool's observed mean tokens, 800 until observed, × its tier's price), capped
//! by the task's own budget and grown before an escalation to a dearer tier. Accounts are the
//! tenant's month and its cost center's month, so `GET /v1/spend` reads one scope.

mod refusal;

pub use refusal::{BudgetExceeded, BudgetKind};

use crate::Models;
use crate::synthesis::SYNTHESIS_TOOL;
use planex_core::{Decimal, Price, Stage, TaskId};
use planex_llm::ChatModel;
use planex_store::{
    Account, AccountLimit, Booking, Denial, SpendLedger, StepSpec, TaskRecord, ledger_usd,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            enabled: true,
            default_tokens_per_step: 800,
            retry_after: Duration::from_secs(60),
            tenant_monthly_usd: BTreeMap::new(),
            cost_center_monthly_usd: BTreeMap::new(),
        }
    }
}

/// Token means per tool, learned from finished tasks.
#[derive(Default)]
struct TokenStats {
    by_tool: Mutex<HashMap<String, (u64, u64, u64)>>,
}

impl TokenStats {
    fn observe(&self, tool: &str, prompt: u64, completion: u64) {
        let mut map = self
            .by_tool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(tool.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += prompt;
        entry.2 += completion;
    }

    fn mean(&self, tool: &str) -> Option<(u64, u64)> {
        let map = self
            .by_tool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tool)
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, p, c)| (p.div_ceil(*n), c.div_ceil(*n)))
    }
}

/// Estimates, reserves and settles spend for tasks and single steps.
pub struct BudgetGuard {
    ledger: Arc<dyn SpendLedger>,
    settings: BudgetSettings,
    stats: TokenStats,
}

/// The accounts one request books against.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// Tenant and cost center accounts with their limits.
    pub limits: Vec<AccountLimit>,
    /// The tenant name (`anonymous` without auth).
    pub tenant: String,
    /// The cost center (`default` when none is given).
    pub cost_center: String,
}

impl BudgetGuard {
    /// A guard over `ledger`.
    pub fn new(ledger: Arc<dyn SpendLedger>, settings: BudgetSettings) -> Self {
        BudgetGuard {
            ledger,
            settings,
            stats: TokenStats::default(),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn SpendLedger> {
        &self.ledger
    }

    /// The settings.
    pub fn settings(&self) -> &BudgetSettings {
        &self.settings
    }

    /// The scope of a tenant's month (`tenant/YYYY-MM`).
    pub fn scope(tenant: &str, month: &str) -> String {
        format!("{tenant}/{month}")
    }

    /// The accounts of a request this month.
    pub fn accounts(&self, tenant: Option<&str>, cost_center: Option<&str>) -> Accounts {
        let tenant = tenant.unwrap_or("anonymous").to_owned();
        let cost_center = cost_center.unwrap_or("default").to_owned();
        let scope = Self::scope(&tenant, &current_month());
        let limits = vec![
            AccountLimit {
                account: Account::new(scope.clone(), "tenant"),
                limit_usd: self.settings.tenant_monthly_usd.get(&tenant).copied(),
            },
            AccountLimit {
                account: Account::new(scope, format!("cost_center:{cost_center}")),
                limit_usd: self
                    .settings
                    .cost_center_monthly_usd
                    .get(&(tenant.clone(), cost_center.clone()))
                    .copied(),
            },
        ];
        Accounts {
            limits,
            tenant,
            cost_center,
        }
    }

    /// Mean (prompt, completion) tokens of a tool, if observed.
    pub fn observed_tokens(&self, tool: &str) -> Option<(u64, u64)> {
        self.stats.mean(tool)
    }

    /// The estimated cost of one step of `tool` on a tier priced `price`.
    pub fn step_estimate(&self, tool: &str, price: &Price) -> Decimal {
        let (input, output) = price.per_million();
        let million = Decimal::from(1_000_000u32);
        let estimate = match self.stats.mean(tool) {
            Some((prompt, completion)) => {
                (input * Decimal::from(prompt) + output * Decimal::from(completion)) / million
            }
            None => {
                input.max(output) * Decimal::from(self.settings.default_tokens_per_step) / million
            }
        };
        ledger_usd(estimate)
    }

    /// The executor estimate of a set of steps (synthesis included).
    pub fn estimate_steps(&self, specs: &[StepSpec], models: &Models) -> Decimal {
        specs
            .iter()
            .map(|spec| match models.get(&spec.tier) {
                Ok(model) => self.step_estimate(&spec.step.tool_name, model.price()),
                Err(_) => Decimal::ZERO,
            })
            .sum()
    }

    /// An upper bound of one planner call: the prompt at 3 characters per token, and the whole
    /// `max_tokens` answer.
    pub fn planning_estimate(
        &self,
        prompt_chars: usize,
        max_tokens: u32,
        price: &Price,
    ) -> Decimal {
        let (input, output) = price.per_million();
        let prompt_tokens = Decimal::from(prompt_chars.div_ceil(3) as u64);
        ledger_usd(
            (input * prompt_tokens + output * Decimal::from(max_tokens))
                / Decimal::from(1_000_000u32),
        )
    }

    /// Turns a ledger denial into the API's refusal.
    pub fn refusal(
        &self,
        denial: &Denial,
        accounts: &Accounts,
        task_id: Option<&TaskId>,
        replanned: bool,
    ) -> BudgetExceeded {
        let (budget, name) = if denial.account.scope == "reservation" {
            (BudgetKind::Task, denial.account.name.clone())
        } else if denial.account.name == "tenant" {
            (BudgetKind::Tenant, accounts.tenant.clone())
        } else {
            (BudgetKind::CostCenter, accounts.cost_center.clone())
        };
        // Money held by requests in flight comes back when they settle; a spent month does not.
        let curable = denial.spent_usd + denial.requested_usd <= denial.limit_usd;
        let retry_after = if budget == BudgetKind::Task || curable {
            self.settings.retry_after
        } else {
            until_next_month()
        };
        metrics::counter!("budget_rejections_total", "budget" => budget.as_str()).increment(1);
        BudgetExceeded {
            budget,
            name,
            limit_usd: denial.limit_usd,
            spent_usd: denial.spent_usd,
            reserved_usd: denial.reserved_usd,
            requested_usd: denial.requested_usd,
            over_by_usd: denial.over_by_usd,
            retry_after,
            task_id: task_id.cloned(),
            replanned,
        }
    }

    /// Books `amount` under `id` against `accounts` (and `cap`), or names the budget it would break.
    pub async fn reserve(
        &self,
        id: String,
        amount: Decimal,
        cap: Option<Decimal>,
        accounts: &Accounts,
    ) -> Result<Option<Denial>, planex_store::LedgerError> {
        let booking = self
            .ledger
            .reserve(planex_store::Reservation {
                id,
                amount_usd: ledger_usd(amount),
                cap_usd: cap,
                accounts: accounts.limits.clone(),
            })
            .await?;
        Ok(match booking {
            Booking::Granted => None,
            Booking::Denied(denial) => Some(denial),
        })
    }

    /// Settles a finished task: its executor reservation becomes its real executor cost (steps and
    /// synthesis), and its calls teach the per-tool token means. Idempotent: only the first
    /// settlement counts.
    pub async fn settle(&self, record: &TaskRecord) {
        let executor_cost: Decimal = record
            .calls
            .iter()
            .filter(|c| c.stage != Stage::Plan)
            .map(|c| c.cost_usd)
            .sum();
        match self
            .ledger
            .reconcile(&record.task_id.0, executor_cost)
            .await
        {
            Ok(true) => {
                for call in &record.calls {
                    let tool = match (call.stage, &call.tool) {
                        (Stage::Step, Some(tool)) => tool.as_str(),
                        (Stage::Synthesis, _) => SYNTHESIS_TOOL,
                        _ => continue,
                    };
                    self.stats.observe(
                        tool,
                        call.usage.prompt_tokens,
                        call.usage.completion_tokens,
                    );
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(task = %record.task_id, error = %planex_core::cause::ErrorChain(&error), "could not settle the task's spend; its reservation stays held");
            }
        }
    }

    /// Before a failed step is retried on a dearer tier: grows the task's reservation by the
    /// escalated step's estimate. `Err` (the budget that would break) stops the escalation.
    pub async fn allow_escalation(
        &self,
        task_id: &TaskId,
        tool: &str,
        from: &dyn ChatModel,
        to: &dyn ChatModel,
    ) -> Result<(), String> {
        let dearer = |p: &Price| {
            let (i, o) = p.per_million();
            i.max(o)
        };
        if dearer(to.price()) <= dearer(from.price()) {
            return Ok(());
        }
        let amount = self.step_estimate(tool, to.price());
        match self.ledger.extend(&task_id.0, amount).await {
            Ok(Booking::Granted) | Err(planex_store::LedgerError::UnknownReservation(_)) => Ok(()),
            Ok(Booking::Denied(denial)) => {
                metrics::counter!("budget_rejections_total", "budget" => "escalation").increment(1);
                Err(format!(
                    "the escalation would exceed the budget of {} {:?} by ${} (limit ${})",
                    if denial.account.scope == "reservation" {
                        "task"
                    } else {
                        "account"
                    },
                    denial.account.name,
                    denial.over_by_usd,
                    denial.limit_usd
                ))
            }
            Err(error) => Err(format!(
                "the budget could not be checked: {}",
                planex_core::cause::ErrorChain(&error)
            )),
        }
    }
}

/// Days since 1970-01-01 → (year, month) in the proleptic Gregorian calendar (UTC).
fn year_month(days: i64) -> (i64, u32) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Days from 1970-01-01 to the first day of (year, month).
fn days_from_civil(year: i64, month: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current month in UTC as `YYYY-MM` (the period of monthly budgets).
pub fn current_month() -> String {
    let (year, month) = year_month(now_secs().div_euclid(86_400));
    format!("{year:04}-{month:02}")
}

/// Time until the next month starts (UTC).
pub fn until_next_month() -> Duration {
    let now = now_secs();
    let (year, month) = year_month(now.div_euclid(86_400));
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let next = days_from_civil(ny, nm) * 86_400;
    Duration::from_secs((next - now).max(1) as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn calendar_months_are_right() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(31), (1970, 2));
        // 2024-02-29 is day 19782; 2024-03-01 is 19783.
        assert_eq!(year_month(19_782), (2024, 2));
        assert_eq!(year_month(19_783), (2024, 3));
        assert_eq!(days_from_civil(2024, 3), 19_783);
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(current_month().len(), 7);
        assert!(until_next_month() <= Duration::from_secs(31 * 86_400));
    }

    #[test]
    fn estimates_use_defaults_then_observed_means() {
        let guard = BudgetGuard::new(
            Arc::new(planex_store::MemoryLedger::new()),
            BudgetSettings::default(),
        );
        let price = Price::PerMillion {
            usd_per_million_input: Decimal::from(1),
            usd_per_million_output: Decimal::from(2),
        };
        // 800 tokens at the dearer rate: 800 * 2 / 1e6.
        assert_eq!(guard.step_estimate("x", &price), Decimal::new(16, 4));
        guard.stats.observe("x", 100, 50);
        guard.stats.observe("x", 300, 150);
        assert_eq!(guard.observed_tokens("x"), Some((200, 100)));
        assert_eq!(guard.step_estimate("x", &price), Decimal::new(4, 4));
        assert_eq!(
            guard.planning_estimate(3000, 1000, &price),
            Decimal::new(3, 3)
        );
    }
}
