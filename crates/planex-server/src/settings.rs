//! The HTTP service's validated settings: listen address, API keys and request limits.
//!
//! Key decision: API keys are held only as sha256 hashes, so a leaked config leaks no credential.
//! The config file that produces these settings is read and validated by `planex-app`.

use std::net::SocketAddr;
use std::time::Duration;

/// A validated API key entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    /// sha256 of the token.
    pub key_sha256: [u8; 32],
    /// The tenant it acts for.
    pub tenant: String,
    /// Default cost center.
    pub cost_center: Option<String>,
    /// Further cost centers the key may charge (`X-Cost-Center` or a body's `cost_center`);
    /// its own default is always allowed. Empty: only the default.
    pub cost_centers: Vec<String>,
    /// Its rate limits (off by default).
    pub limits: crate::rate_limit::KeyLimits,
}

impl ApiKeyEntry {
    /// What a request with no cost center charges: the key's `cost_center`, else `default`.
    pub fn default_cost_center(&self) -> &str {
        self.cost_center.as_deref().unwrap_or(DEFAULT_COST_CENTER)
    }

    /// Every cost center this key may charge: its default, then `cost_centers`, without repeats.
    pub fn allowed_cost_centers(&self) -> Vec<String> {
        let mut allowed = vec![self.default_cost_center().to_owned()];
        for name in &self.cost_centers {
            if !allowed.contains(name) {
                allowed.push(name.clone());
            }
        }
        allowed
    }
}

/// The cost center charged when neither the key nor the request names one.
pub const DEFAULT_COST_CENTER: &str = "default";

/// How the API listens, authenticates and limits requests.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Whether requests need an API key.
    pub auth: bool,
    /// The keys.
    pub api_keys: Vec<ApiKeyEntry>,
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Longest wait of `?wait=true` and chat completions.
    pub wait_timeout: Duration,
    /// Model name of the agent endpoint.
    pub agent_name: String,
    /// The agent endpoint answers a partial task with a 502 error instead of its answer.
    pub agent_partial_is_error: bool,
    /// How long an `Idempotency-Key` keeps naming the task it created.
    pub idempotency_ttl: Duration,
    /// Longest a client may take to send a request's head (line and headers); a slower one is
    /// disconnected, so slow clients cannot hold connections open.
    pub header_read_timeout: Duration,
}

impl ServerSettings {
    /// Default largest request body: 1 MiB.
    pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1 << 20;
    /// Default longest wait of `?wait=true`: 300 s.
    pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
    /// Default model name of the agent endpoint.
    pub const DEFAULT_AGENT_NAME: &'static str = "planex";
    /// Default memory of an `Idempotency-Key`: 24 h.
    pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
    /// Default longest time to send a request's head: 30 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = planex_http::DEFAULT_HEADER_READ_TIMEOUT;
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            auth: false,
            api_keys: Vec::new(),
            body_limit_bytes: Self::DEFAULT_BODY_LIMIT_BYTES,
            wait_timeout: Self::DEFAULT_WAIT_TIMEOUT,
            agent_name: Self::DEFAULT_AGENT_NAME.to_owned(),
            agent_partial_is_error: false,
            idempotency_ttl: Self::DEFAULT_IDEMPOTENCY_TTL,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Parses a hex sha256 (64 hex digits), as API keys are configured; `None` if it is not one.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn sha256_hex_is_parsed_exactly() {
        assert_eq!(parse_sha256(HASH).unwrap()[0], 0x9f);
        assert!(parse_sha256(&HASH[1..]).is_none());
        assert!(parse_sha256(&HASH.replace('9', "g")).is_none());
    }
}
