//! A tier: a pool of endpoints serving one model, and the [`ChatModel`] seam the engine calls.
//!
//! Key decisions: each attempt goes to the usable endpoint with the fewest attempts in flight (see
//! `pool`), and a retry prefers an endpoint the call has not tried, so a dead endpoint costs one
//! attempt rather than a failed call; the concurrency slot is held per attempt (not during backoff),
//! so waiting retries do not starve other calls; every streamed call's TTFT feeds the tier's rolling
//! p50/p95, which the autoscaler reads.

use crate::attempt::{AttemptSpec, attempt};
use crate::config::TierConfig;
use crate::error::{ChatFailure, LlmError};
use crate::health::{HealthEvent, check_endpoint};
use crate::pool::{EndpointPool, EndpointStatus, Verdict};
use crate::ttft::{TtftSummary, TtftWindow};
use crate::types::{CallContext, ChatOutcome, ChatRequest};
use crate::wire::WireRequest;
use bytes::Bytes;
use planex_core::{Decimal, Price, Usage};
use serde::Serialize;
use std::time::Instant;
use tokio::sync::{Semaphore, broadcast};
use tracing::Instrument;

/// Anything that answers chat requests for a tier: the engine holds one `Arc<dyn ChatModel>` per tier.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// Runs one chat call, with retries; fails with the last error and the attempts made.
    async fn chat(
        &self,
        request: &ChatRequest,
        ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure>;

    /// The tier's name.
    fn tier_name(&self) -> &str;

    /// The model name sent to the servers.
    fn model_name(&self) -> &str;

    /// The tier's price.
    fn price(&self) -> &Price;

    /// The tier a failed step should be retried on once, if any.
    fn escalate_to(&self) -> Option<&str> {
        None
    }

    /// The exact cost of a call with this usage under the tier's price.
    fn cost(&self, usage: &Usage) -> Decimal {
        self.price().cost(usage)
    }

    /// Endpoint health, load and rolling TTFT, when the implementation tracks them.
    fn status(&self) -> Option<TierStatus> {
        None
    }
}

/// A tier's endpoints, load and TTFT right now (for `/v1/scaling` and `planex scale status`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierStatus {
    /// The tier's name.
    pub tier: String,
    /// The pinned model.
    pub model: String,
    /// Endpoints that take calls now.
    pub healthy_endpoints: usize,
    /// Model calls in flight from this process.
    pub in_flight: usize,
    /// Rolling TTFT percentiles of streamed calls.
    pub ttft: TtftSummary,
    /// Every endpoint.
    pub endpoints: Vec<EndpointStatus>,
}

/// A named pool of OpenAI-compatible endpoints with one model, one price and a concurrency limit.
#[derive(Debug)]
pub struct Tier {
    config: TierConfig,
    client: reqwest::Client,
    slots: Semaphore,
    pool: EndpointPool,
    ttft: TtftWindow,
}

impl Tier {
    /// Builds a tier sharing `client` (one client per process pools connections across tiers).
    /// Fails if the tier has no endpoints, a zero timeout or concurrency, or a base URL that is not
    /// `http(s)://…`.
    pub fn new(config: TierConfig, client: reqwest::Client) -> Result<Tier, LlmError> {
        let invalid = |detail: String| LlmError::InvalidConfig {
            tier: config.name.clone(),
            detail,
        };
        if config.endpoints.is_empty() {
            return Err(LlmError::NoEndpoints {
                tier: config.name.clone(),
            });
        }
        if config.max_concurrency == 0 || config.max_concurrency > Semaphore::MAX_PERMITS {
            return Err(invalid(format!(
                "max_concurrency is {}; set it between 1 and {}",
                config.max_concurrency,
                Semaphore::MAX_PERMITS
            )));
        }
        if config.timeout.is_zero() {
            return Err(invalid(
                "timeout is zero; set a per-attempt timeout such as 120 s".to_string(),
            ));
        }
        if let Some(bad) = config
            .endpoints
            .iter()
            .find(|e| !(e.base_url.starts_with("http://") || e.base_url.starts_with("https://")))
        {
            return Err(invalid(format!(
                "endpoint base URL {:?} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)",
                bad.base_url
            )));
        }
        Ok(Tier {
            slots: Semaphore::new(config.max_concurrency),
            pool: EndpointPool::new(&config.name, &config.endpoints, config.health.clone()),
            ttft: TtftWindow::default(),
            config,
            client,
        })
    }

    /// The tier's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The model name sent in every request.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The tier's price.
    pub fn price(&self) -> &Price {
        &self.config.price
    }

    /// The configuration the tier was built from.
    pub fn config(&self) -> &TierConfig {
        &self.config
    }

    /// The exact cost of a call with this usage under the tier's price.
    pub fn cost(&self, usage: &Usage) -> Decimal {
        self.config.price.cost(usage)
    }

    /// Attempts in flight from this process right now.
    pub fn in_flight(&self) -> usize {
        self.config
            .max_concurrency
            .saturating_sub(self.slots.available_permits())
    }

    /// Every endpoint's health and load now.
    pub fn endpoint_statuses(&self) -> Vec<EndpointStatus> {
        self.pool.statuses(Instant::now())
    }

    /// Rolling TTFT percentiles of streamed calls.
    pub fn ttft(&self) -> TtftSummary {
        self.ttft.summary(Instant::now())
    }

    /// Endpoints, load and TTFT now.
    pub fn tier_status(&self) -> TierStatus {
        let endpoints = self.endpoint_statuses();
        TierStatus {
            tier: self.config.name.clone(),
            model: self.config.model.clone(),
            healthy_endpoints: endpoints.iter().filter(|e| e.is_healthy()).count(),
            in_flight: self.in_flight(),
            ttft: self.ttft(),
            endpoints,
        }
    }

