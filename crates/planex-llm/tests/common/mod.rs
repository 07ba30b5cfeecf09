//! Shared helpers of the integration tests: simulator start-up and tier construction.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::Price;
use planex_llm::{ChatMessage, ChatRequest, Endpoint, RetryPolicy, Tier, TierConfig};
use planex_sim::{SimConfig, SimServer};
use std::time::Duration;

/// The model the test simulators serve.
pub const MODEL: &str = "sim-model";

/// Starts a simulator on 127.0.0.1 with an ephemeral port.
pub async fn start_sim() -> SimServer {
    let config = SimConfig {
        host: "127.0.0.1".to_string(),
        port: 0,
        model: MODEL.to_string(),
        output_tokens: 16,
        ..SimConfig::default()
    };
    SimServer::start(config).await.expect("simulator starts")
}

/// A retry policy with tiny, deterministic backoffs (configuration, not a sleep to wait for state).
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(5),
        multiplier: 2.0,
        max_backoff: Duration::from_millis(50),
        jitter: 0.0,
    }
}

/// A tier over `base_urls` with fast retries.
pub fn tier(base_urls: &[String], stream: bool, max_retries: u32) -> Tier {
    let mut config = TierConfig::new(
        "executor",
        MODEL,
        base_urls.iter().map(Endpoint::new).collect(),
        Price::free(),
    );
    config.stream = stream;
    config.retry = fast_retry(max_retries);
    config.timeout = Duration::from_secs(30);
    Tier::new(config, planex_llm::default_client().unwrap()).unwrap()
}

/// A one-message user request.
pub fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::user(text)]).with_max_tokens(16)
}
