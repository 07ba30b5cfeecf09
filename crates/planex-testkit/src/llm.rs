//! Tier settings for tests (fast, deterministic retries; GPU-hour prices; tiers over a simulator)
//! and [`RecordingModel`], a `ChatModel` decorator that records what passes through.

use async_trait::async_trait;
use planex_core::{Decimal, Price, Usage};
use planex_llm::{
    CallContext, ChatFailure, ChatModel, ChatOutcome, ChatRequest, Endpoint, RetryPolicy,
    TierConfig, TierStatus,
};
use planex_sim::SimServer;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How many retries [`sim_tier_config`] gives a tier.
pub const SIM_TIER_RETRIES: u32 = 3;

/// A retry policy with tiny, deterministic backoffs (5 ms doubling up to 50 ms, no jitter):
/// configuration, not a sleep to wait for state.
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(5),
        multiplier: 2.0,
        max_backoff: Duration::from_millis(50),
        jitter: 0.0,
    }
}

/// A GPU-hour price from decimal text, e.g. `gpu_hour_price("4.54", "2500")`. Panics on text that
/// is not a decimal number.
#[allow(clippy::panic)] // A test helper: panics with the reason.
pub fn gpu_hour_price(usd_per_hour: &str, tokens_per_second: &str) -> Price {
    let decimal = |text: &str| {
        Decimal::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not a decimal: {e}"))
    };
    Price::GpuHour {
        usd_per_hour: decimal(usd_per_hour),
        tokens_per_second: decimal(tokens_per_second),
    }
}

/// Tier `name` serving `model` from the simulator `sim`, priced per GPU hour
/// ([`gpu_hour_price`]), with [`SIM_TIER_RETRIES`] fast retries and a 10 s timeout.
pub fn sim_tier_config(
    name: &str,
    sim: &SimServer,
    model: &str,
    usd_per_hour: &str,
    tokens_per_second: &str,
) -> TierConfig {
    let price = gpu_hour_price(usd_per_hour, tokens_per_second);
    let mut config = TierConfig::new(name, model, vec![Endpoint::new(sim.base_url())], price);
    config.retry = fast_retry(SIM_TIER_RETRIES);
    config.timeout = Duration::from_secs(10);
    config
}

/// A decorator over a real model (usually a tier client talking HTTP to a simulator) that records
/// every request, the usage of every answer and the request id the server echoed back. Everything
/// else is forwarded unchanged, so the engine sees the inner model's tier, price, escalation and
/// status.
pub struct RecordingModel {
    inner: Arc<dyn ChatModel>,
    requests: Mutex<Vec<ChatRequest>>,
    usages: Mutex<Vec<Usage>>,
    echoed_ids: Mutex<Vec<Option<String>>>,
}

/// Locks a recording; a test that panicked while holding it left the data intact.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RecordingModel {
    /// Wraps `inner`, with nothing recorded yet.
    pub fn new(inner: Arc<dyn ChatModel>) -> Arc<Self> {
        Arc::new(RecordingModel {
            inner,
            requests: Mutex::default(),
            usages: Mutex::default(),
            echoed_ids: Mutex::default(),
        })
    }

    /// The requests sent so far, oldest first (failed calls included).
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// The usage of every successful call so far, oldest first.
    pub fn usages(&self) -> Vec<Usage> {
        lock(&self.usages).clone()
    }

    /// The `X-Request-ID` each successful call's server echoed back (`None`: it echoed none).
    pub fn echoed_request_ids(&self) -> Vec<Option<String>> {
        lock(&self.echoed_ids).clone()
    }

    /// Forgets the requests recorded so far (usages and echoed ids are kept).
    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }
}

#[async_trait]
impl ChatModel for RecordingModel {
    async fn chat(
        &self,
        request: &ChatRequest,
        ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure> {
        lock(&self.requests).push(request.clone());
        let outcome = self.inner.chat(request, ctx).await?;
        lock(&self.usages).push(outcome.usage);
        lock(&self.echoed_ids).push(outcome.response_request_id.clone());
        Ok(outcome)
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

    fn cost(&self, usage: &Usage) -> Decimal {
        self.inner.cost(usage)
    }

    fn status(&self) -> Option<TierStatus> {
        self.inner.status()
    }
}
