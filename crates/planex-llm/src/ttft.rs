//! Rolling time-to-first-token statistics of one tier: p50 and p95 over a recent time window.
//!
//! Key decision: the window is bounded both in time (samples older than `window` are dropped) and
//! in count (the oldest sample goes when `capacity` is reached), so a burst of traffic cannot grow
//! memory and a quiet tier reports no stale percentiles; quantiles use the nearest-rank method on
//! a sorted copy, exact and cheap at these sizes (the autoscaler reads them every few seconds).

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default length of the rolling window.
pub const DEFAULT_TTFT_WINDOW: Duration = Duration::from_secs(300);
/// Default most samples kept.
pub const DEFAULT_TTFT_CAPACITY: usize = 4096;

/// Percentiles of the samples in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TtftSummary {
    /// Samples in the window.
    pub samples: usize,
    /// Median TTFT, when there is at least one sample.
    #[serde(with = "opt_secs")]
    pub p50: Option<Duration>,
    /// 95th percentile TTFT, when there is at least one sample.
    #[serde(with = "opt_secs")]
    pub p95: Option<Duration>,
}

/// A rolling window of TTFT samples.
#[derive(Debug)]
pub struct TtftWindow {
    window: Duration,
    capacity: usize,
    samples: Mutex<VecDeque<(Instant, Duration)>>,
}

impl Default for TtftWindow {
    fn default() -> Self {
        TtftWindow::new(DEFAULT_TTFT_WINDOW, DEFAULT_TTFT_CAPACITY)
    }
}

impl TtftWindow {
    /// A window keeping samples for `window`, at most `capacity` of them (at least one).
    pub fn new(window: Duration, capacity: usize) -> Self {
        TtftWindow {
            window,
            capacity: capacity.max(1),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Records a TTFT measured at `at`.
    pub fn record(&self, at: Instant, ttft: Duration) {
        let mut samples = self.lock();
        while samples.len() >= self.capacity {
            samples.pop_front();
        }
        samples.push_back((at, ttft));
    }

    /// p50 and p95 of the samples no older than the window at `now`.
    pub fn summary(&self, now: Instant) -> TtftSummary {
        let mut samples = self.lock();
        while let Some((at, _)) = samples.front() {
            if now.saturating_duration_since(*at) > self.window {
                samples.pop_front();
            } else {
                break;
            }
        }
        let mut values: Vec<Duration> = samples.iter().map(|(_, ttft)| *ttft).collect();
        drop(samples);
        values.sort_unstable();
        TtftSummary {
            samples: values.len(),
            p50: nearest_rank(&values, 50),
            p95: nearest_rank(&values, 95),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, Duration)>> {
        // A poisoned lock only means another thread panicked mid-push; the deque is still valid.
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `percent`-th percentile of sorted `values` by nearest rank: the smallest value with at
/// least `percent`% of the values at or below it.
fn nearest_rank(values: &[Duration], percent: usize) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let rank = (percent * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;

    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`.
    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_some(&d.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let window = TtftWindow::new(Duration::from_secs(60), 1000);
        let t0 = Instant::now();
        assert_eq!(window.summary(t0), TtftSummary::default());
        for i in 1..=100 {
            window.record(t0, ms(i * 10));
        }
        let summary = window.summary(t0);
        assert_eq!(summary.samples, 100);
        assert_eq!(summary.p50, Some(ms(500)));
        assert_eq!(summary.p95, Some(ms(950)));
        let one = TtftWindow::default();
        one.record(t0, ms(7));
        assert_eq!(one.summary(t0).p95, Some(ms(7)));
        assert_eq!(one.summary(t0).p50, Some(ms(7)));
    }

    #[test]
    fn old_samples_leave_the_window() {
        let window = TtftWindow::new(Duration::from_secs(10), 1000);
        let t0 = Instant::now();
        window.record(t0, ms(5000));
        window.record(t0 + Duration::from_secs(8), ms(100));
        assert_eq!(window.summary(t0 + Duration::from_secs(9)).samples, 2);
        let later = window.summary(t0 + Duration::from_secs(15));
        assert_eq!(later.samples, 1);
        assert_eq!(later.p95, Some(ms(100)));
        assert_eq!(window.summary(t0 + Duration::from_secs(60)).p95, None);
    }

    #[test]
    fn capacity_bounds_memory() {
        let window = TtftWindow::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for v in [900, 1, 2, 3] {
            window.record(t0, ms(v));
        }
        let summary = window.summary(t0);
        assert_eq!(summary.samples, 3);
        assert_eq!(
            summary.p95,
            Some(ms(3)),
            "the oldest sample (900 ms) was dropped"
        );
    }

    #[test]
    fn summary_serializes_seconds() {
        let summary = TtftSummary {
            samples: 2,
            p50: Some(ms(250)),
            p95: None,
        };
        assert_eq!(
            serde_json::to_value(summary).unwrap(),
            serde_json::json!({"samples": 2, "p50": 0.25, "p95": null})
        );
    }
}
