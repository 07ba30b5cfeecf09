//! Autoscaling decisions per tier (docs/ARCHITECTURE.md §7): what each pool needs, and why.
//!
//! Rules, thresholds from `[scaling]`:
//! - a tier scaled on TTFT (the planner tier by default) adds a node while its rolling p95 TTFT is
//!   above `planner_ttft_p95_secs` (2 s);
//! - a tier scaled on queue depth (every other tier) adds a node while more than
//!   `executor_queue_depth` (100) steps wait in its ready queue;
//! - a tier whose queue has been empty with nothing in flight for `scale_in_after_secs` (10 min)
//!   goes down to its floor;
//! - never below `min_replicas` (at least one warm node), never above `max_replicas`.
//!
//! Key decisions: the desired count is relative to the endpoints that are healthy *now* (current +
//! 1 to scale out), so repeated evaluations while a new node boots ask for the same count instead of
//! compounding; the only state kept between evaluations is when each tier became empty, and time is
//! passed in with each sample, so decisions are a pure function of a metric series and are tested on
//! synthetic ones. Every decision carries its reason, and the same numbers are set as Prometheus
//! gauges (`scaling_*{tier}`). With the `openapi` feature the report types derive
//! `utoipa::ToSchema`, so `/openapi.json` documents the very types `GET /v1/scaling` serialises.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a tier scales on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScalingRule {
    /// Rolling p95 time to first token (planner tiers: long prompts, latency-bound).
    Ttft,
    /// Ready-queue depth (executor tiers: many short calls, throughput-bound).
    QueueDepth,
}

/// Per-tier bounds and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierScaling {
    /// What the tier scales on.
    pub rule: ScalingRule,
    /// Floor (at least 1).
    pub min_replicas: u32,
    /// Ceiling.
    pub max_replicas: u32,
}

/// Thresholds of the scaling rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingSettings {
    /// p95 TTFT above which a TTFT-scaled tier adds a node.
    pub planner_ttft_p95: Duration,
    /// Ready steps above which a queue-scaled tier adds a node.
    pub executor_queue_depth: u64,
    /// How long a tier must be empty (nothing ready, nothing in flight) before it scales in.
    pub scale_in_after: Duration,
    /// Default floor (at least 1: one warm node).
    pub min_replicas: u32,
    /// Default ceiling.
    pub max_replicas: u32,
    /// Per-tier overrides (rule and bounds).
    pub tiers: BTreeMap<String, TierScaling>,
}

impl Default for ScalingSettings {
    fn default() -> Self {
        ScalingSettings {
            planner_ttft_p95: Duration::from_secs(2),
            executor_queue_depth: 100,
            scale_in_after: Duration::from_secs(600),
            min_replicas: 1,
            max_replicas: 32,
            tiers: BTreeMap::new(),
        }
    }
}

impl ScalingSettings {
    /// The rule and bounds of `tier`: its override, else TTFT for the planner tier and queue depth
    /// for the others, with the default bounds.
    pub fn for_tier(&self, tier: &str, planner_tier: &str) -> TierScaling {
        self.tiers.get(tier).cloned().unwrap_or(TierScaling {
            rule: if tier == planner_tier {
                ScalingRule::Ttft
            } else {
                ScalingRule::QueueDepth
            },
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
        })
    }
}

/// One observation of a tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierSample {
    /// When it was taken.
    pub at: Instant,
    /// Steps in the ready queue.
    pub queue_depth: u64,
    /// Steps leased by workers plus model calls in flight from this process.
    pub in_flight: u64,
    /// Rolling p95 TTFT, if there were streamed calls in the window.
    pub ttft_p95: Option<Duration>,
    /// Endpoints taking calls now (the current node count).
    pub healthy_endpoints: u32,
}

/// Scale out, scale in or hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScalingAction {
    /// Add nodes.
    ScaleOut,
    /// Remove nodes.
    ScaleIn,
    /// Keep the current count.
    Hold,
}

/// The decision for one tier, with the numbers it was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TierDecision {
    /// The tier.
    pub tier: String,
    /// What it scales on.
    pub rule: ScalingRule,
    /// Steps in the ready queue.
    pub queue_depth: u64,
    /// Steps leased plus model calls in flight.
    pub in_flight: u64,
    /// Rolling p95 TTFT in seconds, if known.
    pub ttft_p95_seconds: Option<f64>,
    /// Healthy endpoints now (the current count).
    pub healthy_endpoints: u32,
    /// The count the tier should have.
    pub desired_replicas: u32,
    /// Scale out, in or hold.
    pub action: ScalingAction,
    /// How long the tier has been empty, in seconds (0 when it is not).
    pub empty_for_seconds: u64,
    /// Why, for people.
    pub reason: String,
}

/// Decides per tier from samples; remembers only when each tier became empty.
#[derive(Debug, Default)]
pub struct Scaler {
    settings: ScalingSettings,
    empty_since: BTreeMap<String, Instant>,
}

