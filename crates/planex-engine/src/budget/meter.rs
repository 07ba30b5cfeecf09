//! Spend enforced while a task runs (docs/ARCHITECTURE.md §5): every model call of a task — plan,
//! re-plan, step, escalation, synthesis — draws its worst case from the task's reservation before
//! it is made, and settles to its real cost as soon as its usage is known.
//!
//! Key decisions: the meter is a [`ChatModel`] decorator, so the planner, the executor and the
//! escalation path are metered by the same code without knowing it. The worst case of a call is its
//! prompt bound (the tier's learned density, [`PromptDensity`](super::PromptDensity); until learned one
//! token per [`PROMPT_BYTES_PER_TOKEN`](super::PROMPT_BYTES_PER_TOKEN) bytes) plus its whole
//! `max_tokens` answer; every answer's usage teaches the tier's density. A call that does not fit
//! with its `max_tokens` is made with the largest `max_tokens` that fits (at least
//! [`MIN_CALL_TOKENS`]); one that cannot fit even so is not made (`budget_exhausted`). A task whose
//! reservation is unknown (budgets off, or a task started before this layout) is not metered.

use super::density::prompt_bytes;
use super::price::{floor_usd, tokens_cost};
use crate::BudgetGuard;
use async_trait::async_trait;
use planex_core::{Decimal, Price, TaskId, Usage};
use planex_llm::{
    CallContext, ChatFailure, ChatModel, ChatOutcome, ChatRequest, LlmError, TierStatus,
};
use planex_store::{Booking, Denial, LedgerError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The smallest `max_tokens` a call is shrunk to before it is refused instead.
pub const MIN_CALL_TOKENS: u32 = 32;
/// `max_tokens` assumed for a request that sets none.
const UNSET_MAX_TOKENS: u32 = 4096;

/// The largest `max_tokens` whose worst case fits in `left`, if it is at least `MIN_CALL_TOKENS`.
fn affordable_tokens(price: &Price, prompt: u64, left: Decimal, wanted: u32) -> Option<u32> {
    let (_, output) = price.per_million();
    if output <= Decimal::ZERO {
        return Some(wanted);
    }
    let room = left - tokens_cost(price, prompt, 0);
    let tokens = (room * Decimal::from(1_000_000u32) / output).floor();
    let tokens = u32::try_from(tokens.try_into().unwrap_or(0i64).max(0)).unwrap_or(u32::MAX);
    (tokens >= MIN_CALL_TOKENS).then_some(tokens.min(wanted))
}

/// How much a call may cost after a denial of `requested`: what the task's cap leaves (its
/// `spent_usd` is what the task used), or what the account has free plus what the task's hold
/// already covers (`requested` was only the part of the call beyond that hold).
fn room_for_call(denial: &Denial, worst: Decimal) -> Decimal {
    let left = if denial.account.scope == "reservation" {
        denial.limit_usd - denial.spent_usd
    } else {
        let free = denial.limit_usd - denial.spent_usd - denial.reserved_usd;
        free + (worst - denial.requested_usd)
    };
    floor_usd(left.max(Decimal::ZERO))
}

/// The answer to one draw.
enum Drawn {
    Granted,
    /// The task has no reservation: the call is not metered.
    Unmetered,
    Denied(Denial),
}

/// A tier model whose every call is metered against one task's reservation.
pub struct MeteredModel {
    inner: Arc<dyn ChatModel>,
    guard: Arc<BudgetGuard>,
    task: TaskId,
    /// Call ids are `PREFIX` + a counter (`STEP/CLAIM/N/TIER/K`, or `plan/K`).
    prefix: String,
    next: AtomicU32,
}

impl MeteredModel {
    /// Meters `inner`'s calls against task `task`'s reservation, naming them `prefix` + N.
    pub fn new(
        inner: Arc<dyn ChatModel>,
        guard: Arc<BudgetGuard>,
        task: TaskId,
        prefix: String,
    ) -> Self {
        MeteredModel {
            inner,
            guard,
            task,
            prefix,
            next: AtomicU32::new(0),
        }
    }

    fn failure(&self, error: LlmError) -> ChatFailure {
        ChatFailure {
            tier: self.inner.tier_name().to_owned(),
            attempts: 0,
            error,
            earlier: Vec::new(),
        }
    }

    fn unavailable(&self, error: &LedgerError) -> ChatFailure {
        self.failure(LlmError::BudgetExhausted {
            detail: format!(
                "the task's budget could not be checked, so the call was not made: {}",
                planex_core::cause::ErrorChain(error)
            ),
        })
    }

    /// Draws the call's worst case; `Ok(None)` when the task is not metered, `Ok(Some(max_tokens))`
    /// when granted (possibly with a smaller `max_tokens`: what fits the task's budget, or what is
    /// free in its accounts).
    async fn draw(
        &self,
        call: &str,
        request: &ChatRequest,
    ) -> Result<Option<(u32, Decimal)>, ChatFailure> {
        let price = self.inner.price();
        let prompt = self.guard.density().bound(self.inner.tier_name(), request);
        let wanted = request.max_tokens.unwrap_or(UNSET_MAX_TOKENS);
        let worst = tokens_cost(price, prompt, u64::from(wanted));
        let denial = match self.book(call, worst).await? {
            Drawn::Granted => return Ok(Some((wanted, worst))),
            Drawn::Unmetered => return Ok(None),
            Drawn::Denied(denial) => denial,
        };
        let mut left = room_for_call(&denial, worst);
        if let Some(tokens) = affordable_tokens(price, prompt, left, wanted) {
            let smaller = tokens_cost(price, prompt, u64::from(tokens));
            match self.book(call, smaller).await? {
                Drawn::Granted => return Ok(Some((tokens, smaller))),
                Drawn::Unmetered => return Ok(None),
                Drawn::Denied(again) => left = room_for_call(&again, smaller),
            }
        }
        let scope = if denial.account.scope == "reservation" {
            "task's".to_owned()
        } else {
            denial.account.name.clone()
        };
        metrics::counter!("budget_exhausted_total", "budget" => scope.clone()).increment(1);
        Err(self.failure(LlmError::BudgetExhausted {
            detail: format!(
                "a call to tier {} needs up to ${worst} ({prompt} prompt tokens at most and \
                 max_tokens {wanted}) but only ${left} is left of the {scope} budget; raise the \
                 budget or plan fewer steps",
                self.inner.tier_name(),
            ),
        }))
    }

    /// One draw of `amount`.
    async fn book(&self, call: &str, amount: Decimal) -> Result<Drawn, ChatFailure> {
        let ledger = self.guard.ledger();
        let closed = AtomicBool::new(false);
        let attempt = || async {
            match ledger.draw(&self.task.0, call, amount).await? {
                Booking::Denied(denial) => Ok(Some(denial)),
                Booking::Granted => Ok(None),
                Booking::Closed => {
                    closed.store(true, Ordering::Relaxed);
                    Ok(None)
                }
            }
        };
        match attempt().await {
            _ if closed.load(Ordering::Relaxed) => Err(self.failure(LlmError::Cancelled)),
            Ok(None) => Ok(Drawn::Granted),
            Ok(Some(denial)) => Ok(Drawn::Denied(denial)),
            // Budgets off: nothing to meter. Budgets on: the task's reservation was settled (the
            // task ended or was cancelled), so no new call of it is made.
            Err(LedgerError::UnknownReservation(_)) if !self.guard.settings().enabled => {
                Ok(Drawn::Unmetered)
            }
            Err(LedgerError::UnknownReservation(_)) => Err(self.failure(LlmError::Cancelled)),
            Err(error) => Err(self.unavailable(&error)),
        }
    }

    /// Settles a drawn call at its real cost: 0 when it failed, its worst case when it succeeded
    /// but the server reported no usage (what it served is unknown, so it is never under-billed).
    async fn settle(
        &self,
        call: &str,
        usage: Option<&Usage>,
        response_id: Option<&str>,
        worst: Decimal,
    ) {
        let (actual, usage) = match usage {
            None => (Decimal::ZERO, Usage::default()),
            Some(u) if u.prompt_tokens + u.completion_tokens == 0 => (worst, *u),
            Some(u) => (self.inner.cost(u), *u),
        };
        if actual > worst {
            // The prompt was denser than the tier's bound; the call is billed at what it cost
            // (never under-billed), and the density it taught bounds the next call.
            tracing::warn!(task = %self.task, call, %actual, %worst, tier = self.inner.tier_name(),
                "a call cost more than its drawn worst case: its prompt was denser than any seen on the tier");
        }
        if let Err(error) = self
            .guard
            .ledger()
            .settle_draw(&self.task.0, call, actual, &usage, response_id)
            .await
        {
            tracing::error!(task = %self.task, call, error = %planex_core::cause::ErrorChain(&error),
                "could not settle a model call's worst case; it stays charged at that amount");
        }
    }
}

#[async_trait]
impl ChatModel for MeteredModel {
    async fn chat(
        &self,
        request: &ChatRequest,
        ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure> {
        let call = format!(
            "{}{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let Some((max_tokens, drawn)) = self.draw(&call, request).await? else {
            return self.inner.chat(request, ctx).await;
        };
        let result = if request.max_tokens == Some(max_tokens) {
            self.inner.chat(request, ctx).await
        } else {
            tracing::info!(task = %self.task, call, max_tokens, "max_tokens lowered to fit the task's budget");
            let shrunk = request.clone().with_max_tokens(max_tokens);
            self.inner.chat(&shrunk, ctx).await
        };
        let usage = result.as_ref().ok().map(|o| &o.usage);
        if let Some(usage) = usage {
            self.guard.density().observe(
                self.inner.tier_name(),
                prompt_bytes(request),
                usage.prompt_tokens,
            );
        }
        let response_id = result.as_ref().ok().and_then(|o| o.response_id.as_deref());
        self.settle(&call, usage, response_id, drawn).await;
        result
    }

    fn tier_name(&self) -> &str {
        self.inner.tier_name()
    }

    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn price(&self) -> &Price {
        self.inner.price()
    }

    fn escalate_to(&self) -> Option<&str> {
        self.inner.escalate_to()
    }

    fn status(&self) -> Option<TierStatus> {
        self.inner.status()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn price() -> Price {
        Price::PerMillion {
            usd_per_million_input: Decimal::from(1),
            usd_per_million_output: Decimal::from(2),
        }
    }

    #[test]
    fn affordable_tokens_fit_what_is_left() {
        // 100 prompt tokens cost $0.0001; $0.0003 leaves $0.0002 = 100 output tokens.
        let left = Decimal::new(3, 4);
        assert_eq!(affordable_tokens(&price(), 100, left, 1000), Some(100));
        assert_eq!(affordable_tokens(&price(), 100, left, 50), Some(50));
        // Less than MIN_CALL_TOKENS fits: refused.
        assert_eq!(
            affordable_tokens(&price(), 100, Decimal::new(15, 5), 1000),
            None
        );
        let worst = tokens_cost(&price(), 100, 100);
        assert_eq!(worst, left);
    }
}
