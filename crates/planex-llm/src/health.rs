//! Endpoint health: the policy (passive cooldown and active checks), health events, the active
//! check of one endpoint, and model pinning.
//!
//! Key decision: model pinning is part of every active check, not a start-up formality. A server
//! restarted with other weights keeps answering 200, but a planner model that changed breaks plan
//! parsing and an executor that changed breaks prices and quality, so an endpoint whose
//! `GET /models` does not list the tier's configured model id is *refused* (never sent a call) with a
//! message saying what it serves and what was expected, until a later check sees the right model.

use crate::endpoint::Endpoint;
use crate::error::LlmError;
use crate::http::list_models;
use planex_core::cause::{SharedSource, chain_text};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What an active health check requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    /// `GET {base_url}/models`: liveness and the served model ids in one call (any OpenAI server).
    #[default]
    Models,
    /// `GET {origin}/health` for liveness (vLLM, SGLang, TGI), plus `GET /models` for the model pin.
    Health,
}

/// How a tier judges its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive endpoint failures that put an endpoint in cooldown (0 = never).
    pub allowed_fails: u32,
    /// How long an endpoint sits out after `allowed_fails` failures (zero = never).
    pub cooldown: Duration,
    /// What an active check requests.
    pub check: HealthCheckKind,
    /// Time between active checks (zero = no periodic checks; start-up verification still runs).
    pub interval: Duration,
    /// Refuse endpoints whose `GET /models` does not list the tier's model.
    pub pin_model: bool,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            allowed_fails: 3,
            cooldown: Duration::from_secs(30),
            check: HealthCheckKind::Models,
            interval: Duration::from_secs(15),
            pin_model: true,
        }
    }
}

/// A change in an endpoint's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthEvent {
    /// The tier.
    pub tier: String,
    /// The endpoint's base URL.
    pub endpoint: String,
    /// What changed.
    pub kind: HealthEventKind,
}

/// What changed about an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum HealthEventKind {
    /// Passive health put it in cooldown.
    CooledDown {
        /// Consecutive failures that tripped it.
        consecutive_failures: u32,
        /// Cooldown length in milliseconds.
        cooldown_ms: u64,
    },
    /// Its cooldown ended (half-open) or a call to it succeeded during cooldown.
    Recovered,
    /// An active check could not reach it.
    Unreachable {
        /// The check's error.
        detail: String,
    },
    /// An active check reached it again.
    Reachable,
    /// It serves a model other than the pinned one.
    Refused {
        /// What it serves and what was expected.
        detail: String,
    },
    /// It serves the pinned model again.
    Readmitted,
}

/// The result of one active check of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckResult {
    /// Why it could not be reached, if it could not.
    pub(crate) unreachable: Option<String>,
    /// Why it is refused (model mismatch), if it is.
    pub(crate) refused: Option<String>,
}

/// The message for an endpoint that does not serve the pinned model.
pub(crate) fn mismatch_message(
    tier: &str,
    endpoint: &Endpoint,
    expected: &str,
    served: &[String],
) -> String {
    let served = if served.is_empty() {
        "no model".to_owned()
    } else {
        served.join(", ")
    };
    format!(
        "tier {tier}: endpoint {} serves {served} but the tier is pinned to model {expected:?}; \
         planex refuses to send it calls (a changed model breaks plan parsing and prices). Serve \
         {expected:?} there, or set tiers.{tier}.model to the served id if the change is intended",
        endpoint.base_url
    )
}

/// Runs one active check of `endpoint` for a tier serving `model`.
pub(crate) async fn check_endpoint(
    client: &reqwest::Client,
    tier: &str,
    model: &str,
    endpoint: &Endpoint,
    policy: &HealthPolicy,
) -> CheckResult {
    if policy.check == HealthCheckKind::Health
        && let Err(error) = get_health(client, endpoint).await
    {
        return CheckResult {
            unreachable: Some(chain_text(&error)),
            refused: None,
        };
    }
    if policy.check == HealthCheckKind::Health && !policy.pin_model {
        return CheckResult {
            unreachable: None,
            refused: None,
        };
    }
    match list_models(client, endpoint).await {
        Err(error) => CheckResult {
            unreachable: Some(chain_text(&error)),
            refused: None,
        },
        Ok(served) => CheckResult {
            unreachable: None,
            refused: (policy.pin_model && !served.iter().any(|id| id == model))
                .then(|| mismatch_message(tier, endpoint, model, &served)),
        },
    }
}

/// `GET {origin}/health`, where origin is the base URL without its `/v1` suffix.
async fn get_health(client: &reqwest::Client, endpoint: &Endpoint) -> Result<(), LlmError> {
    let base = endpoint.base_url.trim_end_matches('/');
    let origin = base.strip_suffix("/v1").unwrap_or(base);
    let url = format!("{origin}/health");
    let mut request = client.get(&url).timeout(crate::http::LIST_MODELS_TIMEOUT);
    if let Some(key) = &endpoint.api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| LlmError::Transport {
        endpoint: endpoint.base_url.clone(),
        source: SharedSource::new(e),
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(LlmError::Status {
            endpoint: endpoint.base_url.clone(),
            status: response.status().as_u16(),
            body: format!("GET {url} failed"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mismatch_message_says_what_is_served_and_what_to_do() {
        let message = mismatch_message(
            "planner",
            &Endpoint::new("http://10.0.0.5:8000/v1"),
            "llama-3.3-70b@2025-01",
            &["llama-3.3-70b@2025-03".to_owned()],
        );
        assert!(message.contains("http://10.0.0.5:8000/v1"), "{message}");
        assert!(
            message.contains("serves llama-3.3-70b@2025-03"),
            "{message}"
        );
        assert!(
            message.contains("pinned to model \"llama-3.3-70b@2025-01\""),
            "{message}"
        );
        assert!(message.contains("tiers.planner.model"), "{message}");
        let empty = mismatch_message("t", &Endpoint::new("http://h/v1"), "m", &[]);
        assert!(empty.contains("serves no model"), "{empty}");
    }
}