impl Scaler {
    /// A scaler with these thresholds.
    pub fn new(settings: ScalingSettings) -> Self {
        Scaler {
            settings,
            empty_since: BTreeMap::new(),
        }
    }

    /// The thresholds.
    pub fn settings(&self) -> &ScalingSettings {
        &self.settings
    }

    /// The decision for `tier` given its latest sample.
    pub fn decide(&mut self, tier: &str, planner_tier: &str, sample: TierSample) -> TierDecision {
        let bounds = self.settings.for_tier(tier, planner_tier);
        let empty = sample.queue_depth == 0 && sample.in_flight == 0;
        let empty_for = if empty {
            let since = *self.empty_since.entry(tier.to_owned()).or_insert(sample.at);
            sample.at.saturating_duration_since(since)
        } else {
            self.empty_since.remove(tier);
            Duration::ZERO
        };
        let current = sample.healthy_endpoints;
        let floor = bounds.min_replicas.max(1);
        let ceiling = bounds.max_replicas.max(floor);
        let s = &self.settings;
        let (wanted, mut reason) = match bounds.rule {
            ScalingRule::Ttft => match sample.ttft_p95 {
                Some(p95) if p95 > s.planner_ttft_p95 => (
                    current + 1,
                    format!(
                        "p95 TTFT {} > {}: add a node",
                        secs(p95),
                        secs(s.planner_ttft_p95)
                    ),
                ),
                _ if empty && empty_for >= s.scale_in_after => {
                    (floor, scale_in_reason(empty_for, s.scale_in_after, floor))
                }
                Some(p95) => (
                    current,
                    format!(
                        "p95 TTFT {} <= {}: hold",
                        secs(p95),
                        secs(s.planner_ttft_p95)
                    ),
                ),
                None => (current, "no TTFT samples in the window: hold".to_owned()),
            },
            ScalingRule::QueueDepth => {
                if sample.queue_depth > s.executor_queue_depth {
                    (
                        current + 1,
                        format!(
                            "queue depth {} > {}: add a node",
                            sample.queue_depth, s.executor_queue_depth
                        ),
                    )
                } else if empty && empty_for >= s.scale_in_after {
                    (floor, scale_in_reason(empty_for, s.scale_in_after, floor))
                } else {
                    (
                        current,
                        format!(
                            "queue depth {} <= {}: hold",
                            sample.queue_depth, s.executor_queue_depth
                        ),
                    )
                }
            }
        };
        if empty && empty_for < s.scale_in_after && wanted == current && current > floor {
            reason.push_str(&format!(
                " (empty for {}; scales in after {})",
                secs(empty_for),
                secs(s.scale_in_after)
            ));
        }
        let desired = wanted.clamp(floor, ceiling);
        if desired != wanted {
            reason.push_str(&if desired > wanted {
                format!("; raised to the floor of {floor}")
            } else {
                format!("; capped at max_replicas {ceiling}")
            });
        }
        let action = match desired.cmp(&current) {
            std::cmp::Ordering::Greater => ScalingAction::ScaleOut,
            std::cmp::Ordering::Less => ScalingAction::ScaleIn,
            std::cmp::Ordering::Equal => ScalingAction::Hold,
        };
        TierDecision {
            tier: tier.to_owned(),
            rule: bounds.rule,
            queue_depth: sample.queue_depth,
            in_flight: sample.in_flight,
            ttft_p95_seconds: sample.ttft_p95.map(|d| d.as_secs_f64()),
            healthy_endpoints: current,
            desired_replicas: desired,
            action,
            empty_for_seconds: empty_for.as_secs(),
            reason,
        }
    }
}

fn scale_in_reason(empty_for: Duration, after: Duration, floor: u32) -> String {
    format!(
        "queue empty and nothing in flight for {} (>= {}): scale in to the floor of {floor}",
        secs(empty_for),
        secs(after)
    )
}

/// `2.5 s`, `10 min`, `1 h`: durations as an operator reads them.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{} h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{} min", s / 60.0)
    } else {
        format!("{} s", (s * 1000.0).round() / 1000.0)
    }
}

/// Every tier's decision, for `GET /v1/scaling` and `planex scale status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScalingReport {
    /// When the report was made (ms since the epoch).
    pub generated_at_ms: u64,
    /// The thresholds in force.
    pub thresholds: Thresholds,
    /// One decision per tier with work.
    pub tiers: Vec<TierDecision>,
}

/// The thresholds in force, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thresholds {
    /// p95 TTFT (seconds) above which TTFT-scaled tiers add a node.
    pub planner_ttft_p95_seconds: f64,
    /// Ready steps above which queue-scaled tiers add a node.
    pub executor_queue_depth: u64,
    /// Seconds empty before a tier scales in.
    pub scale_in_after_seconds: u64,
}

/// The scaler the engine keeps between reports.
pub(crate) type SharedScaler = Mutex<Scaler>;

#[cfg(test)]
#[path = "scaling_tests.rs"]
mod tests;
