//! The budget guard (docs/ARCHITECTURE.md §5): estimates, atomic reservations and their settlement.
//!
//! Key decisions: every estimate is *booked* in the [`SpendLedger`] before money is spent (never
//! check-then-record), and replaced by the real cost afterwards. A task holds one reservation, its
//! id, capped by the task's own budget (default $0.01; `0` is unlimited): at admission it holds the
//! planner call's worst case, then (once the plan is in) what planning cost plus the estimate of
//! the rest (Σ over steps of the tool's observed mean tokens, 800 until observed, × its tier's
//! price, plus a synthesis whose prompt grows with the steps' expected output). While the task runs,
//! every model call draws its worst case from that reservation first (`meter.rs`), so the cap is
//! never passed. Accounts are the tenant's month and its cost center's month, so `GET /v1/spend`
//! reads one scope. A submission that does not fit an account only because other tasks' worst
//! cases are still held waits for them to settle (bounded, in arrival order) before it is refused.

mod meter;
mod refusal;
mod room;

pub use meter::{
    MIN_CALL_TOKENS, MeteredModel, PROMPT_BYTES_PER_TOKEN, floor_usd, prompt_bound, tokens_cost,
};
pub use refusal::{BudgetExceeded, BudgetKind};

use crate::Models;
use crate::synthesis::SYNTHESIS_TOOL;
use planex_core::{Decimal, Price, Stage, TaskId};
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

/// Prompt tokens of a synthesis besides its inputs (instructions and the task).
const SYNTHESIS_PROMPT_TOKENS: u64 = 150;
/// A synthesis answer's tokens until one is observed.
const SYNTHESIS_ANSWER_TOKENS: u64 = 512;
/// A plan's answer tokens until one is observed.
const PLAN_ANSWER_TOKENS: u64 = 256;
/// The key under which planner calls' token means are kept.
const PLAN_TOOL: &str = "planex.plan";

/// Token means per tool, learned from finished tasks.
#[derive(Default)]
struct TokenStats {
    by_tool: Mutex<HashMap<String, (u64, u64, u64)>>,
    /// Calls and their summed cost per tool (cached prompt tokens make a call cheaper than its
    /// tokens at list price).
    cost_by_tool: Mutex<HashMap<String, (u64, Decimal)>>,
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

