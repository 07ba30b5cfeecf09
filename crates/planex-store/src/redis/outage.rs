//! Loud outages: a process whose Redis becomes unreachable says so at once, again every
//! [`REPEAT_EVERY`] while it stays down, and once more when it is back, with how long it lasted.
//!
//! Key decision: the tracker sees every command's outcome ([`super::shared::Core::retry`]), so
//! nothing needs to poll Redis to notice an outage, and a process that is idle notices it with
//! its next command (workers claim continuously). The healthy path costs one relaxed atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use std::time::Instant;

/// How often an outage that goes on is logged again.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(30);

/// Whether Redis is reachable, as the last commands found.
#[derive(Default)]
pub(crate) struct Outage {
    /// Set while an outage is open: the fast path of [`Outage::succeeded`].
    down: AtomicBool,
    open: Mutex<Option<Down>>,
}

struct Down {
    since: Instant,
    logged: Instant,
    failures: u64,
}

impl Outage {
    /// Notes a command that failed because Redis is unreachable (`error`, for the log).
    pub(crate) fn failed(&self, target: &str, error: &redis::RedisError) {
        self.failed_at(Instant::now(), target, error);
    }

    fn failed_at(&self, now: Instant, target: &str, error: &redis::RedisError) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.as_mut() {
            None => {
                *open = Some(Down {
                    since: now,
                    logged: now,
                    failures: 1,
                });
                self.down.store(true, Ordering::Relaxed);
                tracing::error!(redis = %target, %error,
                    "Redis is unreachable: the store's commands are retried and this process waits; check that Redis runs and is reachable (this is logged again every 30 s while it lasts)");
            }
            Some(down) => {
                down.failures += 1;
                if now.duration_since(down.logged) >= REPEAT_EVERY {
                    down.logged = now;
                    tracing::error!(redis = %target, %error, down_secs = now.duration_since(down.since).as_secs(),
                        failures = down.failures, "Redis is still unreachable");
                }
            }
        }
    }

    /// Notes a command that reached Redis: closes an open outage, saying how long it lasted.
    pub(crate) fn succeeded(&self, target: &str) {
        if !self.down.load(Ordering::Relaxed) {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(down) = open.take() {
            self.down.store(false, Ordering::Relaxed);
            tracing::warn!(redis = %target, down_secs = down.since.elapsed().as_secs_f64(),
                failures = down.failures, "Redis is reachable again");
        }
    }

    /// Whether an outage is open now.
    #[cfg(test)]
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_outage_opens_once_repeats_after_its_period_and_closes() {
        let outage = Outage::default();
        let error = redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        outage.succeeded("r");
        assert!(!outage.is_down());
        outage.failed("r", &error);
        outage.failed("r", &error);
        assert!(outage.is_down());
        let logged = |o: &Outage| {
            o.open
                .lock()
                .unwrap()
                .as_ref()
                .map(|d| (d.logged, d.failures))
        };
        let (first, _) = logged(&outage).unwrap();
        outage.failed_at(first + REPEAT_EVERY, "r", &error);
        let (again, failures) = logged(&outage).unwrap();
        assert!(again > first, "logged again after the period");
        assert_eq!(failures, 3);
        outage.succeeded("r");
        assert!(!outage.is_down());
        assert!(logged(&outage).is_none());
    }
}
