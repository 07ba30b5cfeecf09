//! Tier configuration as built by the CLI: endpoints, model, price, limits and retry policy.
//!
//! Key decision: these are plain structs with defaults and no serde; the CLI owns the config file
//! format and builds them, so this crate does not fix field names of `planex.toml`.

use crate::endpoint::Endpoint;
use crate::health::HealthPolicy;
use crate::retry::RetryPolicy;
use planex_core::Price;
use std::time::Duration;

/// What a tier is used for; it decides the tier's default timeout and retries
/// (docs/ARCHITECTURE.md §5, reference defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierRole {
    /// The planner tier (it also synthesises): 120 s per call, not retried, because re-planning
    /// beats retrying and a failed planner call should fail fast.
    Planner,
    /// A tier that runs steps: 30 s per call, 3 retries at about 1 s, 2 s, 4 s.
    Executor,
}

/// Everything needed to build a [`crate::Tier`].
#[derive(Debug, Clone, PartialEq)]
pub struct TierConfig {
    /// The tier's name (`planner`, `small`, …).
    pub name: String,
    /// The model name sent in every request.
    pub model: String,
    /// The servers of the pool; at least one.
    pub endpoints: Vec<Endpoint>,
    /// The price used to cost every call.
    pub price: Price,
    /// Most calls in flight from this process at once (default 32).
    pub max_concurrency: usize,
    /// Limit on one attempt, from sending the request to the end of the body or stream (default 120 s).
    pub timeout: Duration,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Stream responses (default true: only streaming measures TTFT).
    pub stream: bool,
    /// The tier a failed step is retried on once before it counts as failed.
    pub escalate_to: Option<String>,
    /// Passive cooldown, active checks and model pinning of the endpoints.
    pub health: HealthPolicy,
}

impl TierConfig {
    /// Default most calls in flight per tier and process.
    pub const DEFAULT_MAX_CONCURRENCY: usize = 32;
    /// Default per-attempt timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default per-attempt timeout of the planner tier ([`TierRole::Planner`]).
    pub const DEFAULT_PLANNER_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default per-attempt timeout of an executor tier ([`TierRole::Executor`]).
    pub const DEFAULT_EXECUTOR_TIMEOUT: Duration = Duration::from_secs(30);

    /// A config with the defaults for everything but name, model, endpoints and price.
    pub fn new(
        name: impl Into<String>,
        model: impl Into<String>,
        endpoints: Vec<Endpoint>,
        price: Price,
    ) -> Self {
        Self {
            name: name.into(),
            model: model.into(),
            endpoints,
            price,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
            timeout: Self::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            stream: true,
            escalate_to: None,
            health: HealthPolicy::default(),
        }
    }

    /// Sets the timeout and retry policy to the defaults of `role`: the planner tier 120 s and no
    /// retry, an executor tier 30 s and 3 retries at about 1 s, 2 s, 4 s.
    pub fn with_role_defaults(mut self, role: TierRole) -> Self {
        self.timeout = Self::default_timeout(role);
        self.retry = match role {
            TierRole::Planner => RetryPolicy::none(),
            TierRole::Executor => RetryPolicy::default(),
        };
        self
    }

    /// The default per-attempt timeout of a tier with `role`.
    pub fn default_timeout(role: TierRole) -> Duration {
        match role {
            TierRole::Planner => Self::DEFAULT_PLANNER_TIMEOUT,
            TierRole::Executor => Self::DEFAULT_EXECUTOR_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TierConfig {
        TierConfig::new("t", "m", Vec::new(), Price::free())
    }

    #[test]
    fn planner_tier_defaults_to_no_retry_and_120_s() {
        let planner = config().with_role_defaults(TierRole::Planner);
        assert_eq!(planner.retry.max_retries, 0);
        assert_eq!(planner.timeout, Duration::from_secs(120));
    }

    #[test]
    fn executor_tier_defaults_to_three_retries_and_30_s() {
        let executor = config().with_role_defaults(TierRole::Executor);
        assert_eq!(executor.retry.max_retries, 3);
        assert_eq!(executor.retry.initial_backoff, Duration::from_secs(1));
        assert_eq!(executor.retry.multiplier, 2.0);
        assert_eq!(executor.timeout, Duration::from_secs(30));
    }
}
