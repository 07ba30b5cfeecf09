//! [`Engine::scaling_report`]: samples every tier with work and asks the
//! [`Scaler`](crate::scaling::Scaler) what each needs (the rules are in `scaling.rs`).

use crate::scaling::{ScalingReport, Thresholds, TierDecision, TierSample};
use crate::{Engine, EngineError};
use planex_llm::TtftSummary;
use std::time::Instant;

/// Calls a worker's TTFT report must rest on to count in `/v1/scaling`.
pub const MIN_REPORT_SAMPLES: usize = 10;

impl Engine {
    /// Samples every tier with work (queue depth and the workers' TTFT reports from the store,
    /// in-flight calls, p95 TTFT and healthy endpoints from the tier), decides, sets the
    /// `scaling_*` gauges and reports.
    pub async fn scaling_report(&self) -> Result<ScalingReport, EngineError> {
        let mut samples = Vec::new();
        for tier in self.tiers_with_work() {
            let depth = self.store.queue_depth(&tier).await?;
            let status = self
                .executor
                .models
                .get(&tier)
                .ok()
                .and_then(|m| m.status());
            let (calls, ttft, healthy) = match &status {
                Some(s) => (s.in_flight as u64, s.ttft, s.healthy_endpoints as u32),
                // A model without pool status is one opaque endpoint.
                None => (0, TtftSummary::default(), 1),
            };
            // TTFT is measured where the calls are made: the workers report theirs. The tier's
            // p95 is the highest of this process's and the live workers' that rest on at least
            // MIN_REPORT_SAMPLES calls (one slow cold call must not scale a pool out).
            let reported = self.store.tier_ttft(&tier).await?;
            let ttft_p95 = reported
                .iter()
                .filter(|r| r.samples >= MIN_REPORT_SAMPLES)
                .map(|r| r.p95)
                .chain(ttft.p95)
                .max();
            samples.push((
                tier,
                TierSample {
                    at: Instant::now(),
                    queue_depth: depth.ready,
                    in_flight: depth.in_flight + calls,
                    ttft_p95,
                    healthy_endpoints: healthy,
                },
            ));
        }
        let mut scaler = self
            .scaler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tiers: Vec<TierDecision> = samples
            .into_iter()
            .map(|(tier, sample)| scaler.decide(&tier, &self.settings.planner_tier, sample))
            .collect();
        let s = scaler.settings();
        let thresholds = Thresholds {
            planner_ttft_p95_seconds: s.planner_ttft_p95.as_secs_f64(),
            executor_queue_depth: s.executor_queue_depth,
            scale_in_after_seconds: s.scale_in_after.as_secs(),
        };
        drop(scaler);
        for d in &tiers {
            let tier = d.tier.clone();
            metrics::gauge!("scaling_queue_depth", "tier" => tier.clone())
                .set(d.queue_depth as f64);
            metrics::gauge!("scaling_in_flight", "tier" => tier.clone()).set(d.in_flight as f64);
            metrics::gauge!("scaling_ttft_p95_seconds", "tier" => tier.clone())
                .set(d.ttft_p95_seconds.unwrap_or(0.0));
            metrics::gauge!("scaling_healthy_endpoints", "tier" => tier.clone())
                .set(f64::from(d.healthy_endpoints));
            metrics::gauge!("scaling_desired_replicas", "tier" => tier)
                .set(f64::from(d.desired_replicas));
        }
        Ok(ScalingReport {
            generated_at_ms: planex_store::now_ms(),
            thresholds,
            tiers,
        })
    }
}
