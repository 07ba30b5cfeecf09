//! Errors of chat calls and of tier configuration.
//!
//! Key decision: [`LlmError::is_retryable`] is the single place that encodes docs/ARCHITECTURE.md §4 (transport
//! errors, timeouts, 429, 5xx and unparseable bodies are retried; other 4xx are not), so the retry
//! loop and the engine agree on it.

use planex_core::cause::SharedSource;
use std::time::Duration;

/// How many characters of an error response body are kept.
pub(crate) const MAX_ERROR_BODY_CHARS: usize = 500;

/// One failed attempt (or a configuration error) of a chat call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The request could not be sent or the response could not be read.
    #[error("endpoint {endpoint}: request failed (check that the server is running and reachable)")]
    Transport {
        /// Base URL of the endpoint.
        endpoint: String,
        /// The `reqwest::Error` (connection refused, reset, TLS…), kept for the error chain.
        #[source]
        source: SharedSource,
    },
    /// The attempt took longer than the tier's per-attempt timeout.
    #[error(
        "endpoint {endpoint}: no complete answer within {after:?} (the server is overloaded or hung; \
         raise the tier's timeout or add capacity)"
    )]
    Timeout {
        /// Base URL of the endpoint.
        endpoint: String,
        /// The per-attempt timeout that expired.
        after: Duration,
    },
    /// The server answered with a non-success HTTP status.
    #[error("endpoint {endpoint}: HTTP {status}: {body}{hint}", hint = status_hint(*status))]
    Status {
        /// Base URL of the endpoint.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The server answered 200 with a body or event stream that is not a chat completion.
    #[error(
        "endpoint {endpoint}: malformed response: {detail} (is this an OpenAI-compatible \
         /chat/completions server?)"
    )]
    Malformed {
        /// Base URL of the endpoint.
        endpoint: String,
        /// What could not be parsed.
        detail: String,
        /// The JSON parser's error, when there is one.
        #[source]
        source: Option<SharedSource>,
    },
    /// A tier was configured without endpoints.
    #[error(
        "tier {tier}: no endpoints configured (add at least one endpoint base URL to the tier)"
    )]
    NoEndpoints {
        /// The tier's name.
        tier: String,
    },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client (check the system's TLS configuration)")]
    ClientSetup {
        /// The `reqwest::Error` of the client builder.
        #[source]
        source: SharedSource,
    },
    /// Every endpoint of the tier is refused (it serves a model other than the pinned one).
    #[error("tier {tier}: no usable endpoint: {detail}")]
    NoUsableEndpoint {
        /// The tier's name.
        tier: String,
        /// Each endpoint and why it is refused.
        detail: String,
    },
    /// The call was not made: its worst case does not fit what is left of a budget.
    #[error("budget_exhausted: {detail}")]
    BudgetExhausted {
        /// Which budget, what is left and what the call would have needed.
        detail: String,
    },
    /// The call was not made: its task was cancelled.
    #[error("cancelled: the task was cancelled, so no new model call is made")]
    Cancelled,
    /// A tier setting is unusable.
    #[error("tier {tier}: invalid configuration: {detail}")]
    InvalidConfig {
        /// The tier's name.
        tier: String,
        /// What is wrong and how to fix it.
        detail: String,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (check the tier endpoint's API key)",
        404 => {
            " (check the tier's model name and the endpoint's base URL, which should end in /v1)"
        }
        429 => " (the server is rate limiting; lower the tier's max_concurrency or add capacity)",
        400 | 413 | 422 => {
            " (the server rejected the request; check the prompt length and max_tokens)"
        }
        500..=599 => " (server error; see the server's logs)",
        _ => "",
    }
}

impl LlmError {
    /// Whether another attempt may succeed: transport errors, timeouts, 429, 5xx and malformed
    /// responses are retryable; other statuses and configuration errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Transport { .. } | LlmError::Timeout { .. } | LlmError::Malformed { .. } => {
                true
            }
            LlmError::Status { status, .. } => *status == 429 || (500..=599).contains(status),
            LlmError::NoEndpoints { .. }
            | LlmError::NoUsableEndpoint { .. }
            | LlmError::InvalidConfig { .. }
            | LlmError::BudgetExhausted { .. }
            | LlmError::Cancelled
            | LlmError::ClientSetup { .. } => false,
        }
    }

    /// The endpoint the error came from, if it came from one.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            LlmError::Transport { endpoint, .. }
            | LlmError::Timeout { endpoint, .. }
            | LlmError::Status { endpoint, .. }
            | LlmError::Malformed { endpoint, .. } => Some(endpoint),
            LlmError::NoEndpoints { .. }
            | LlmError::NoUsableEndpoint { .. }
            | LlmError::InvalidConfig { .. }
            | LlmError::BudgetExhausted { .. }
            | LlmError::Cancelled
            | LlmError::ClientSetup { .. } => None,
        }
    }

    /// The HTTP status, for [`LlmError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            LlmError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short stable name of the variant, for metrics labels and `error.type` span attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Transport { .. } => "transport",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Status { .. } => "status",
            LlmError::Malformed { .. } => "malformed",
            LlmError::NoEndpoints { .. } => "no_endpoints",
            LlmError::NoUsableEndpoint { .. } => "no_usable_endpoint",
            LlmError::InvalidConfig { .. } => "invalid_config",
            LlmError::ClientSetup { .. } => "client_setup",
            LlmError::BudgetExhausted { .. } => "budget_exhausted",
            LlmError::Cancelled => "cancelled",
        }
    }
}

