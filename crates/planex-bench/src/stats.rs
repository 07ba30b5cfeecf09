//! Statistics of the engine benchmarks: nearest-rank percentiles, the samples gathered over many
//! tasks, unit conversions and the process's CPU time.

use crate::bed::TaskTiming;
use std::time::Duration;

/// Nearest-rank percentiles of a sample, in microseconds.
#[derive(Clone, Copy)]
pub(crate) struct Summary {
    /// Sample size.
    pub(crate) n: usize,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// Largest value.
    pub(crate) max: f64,
    /// Mean.
    pub(crate) mean: f64,
}

impl Summary {
    /// The percentiles of `values` (NaN when empty).
    pub(crate) fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |p: f64| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            sorted[index]
        };
        let mean = if n == 0 {
            f64::NAN
        } else {
            sorted.iter().sum::<f64>() / n as f64
        };
        Summary {
            n,
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
            mean,
        }
    }

    /// As a JSON object.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({"n": self.n, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max, "mean": self.mean})
    }
}

/// CPU time of this process, all threads (Linux `/proc/self/stat`, in USER_HZ = 100 ticks).
pub(crate) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields after the command name start at field 3 (`state`); utime and stime are fields 14, 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// `d` in microseconds.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `d` in milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Samples gathered over many tasks of one variant.
#[derive(Default)]
pub(crate) struct StepSamples {
    /// Step overhead, every step (µs).
    pub(crate) overhead: Vec<f64>,
    /// Step overhead of steps without dependencies (µs).
    pub(crate) root_overhead: Vec<f64>,
    /// Per task, the overhead of the first step dispatched (µs).
    pub(crate) first_root_overhead: Vec<f64>,
    /// Step overhead of steps with dependencies (µs).
    pub(crate) dependent_overhead: Vec<f64>,
    /// Model call per step (µs).
    pub(crate) call: Vec<f64>,
    /// Overhead plus model call per step (µs).
    pub(crate) total: Vec<f64>,
    /// Per task, last call returned → final record (µs).
    pub(crate) finish: Vec<f64>,
    /// Per task, wall time ÷ steps (µs).
    pub(crate) per_step_wall: Vec<f64>,
    /// Model-call retries.
    pub(crate) retries: u32,
}

impl StepSamples {
    /// Adds one task's timings.
    pub(crate) fn add(&mut self, t: &TaskTiming) {
        for (id, overhead) in &t.overhead {
            let call = t.call.get(id).copied().unwrap_or_default();
            self.overhead.push(us(*overhead));
            if t.roots.contains(id) {
                self.root_overhead.push(us(*overhead));
            } else {
                self.dependent_overhead.push(us(*overhead));
            }
            self.call.push(us(call));
            self.total.push(us(*overhead + call));
        }
        let first_root = t.roots.iter().filter_map(|id| t.overhead.get(id)).min();
        if let Some(first) = first_root {
            self.first_root_overhead.push(us(*first));
        }
        self.finish.push(us(t.finish));
        self.per_step_wall
            .push(us(t.makespan) / t.overhead.len().max(1) as f64);
        self.retries += t.retries;
    }
}
