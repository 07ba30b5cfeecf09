//! The budget guard: estimates of what a task will cost, bookings in the spend ledger, refusals,
//! and the settlement of a finished task (docs/ARCHITECTURE.md §5).

use super::calendar::{current_month, until_next_month};
use super::density::PromptDensity;
use super::price::{TEXT_BYTES_PER_TOKEN, tokens_cost};
use super::room::Room;
use super::stats::{
    PLAN_ANSWER_TOKENS, PLAN_TOOL, SYNTHESIS_ANSWER_TOKENS, SYNTHESIS_PROMPT_TOKENS, TokenStats,
};
use super::{BudgetExceeded, BudgetKind, BudgetSettings};
use crate::Models;
use crate::synthesis::SYNTHESIS_TOOL;
use planex_core::{Decimal, Price, Stage, TaskId};
use planex_store::{
    Account, AccountLimit, Booking, Denial, LedgerError, SpendLedger, StepSpec, TaskRecord,
    ledger_usd,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Estimates, reserves and settles spend for tasks and single steps.
pub struct BudgetGuard {
    ledger: Arc<dyn SpendLedger>,
    settings: BudgetSettings,
    stats: TokenStats,
    room: Room,
    density: PromptDensity,
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
            room: Room::default(),
            density: PromptDensity::default(),
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

    /// The prompt densities learned from this process's calls, which bound a call's prompt.
    pub fn density(&self) -> &PromptDensity {
        &self.density
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
        self.estimate_steps_except(specs, models, |_| false)
    }

    /// [`BudgetGuard::estimate_steps`] of the steps that will run: those `reused` says are
    /// complete already (a replay's) cost nothing, but a synthesis still reads their outputs.
    pub fn estimate_steps_except(
        &self,
        specs: &[StepSpec],
        models: &Models,
        reused: impl Fn(planex_core::StepId) -> bool,
    ) -> Decimal {
        let tool_of: HashMap<_, _> = specs
            .iter()
            .map(|s| (s.step.step_id, s.step.tool_name.as_str()))
            .collect();
        specs
            .iter()
            .filter(|spec| !reused(spec.step.step_id))
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
                // The call is only made if its prompt *bound* fits (the tier's learned density,
                // or about twice a text's real count until learned), so the estimate counts the
                // prompt as the meter will.
                let bytes = (SYNTHESIS_PROMPT_TOKENS + inputs) * TEXT_BYTES_PER_TOKEN;
                let prompt = self.density.bound_bytes(&spec.tier, bytes, 0);
                tokens_cost(model.price(), prompt, answer)
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

    /// An upper bound of one planner call to `tier`: the prompt bound of `prompt_chars` bytes
    /// ([`PromptDensity`]) and the whole `max_tokens` answer (the meter's worst case).
    pub fn planning_estimate(
        &self,
        tier: &str,
        prompt_chars: usize,
        max_tokens: u32,
        price: &Price,
    ) -> Decimal {
        let (input, output) = price.per_million();
        let prompt_tokens = Decimal::from(self.density.bound_bytes(tier, prompt_chars as u64, 0));
        ledger_usd(
            (input * prompt_tokens + output * Decimal::from(max_tokens))
                / Decimal::from(1_000_000u32),
        )
    }

    /// The expected cost of a planner call to `tier` as the meter will let it be made: its prompt
    /// bound at list price (a cached prompt costs less, but the draw cannot count on the cache) and
    /// the observed mean answer ([`PLAN_ANSWER_TOKENS`] until one is observed). A budget or a free
    /// room below it cannot pay for a plan.
    pub fn planning_expected(&self, tier: &str, prompt_chars: usize, price: &Price) -> Decimal {
        let answer = self
            .stats
            .mean(PLAN_TOOL)
            .map_or(PLAN_ANSWER_TOKENS, |(_, completion)| completion);
        tokens_cost(
            price,
            self.density.bound_bytes(tier, prompt_chars as u64, 0),
            answer,
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
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(task = %record.task_id, error = %planex_core::cause::ErrorChain(&error), "could not settle the task's spend; its reservation stays held");
            }
        }
    }
}

impl BudgetGuard {
    /// Runs `book` until it is granted, fails, or is denied for a reason that waiting cannot cure
    /// (the account's spend alone leaves no room for `need()`, asked afresh each time since what a
    /// call is expected to cost is learned meanwhile, or `[budget] admission_wait_secs` is over);
    /// waiters go in arrival order.
    pub async fn book_with_wait<F, Fut>(
        &self,
        need: impl Fn() -> Decimal,
        book: F,
    ) -> Result<Option<Denial>, LedgerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<Denial>, LedgerError>>,
    {
        self.room
            .book_with_wait(self.settings.admission_wait, need, book)
            .await
    }

    /// Money was given back by this process: wake the waiters.
    pub(crate) fn freed(&self) {
        self.room.freed();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn settling_a_task_teaches_the_planner_answer_mean() {
        use planex_store::{AccountLimit, Reservation, SpendLedger};
        let ledger = Arc::new(planex_store::MemoryLedger::new());
        let guard = BudgetGuard::new(ledger.clone(), BudgetSettings::default());
        let price = Price::PerMillion {
            usd_per_million_input: Decimal::from(1),
            usd_per_million_output: Decimal::from(1),
        };
        let unobserved = guard.planning_expected("planner", 1000, &price);
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
            round: None,
            latency_ms: None,
            response_id: None,
        };
        let record: TaskRecord = serde_json::from_value(serde_json::json!({
            "task_id": "t", "task": "x", "status": "complete", "steps": {},
            "calls": [call], "created_at_ms": 0
        }))
        .unwrap();
        guard.settle(&record).await;
        // 1,000 bytes bound at 500 tokens, then 256 answer tokens until 20 are observed ($1/M).
        assert_eq!(unobserved, Decimal::new(756, 6));
        assert_eq!(
            guard.planning_expected("planner", 1000, &price),
            Decimal::new(520, 6),
            "the observed mean answer"
        );
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
            guard.planning_estimate("planner", 3000, 1000, &price),
            Decimal::new(35, 4)
        );
    }
}
