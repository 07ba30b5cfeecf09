//! Shared helpers of the integration tests: simulator start-up and tier construction (the
//! simulator and the fast retries come from planex-testkit).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::Price;
use planex_llm::{ChatMessage, ChatRequest, Endpoint, Tier, TierConfig};
use planex_sim::{SimConfig, SimServer};
use planex_testkit::llm::fast_retry;
use std::time::Duration;

/// The model the test simulators serve.
pub const MODEL: &str = "sim-model";

/// Starts a simulator on 127.0.0.1 with an ephemeral port.
pub async fn start_sim() -> SimServer {
    planex_testkit::sim::start(SimConfig {
        output_tokens: 16,
        ..planex_testkit::sim::config(MODEL)
    })
    .await
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
