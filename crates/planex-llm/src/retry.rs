//! The retry policy: how many retries and how long to wait before each.
//!
//! Key decision: the wait grows exponentially with ±`jitter` randomisation (so many clients that
//! failed together do not retry together) and is always capped at `max_backoff`, including a
//! server's `Retry-After`, so a misbehaving server cannot park a call for minutes.

use rand::Rng;
use std::time::Duration;

/// Retries and exponential backoff with jitter (docs/ARCHITECTURE.md §4: defaults 3 retries, about 1 s, 2 s, 4 s).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Factor between consecutive waits.
    pub multiplier: f64,
    /// Upper bound on any wait, including a server's `Retry-After`.
    pub max_backoff: Duration,
    /// Relative randomisation of each wait: 0.2 = ±20 %; 0 = deterministic.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry_index` (0 = the first retry):
    /// `initial_backoff × multiplier^retry_index`, randomised by ±`jitter`, capped at `max_backoff`.
    pub fn backoff(&self, retry_index: u32) -> Duration {
        let max = self.max_backoff.as_secs_f64();
        let exponent = i32::try_from(retry_index).unwrap_or(i32::MAX);
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.max(0.0).powi(exponent);
        let base = if base.is_finite() { base.min(max) } else { max };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let factor = if jitter > 0.0 {
            1.0 + rand::rng().random_range(-jitter..=jitter)
        } else {
            1.0
        };
        let secs = (base * factor).clamp(0.0, max);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_backoff)
    }

    /// The wait before retry `retry_index` after an error whose server asked for `retry_after`:
    /// the longer of the two, capped at `max_backoff`.
    pub fn delay(&self, retry_index: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry_index);
        match retry_after {
            Some(asked) if asked > backoff => asked.min(self.max_backoff),
            _ => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_grow_about_1_2_4_seconds() {
        let policy = RetryPolicy::default();
        for (index, expected) in [(0u32, 1.0f64), (1, 2.0), (2, 4.0)] {
            for _ in 0..50 {
                let wait = policy.backoff(index).as_secs_f64();
                assert!(
                    wait >= expected * 0.8 - 1e-9 && wait <= expected * 1.2 + 1e-9,
                    "{index}: {wait}"
                );
            }
        }
    }

    #[test]
    fn without_jitter_backoff_is_exact_and_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff(0), Duration::from_millis(100));
        assert_eq!(policy.backoff(1), Duration::from_millis(200));
        assert_eq!(policy.backoff(2), Duration::from_millis(400));
        assert_eq!(policy.backoff(3), Duration::from_millis(500));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn jitter_never_exceeds_the_cap() {
        let policy = RetryPolicy {
            max_backoff: Duration::from_secs(3),
            jitter: 1.0,
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            assert!(policy.backoff(10) <= Duration::from_secs(3));
        }
    }

    #[test]
    fn nonsense_settings_do_not_panic() {
        let policy = RetryPolicy {
            multiplier: f64::NAN,
            jitter: f64::INFINITY,
            ..RetryPolicy::default()
        };
        assert!(policy.backoff(2) <= policy.max_backoff);
        let policy = RetryPolicy {
            multiplier: -3.0,
            jitter: -1.0,
            ..RetryPolicy::default()
        };
        assert!(policy.backoff(2) <= policy.max_backoff);
    }

    #[test]
    fn retry_after_wins_when_longer_but_is_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(5),
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(0, None), Duration::from_millis(10));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(1))),
            Duration::from_millis(10)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
    }
}
