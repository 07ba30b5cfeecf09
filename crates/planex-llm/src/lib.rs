//! planex-llm: the OpenAI-compatible chat client that every model call of planex goes through.
//!
//! A *tier* ([`Tier`]) is a named pool of OpenAI-compatible endpoints serving one model at one price.
//! A call ([`ChatModel::chat`]) is bounded by the tier's concurrency limit, sent to the usable
//! endpoint with the fewest requests in flight, timed out per attempt and retried with exponential
//! backoff and jitter on transport errors, timeouts, 429, 5xx and malformed bodies (never on other
//! 4xx), each retry preferring another endpoint so a dead one is routed around. Endpoints that keep
//! failing sit out a cooldown; active checks (`GET /models` or `/health`) mark unreachable ones and
//! refuse any that serve a model other than the pinned one. Streaming (the default) measures time to
//! first token, kept as rolling p50/p95 per tier for the autoscaler.
//!
//! Key decision: the engine depends only on the [`ChatModel`] trait (`Arc<dyn ChatModel>` per tier),
//! so tests and later issues can plug in other implementations without an HTTP server.

mod attempt;
mod checks;
mod config;
mod endpoint;
mod error;
#[cfg(test)]
mod fuzz_targets;
mod health;
mod http;
mod instant;
mod pool;
mod retry;
mod sse;
mod tier;
mod tier_set;
pub mod trace_context;
mod ttft;
mod types;
mod wire;

pub use checks::{EndpointProblem, HealthChecks};
pub use config::{TierConfig, TierRole};
pub use endpoint::Endpoint;
pub use error::{ChatFailure, LlmError, TierSetError};
pub use health::{HealthCheckKind, HealthEvent, HealthEventKind, HealthPolicy};
pub use http::{default_client, list_models};
pub use instant::InstantModel;
pub use pool::{EndpointState, EndpointStatus};
pub use retry::RetryPolicy;
pub use tier::{ChatModel, Tier, TierStatus};
pub use tier_set::TierSet;
pub use ttft::{TtftSummary, TtftWindow};
pub use types::{
    CallContext, ChatMessage, ChatOutcome, ChatRequest, ContentDelta, DeltaSink, Role, ToolCall,
};
