//! planex-llm: the OpenAI-compatible chat client that every model call of planex goes through.
//!
//! A *tier* ([`Tier`]) is a named pool of OpenAI-compatible endpoints serving one model at one price.
//! A call ([`ChatModel::chat`]) is bounded by the tier's concurrency limit, spread round-robin over its
//! endpoints, timed out per attempt and retried with exponential backoff and jitter on transport
//! errors, timeouts, 429, 5xx and malformed bodies (never on other 4xx), each retry moving to the next
//! endpoint so a dead one is routed around. Streaming (the default) measures time to first token.
//!
//! Key decision: the engine depends only on the [`ChatModel`] trait (`Arc<dyn ChatModel>` per tier),
//! so tests and later issues can plug in other implementations without an HTTP server.

mod attempt;
mod config;
mod error;
mod http;
mod retry;
mod sse;
mod tier;
mod tier_set;
mod types;
mod wire;

pub use config::{Endpoint, TierConfig};
pub use error::{ChatFailure, LlmError, TierSetError};
pub use http::{default_client, list_models};
pub use retry::RetryPolicy;
pub use tier::{ChatModel, Tier};
pub use tier_set::TierSet;
pub use types::{CallContext, ChatMessage, ChatOutcome, ChatRequest, Role};