    fn observe_cost(&self, tool: &str, cost: Decimal) {
        let mut map = self
            .cost_by_tool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(tool.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += cost;
    }

    fn mean_cost(&self, tool: &str) -> Option<Decimal> {
        let map = self
            .cost_by_tool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tool)
            .filter(|(n, _)| *n > 0)
            .map(|(n, sum)| ledger_usd(*sum / Decimal::from(*n)))
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
    room: room::Room,
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
            room: room::Room::default(),
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

    /// The estimated cost of the rest of a task: every step, and a synthesis whose prompt holds
    /// each dependency's expected output (its tool's observed mean completion, half the default
    /// step tokens until observed) and whose answer is the observed synthesis mean (512 tokens
    /// until observed).
    pub fn estimate_steps(&self, specs: &[StepSpec], models: &Models) -> Decimal {
        let tool_of: HashMap<_, _> = specs
            .iter()
            .map(|s| (s.step.step_id, s.step.tool_name.as_str()))
            .collect();
        specs
            .iter()
            .map(|spec| {
                let Ok(model) = models.get(&spec.tier) else {
                    return Decimal::ZERO;
                };
                if spec.step.tool_name != SYNTHESIS_TOOL {
                    return self.step_estimate(&spec.step.tool_name, model.price());
                }
                let inputs: u64 = spec
                    .step
                    .depends_on
                    .iter()
                    .filter_map(|id| tool_of.get(id))
                    .map(|tool| self.expected_output(tool))
                    .sum();
                let answer = self
                    .stats
                    .mean(SYNTHESIS_TOOL)
                    .map_or(SYNTHESIS_ANSWER_TOKENS, |(_, completion)| completion);
                tokens_cost(model.price(), SYNTHESIS_PROMPT_TOKENS + inputs, answer)
            })
            .sum()
    }

    /// The expected output tokens of one step of `tool`.
    fn expected_output(&self, tool: &str) -> u64 {
        self.stats.mean(tool).map_or(
            self.settings.default_tokens_per_step / 2,
            |(_, completion)| completion,
        )
    }

    /// An upper bound of one planner call: the prompt at one token per
    /// [`PROMPT_BYTES_PER_TOKEN`] bytes, and the whole `max_tokens` answer (the meter's worst case).
    pub fn planning_estimate(
        &self,
        prompt_chars: usize,
        max_tokens: u32,
        price: &Price,
    ) -> Decimal {
        let (input, output) = price.per_million();
        let prompt_tokens = Decimal::from((prompt_chars as u64).div_ceil(PROMPT_BYTES_PER_TOKEN));
        ledger_usd(
            (input * prompt_tokens + output * Decimal::from(max_tokens))
                / Decimal::from(1_000_000u32),
        )
    }

    /// The expected cost of a planner call: the observed mean cost (cached prompt tokens
    /// included), or until one is observed its prompt bound and [`PLAN_ANSWER_TOKENS`] of answer. A budget below it cannot pay for a plan.
    pub fn planning_expected(&self, prompt_chars: usize, price: &Price) -> Decimal {
        match self.stats.mean_cost(PLAN_TOOL) {
            Some(cost) => cost,
            None => tokens_cost(
                price,
                (prompt_chars as u64).div_ceil(PROMPT_BYTES_PER_TOKEN),
                PLAN_ANSWER_TOKENS,
            ),
        }
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
            // A fresh reservation cannot be closed.
            Booking::Granted | Booking::Closed => None,
            Booking::Denied(denial) => Some(denial),
        })
    }

    /// Settles a finished task: its executor reservation becomes its real executor cost (steps and
    /// synthesis), and its calls teach the per-tool token means. Idempotent: only the first
    /// settlement counts.
    pub async fn settle(&self, record: &TaskRecord) {
        let cost: Decimal = record.calls.iter().map(|c| c.cost_usd).sum();
        let settled = self.ledger.reconcile(&record.task_id.0, cost).await;
        self.room.freed();
        match settled {
            Ok(true) => {
                for call in &record.calls {
                    if call.mark.is_some() {
                        continue;
                    }
                    let tool = match (call.stage, &call.tool) {
                        (Stage::Step, Some(tool)) => tool.as_str(),
                        (Stage::Synthesis, _) => SYNTHESIS_TOOL,
                        (Stage::Plan, _) => PLAN_TOOL,
                        _ => continue,
                    };
                    self.stats.observe(
                        tool,
                        call.usage.prompt_tokens,
                        call.usage.completion_tokens,
                    );
                    self.stats.observe_cost(tool, call.cost_usd);
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(task = %record.task_id, error = %planex_core::cause::ErrorChain(&error), "could not settle the task's spend; its reservation stays held");
            }
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

    #[tokio::test]
    async fn settling_a_task_teaches_the_planner_mean() {
        use planex_store::{AccountLimit, Reservation, SpendLedger};
        let ledger = Arc::new(planex_store::MemoryLedger::new());
        let guard = BudgetGuard::new(ledger.clone(), BudgetSettings::default());
        let price = Price::PerMillion {
            usd_per_million_input: Decimal::from(1),
            usd_per_million_output: Decimal::from(1),
        };
        let unobserved = guard.planning_expected(1000, &price);
        ledger
            .reserve(Reservation {
                id: "t".into(),
                amount_usd: Decimal::ZERO,
                cap_usd: None,
                accounts: Vec::<AccountLimit>::new(),
            })
            .await
            .unwrap();
        let call = planex_core::CallRecord {
            stage: Stage::Plan,
            tier: "planner".into(),
            model: "m".into(),
            tool: None,
            step_id: None,
            usage: planex_core::Usage {
                prompt_tokens: 10,
                completion_tokens: 20,
                cached_tokens: 0,
            },
            cost_usd: Decimal::new(3, 5),
            mark: None,
        };
        let record: TaskRecord = serde_json::from_value(serde_json::json!({
            "task_id": "t", "task": "x", "status": "complete", "steps": {},
            "calls": [call], "created_at_ms": 0
        }))
        .unwrap();
        guard.settle(&record).await;
        assert_eq!(
            guard.planning_expected(1000, &price),
            Decimal::new(3, 5),
            "the mean cost"
        );
        assert_ne!(unobserved, Decimal::new(3, 5));
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
        // 3,000 bytes at 2 bytes per token and $1/M, 1,000 tokens at $2/M.
        assert_eq!(
            guard.planning_estimate(3000, 1000, &price),
            Decimal::new(35, 4)
        );
    }
}
