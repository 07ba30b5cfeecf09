//! A model that answers every call at once, without I/O: for benchmarks that measure everything
//! but the model (the engine's own overhead, the store's throughput), and for tests that need a
//! tier whose answers cost nothing and never fail.

use crate::{CallContext, ChatFailure, ChatModel, ChatOutcome, ChatRequest};
use planex_core::{Price, Usage};
use std::time::Duration;

/// Answers every call at once with a fixed reply and usage, priced like a real tier.
#[derive(Debug, Clone)]
pub struct InstantModel {
    tier: String,
    reply: String,
    usage: Usage,
    price: Price,
}

impl InstantModel {
    /// A model for TIER, priced by PRICE, replying "ok" with 12 prompt and 1 completion tokens.
    pub fn new(tier: &str, price: Price) -> Self {
        InstantModel {
            tier: tier.to_owned(),
            reply: "ok".to_owned(),
            usage: Usage {
                prompt_tokens: 12,
                completion_tokens: 1,
                cached_tokens: 0,
            },
            price,
        }
    }

    /// The same model replying REPLY and reporting USAGE for every call.
    pub fn with_reply(mut self, reply: &str, usage: Usage) -> Self {
        self.reply = reply.to_owned();
        self.usage = usage;
        self
    }
}

#[async_trait::async_trait]
impl ChatModel for InstantModel {
    async fn chat(
        &self,
        _request: &ChatRequest,
        _ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure> {
        Ok(ChatOutcome {
            content: self.reply.clone(),
            tool_calls: Vec::new(),
            usage: self.usage,
            model: "instant".to_owned(),
            ttft: Some(Duration::ZERO),
            latency: Duration::ZERO,
            attempts: 1,
            endpoint: "instant://".to_owned(),
            response_request_id: None,
            response_id: None,
        })
    }

    fn tier_name(&self) -> &str {
        &self.tier
    }

    fn model_name(&self) -> &str {
        "instant"
    }

    fn price(&self) -> &Price {
        &self.price
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_with_its_reply_and_usage() {
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            cached_tokens: 0,
        };
        let model = InstantModel::new("small", Price::free()).with_reply("hi", usage);
        let outcome = model
            .chat(&ChatRequest::default(), &CallContext::default())
            .await
            .unwrap_or_else(|e| panic!("instant model failed: {e}"));
        assert_eq!(outcome.content, "hi");
        assert_eq!(outcome.usage, usage);
        assert_eq!(model.tier_name(), "small");
    }
}
