//! The parts of one chat answer that the plain (`chat.rs`) and streaming (`stream.rs`) responses
//! share: its token usage, its id/created/model fields, and the time its tokens take to emit.

use serde_json::{Value, json};
use std::time::Duration;

/// Token usage of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens: Σ(tokens(content) + 4) + 3.
    pub prompt_tokens: u32,
    /// Tokens of the answer content.
    pub completion_tokens: u32,
}

impl Usage {
    /// The OpenAI `usage` object.
    pub fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens.saturating_add(self.completion_tokens),
            "prompt_tokens_details": {"cached_tokens": 0},
        })
    }
}

/// Fields shared by every chunk / answer of one response.
#[derive(Clone, Debug)]
pub struct Meta {
    /// `chatcmpl-…` id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Served model id.
    pub model: String,
    /// The request's W3C `traceparent` header, if any (kept in the call ledger).
    pub traceparent: Option<String>,
}

/// Time to emit `tokens` at `tps` tokens per second (zero when `tps` is 0).
pub fn token_time(tokens: u32, tps: f64) -> Duration {
    if tps > 0.0 {
        Duration::from_secs_f64(f64::from(tokens) / tps)
    } else {
        Duration::ZERO
    }
}
