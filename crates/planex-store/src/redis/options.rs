//! [`RedisStoreOptions`]: the settings of the Redis store, and the ones a store URL may carry.

use crate::error::StoreError;
use std::time::Duration;

/// Settings of the Redis store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStoreOptions {
    /// Prefix of every key (`px` gives `px:task:{ID}`); distinct prefixes isolate deployments
    /// sharing one Redis.
    pub prefix: String,
    /// A step handed out this many times without completing is a poison step: it goes to the
    /// dead-letter stream instead of another worker.
    pub max_deliveries: u32,
    /// How long a finished task's keys are kept (`None`: forever).
    pub finished_task_ttl: Option<Duration>,
    /// Approximate cap on the dead-letter stream's length (`XADD MAXLEN ~`).
    pub dead_letter_cap: usize,
    /// How long one command may take before it counts as failed.
    pub response_timeout: Duration,
    /// Most outcomes recorded by one completion script call.
    pub complete_batch: usize,
    /// How long a completion keeps retrying while Redis is unreachable (a restart) before it
    /// gives up and leaves the step to lease expiry.
    pub reconnect_for: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        RedisStoreOptions {
            prefix: "px".into(),
            max_deliveries: 5,
            finished_task_ttl: Some(crate::DEFAULT_FINISHED_TASK_TTL),
            dead_letter_cap: 10_000,
            response_timeout: Duration::from_secs(10),
            complete_batch: 64,
            reconnect_for: Duration::from_secs(30),
        }
    }
}

/// Takes planex's own query parameters off a Redis URL and applies them to `options`:
/// `prefix=NAME`, `max_deliveries=N`, `task_ttl_secs=N` (0: keep finished tasks forever). Other
/// parameters stay for the redis client.
pub(super) fn url_options(
    url: &str,
    mut options: RedisStoreOptions,
) -> Result<(String, RedisStoreOptions), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), options));
    };
    let bad = |param: &str| {
        super::errors::unavailable_because(format!(
            "invalid store URL parameter {param:?}: use prefix=NAME, max_deliveries=N (at least 1) or task_ttl_secs=N"
        ))
    };
    let mut rest = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "prefix" => options.prefix = value.to_owned(),
            "max_deliveries" => {
                options.max_deliveries = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad(param))?;
            }
            "task_ttl_secs" => {
                let secs: u64 = value.parse().map_err(|_| bad(param))?;
                options.finished_task_ttl = (secs > 0).then(|| Duration::from_secs(secs));
            }
            _ => rest.push(param),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, options))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    #[test]
    fn url_parameters_set_store_options_and_the_rest_stays() {
        let (url, options) = super::url_options(
            "redis://h:1/0?prefix=blue&max_deliveries=3&task_ttl_secs=0&protocol=resp3",
            super::RedisStoreOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url, "redis://h:1/0?protocol=resp3");
        assert_eq!(options.prefix, "blue");
        assert_eq!(options.max_deliveries, 3);
        assert_eq!(options.finished_task_ttl, None);
        assert!(
            super::url_options(
                "redis://h?max_deliveries=0",
                super::RedisStoreOptions::default()
            )
            .is_err()
        );
    }
}