    /// Health changes of this tier's endpoints from now on (cooldowns, recoveries, refusals).
    pub fn health_events(&self) -> broadcast::Receiver<HealthEvent> {
        self.pool.subscribe()
    }

    /// Runs one active check of every endpoint (reachability and the model pin) and ends expired
    /// cooldowns; returns the endpoints' states afterwards.
    pub async fn check_health(&self) -> Vec<EndpointStatus> {
        let policy = self.pool.policy();
        let checks = self.pool.endpoints().map(|(index, endpoint)| async move {
            let result = check_endpoint(
                &self.client,
                &self.config.name,
                &self.config.model,
                endpoint,
                policy,
            )
            .await;
            (index, result)
        });
        for (index, result) in futures::future::join_all(checks).await {
            self.pool
                .record_check(index, result.unreachable, result.refused);
        }
        self.pool.expire_cooldowns(Instant::now());
        self.endpoint_statuses()
    }

    async fn run(
        &self,
        request: &ChatRequest,
        ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure> {
        let started = Instant::now();
        // The errors of the attempts retried so far (a dead letter lists them).
        let mut earlier: Vec<String> = Vec::new();
        let fail = |attempts: u32, error: LlmError, earlier: &[String]| ChatFailure {
            tier: self.config.name.clone(),
            attempts,
            error,
            earlier: earlier.to_vec(),
        };
        // A followed call streams so its content can be passed on as it arrives.
        let stream = self.config.stream || ctx.deltas.is_some();
        let wire = WireRequest::new(&self.config.model, request, stream);
        let body = serde_json::to_vec(&wire).map_err(|e| {
            fail(
                0,
                LlmError::InvalidConfig {
                    tier: self.config.name.clone(),
                    detail: format!("the request could not be encoded as JSON: {e}"),
                },
                &[],
            )
        })?;
        let spec = AttemptSpec {
            client: &self.client,
            body: Bytes::from(body),
            stream,
            timeout: self.config.timeout,
            ctx,
        };
        let mut tried: Vec<usize> = Vec::new();
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let (endpoint, result) = {
                let Ok(_slot) = self.slots.acquire().await else {
                    let detail = "the concurrency limiter was closed".to_string();
                    return Err(fail(
                        attempts,
                        LlmError::InvalidConfig {
                            tier: self.config.name.clone(),
                            detail,
                        },
                        &earlier,
                    ));
                };
                let pick = self
                    .pool
                    .pick(&tried, Instant::now())
                    .map_err(|e| fail(attempts, e, &earlier))?;
                tried.push(pick.index());
                let result = attempt(&spec, pick.endpoint(), attempts).await;
                let verdict = match &result {
                    Ok(_) => Verdict::Success,
                    Err(failed) => Verdict::of_error(&failed.error),
                };
                self.pool.record(pick.index(), verdict, Instant::now());
                (pick.endpoint().base_url.clone(), result)
            };
            match result {
                Ok(ok) => {
                    let usage = ok.usage.unwrap_or_else(|| {
                        tracing::warn!(tier = %self.config.name, endpoint = %endpoint,
                            "server reported no token usage; counting zero tokens for this call");
                        Usage::default()
                    });
                    if let Some(ttft) = ok.ttft {
                        self.ttft.record(Instant::now(), ttft);
                        metrics::histogram!("ttft_seconds", "tier" => self.config.name.clone())
                            .record(ttft.as_secs_f64());
                    }
                    return Ok(ChatOutcome {
                        content: ok.content,
                        tool_calls: ok.tool_calls,
                        usage,
                        model: ok.model.unwrap_or_else(|| self.config.model.clone()),
                        ttft: ok.ttft,
                        latency: started.elapsed(),
                        attempts,
                        endpoint,
                        response_request_id: ok.response_request_id,
                        response_id: ok.response_id,
                    });
                }
                Err(failed) => {
                    let retry_index = attempts - 1;
                    if !failed.error.is_retryable() || retry_index >= self.config.retry.max_retries
                    {
                        return Err(fail(attempts, failed.error, &earlier));
                    }
                    earlier.push(format!(
                        "attempt {attempts}: {}",
                        planex_core::cause::ErrorChain(&failed.error)
                    ));
                    let wait = self.config.retry.delay(retry_index, failed.retry_after);
                    tracing::warn!(tier = %self.config.name, attempt = attempts, error = %planex_core::cause::ErrorChain(&failed.error),
                        retry_in_ms = wait.as_millis() as u64, "chat attempt failed; retrying, on another endpoint when there is one");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl ChatModel for Tier {
    async fn chat(
        &self,
        request: &ChatRequest,
        ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure> {
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {}", self.config.model),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.request.model = %self.config.model,
            planex.tier = %self.config.name,
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        );
        let result = self.run(request, ctx).instrument(span.clone()).await;
        match &result {
            Ok(outcome) => {
                span.record("gen_ai.response.model", outcome.model.as_str());
                span.record("gen_ai.usage.input_tokens", outcome.usage.prompt_tokens);
                span.record(
                    "gen_ai.usage.output_tokens",
                    outcome.usage.completion_tokens,
                );
            }
            Err(failure) => {
                span.record("error.type", failure.error.kind());
            }
        }
        result
    }

    fn tier_name(&self) -> &str {
        &self.config.name
    }

    fn model_name(&self) -> &str {
        &self.config.model
    }

    fn price(&self) -> &Price {
        &self.config.price
    }

    fn escalate_to(&self) -> Option<&str> {
        self.config.escalate_to.as_deref()
    }

    fn status(&self) -> Option<TierStatus> {
        Some(self.tier_status())
    }
}
