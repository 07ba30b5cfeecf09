//! Tier configuration as built by the CLI: endpoints, model, price, limits and retry policy.
//!
//! Key decision: these are plain structs with defaults and no serde; the CLI owns the config file
//! format and builds them, so this crate does not fix field names of `planex.toml`.

use crate::endpoint::Endpoint;
use crate::health::HealthPolicy;
use crate::retry::RetryPolicy;
use planex_core::Price;
use std::time::Duration;

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
}