/// A chat call that failed for good: the last attempt's error and how many attempts were made.
///
/// Its message includes the last attempt's error, so its source is that error's own source (the
/// `reqwest::Error` of a transport failure): the chain goes on from there without repeating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatFailure {
    /// The tier the call ran on.
    pub tier: String,
    /// Attempts made (1 = the first attempt failed with a non-retryable error, or retries are off).
    pub attempts: u32,
    /// The error of the last attempt.
    pub error: LlmError,
    /// The errors of the attempts before the last one, in order (empty without retries), as
    /// text: what a dead letter shows per attempt.
    pub earlier: Vec<String>,
}

impl std::fmt::Display for ChatFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.error.is_retryable() {
            "gave up"
        } else {
            "failed without retry"
        };
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "tier {}: {verdict} after {} attempt{plural}: {}",
            self.tier, self.attempts, self.error
        )
    }
}

impl std::error::Error for ChatFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// A tier set that cannot be built or a lookup of a tier it does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierSetError {
    /// No tier of that name.
    #[error("unknown tier {name:?} (known tiers: {known})", known = join_names(known))]
    UnknownTier {
        /// The name asked for.
        name: String,
        /// The tiers that exist.
        known: Vec<String>,
    },
    /// Two tiers share a name.
    #[error("tier {name:?} is defined twice (give each tier a unique name)")]
    DuplicateTier {
        /// The repeated name.
        name: String,
    },
    /// A tier's `escalate_to` names no tier.
    #[error(
        "tier {tier:?} escalates to unknown tier {target:?} (known tiers: {known}; fix escalate_to \
         or remove it)", known = join_names(known)
    )]
    UnknownEscalation {
        /// The tier whose `escalate_to` is wrong.
        tier: String,
        /// The name it gave.
        target: String,
        /// The tiers that exist.
        known: Vec<String>,
    },
    /// A tier's `escalate_to` names itself.
    #[error("tier {tier:?} escalates to itself (escalate_to must name a different tier)")]
    SelfEscalation {
        /// The tier.
        tier: String,
    },
    /// A tier could not be built.
    #[error(transparent)]
    Tier(#[from] LlmError),
}

fn join_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Cuts `body` to at most [`MAX_ERROR_BODY_CHARS`] characters, marking the cut.
pub(crate) fn truncate_body(body: &str) -> String {
    planex_core::clip_chars(body.trim(), MAX_ERROR_BODY_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> LlmError {
        LlmError::Status {
            endpoint: "http://x/v1".into(),
            status: code,
            body: String::new(),
        }
    }

    #[test]
    fn retryable_follows_design_section_4() {
        assert!(
            LlmError::Transport {
                endpoint: "e".into(),
                source: SharedSource::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused
                ))
            }
            .is_retryable()
        );
        assert!(
            LlmError::Timeout {
                endpoint: "e".into(),
                after: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(
            LlmError::Malformed {
                endpoint: "e".into(),
                detail: "x".into(),
                source: None
            }
            .is_retryable()
        );
        for code in [429, 500, 502, 503, 504] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
        assert!(!LlmError::NoEndpoints { tier: "t".into() }.is_retryable());
    }

    #[test]
    fn failure_display_names_tier_attempts_and_cause() {
        let failure = ChatFailure {
            earlier: Vec::new(),
            tier: "executor".into(),
            attempts: 4,
            error: status(503),
        };
        let text = failure.to_string();
        assert!(
            text.starts_with(
                "tier executor: gave up after 4 attempts: endpoint http://x/v1: HTTP 503"
            ),
            "{text}"
        );
        let failure = ChatFailure {
            earlier: Vec::new(),
            tier: "executor".into(),
            attempts: 1,
            error: status(400),
        };
        assert!(
            failure
                .to_string()
                .contains("failed without retry after 1 attempt:")
        );
    }

    #[test]
    fn bodies_are_truncated_on_char_boundaries() {
        let long = "é".repeat(MAX_ERROR_BODY_CHARS + 10);
        let cut = truncate_body(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_BODY_CHARS + 1);
        assert_eq!(truncate_body(" short "), "short");
    }

    #[test]
    fn unknown_tier_lists_known_tiers() {
        let err = TierSetError::UnknownTier {
            name: "big".into(),
            known: vec!["planner".into(), "small".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown tier \"big\" (known tiers: planner, small)"
        );
    }
}
