//! Start-up verification and periodic active health checks over a [`TierSet`].
//!
//! Key decisions: at start-up an unreachable endpoint is only a warning (in a cluster the model
//! servers often start after planex), but a tier whose every endpoint serves the wrong model is an
//! error, because running it would mean never answering or answering with the wrong model. The
//! periodic checks run in one background task per tier that stops when the returned handle is
//! dropped, so no check outlives the process that wanted it.

use crate::error::{LlmError, TierSetError};
use crate::pool::{EndpointState, EndpointStatus};
use crate::tier::Tier;
use crate::tier_set::TierSet;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// An endpoint that is not usable at start-up, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointProblem {
    /// The tier.
    pub tier: String,
    /// The endpoint's state and detail.
    pub status: EndpointStatus,
}

impl std::fmt::Display for EndpointProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.status.state {
            EndpointState::Refused => "refused",
            EndpointState::Unreachable => "unreachable",
            EndpointState::CoolingDown { .. } => "cooling down",
            EndpointState::Healthy => "healthy",
        };
        write!(
            f,
            "tier {}: endpoint {} is {what}: {}",
            self.tier,
            self.status.base_url,
            self.status.detail.as_deref().unwrap_or("no detail")
        )
    }
}

/// Background health checks; dropping the handle stops them.
#[derive(Debug)]
pub struct HealthChecks {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TierSet {
    /// Checks every endpoint of every tier once (reachability and the model pin). Returns the
    /// endpoints that are not usable (log them); fails when a tier has endpoints and every one of
    /// them serves a model other than the pinned one.
    pub async fn verify_endpoints(&self) -> Result<Vec<EndpointProblem>, TierSetError> {
        let checks = self.iter().map(|tier| async move {
            let statuses = tier.check_health().await;
            (tier.name().to_owned(), statuses)
        });
        let mut problems = Vec::new();
        for (tier, statuses) in futures::future::join_all(checks).await {
            let refused: Vec<&EndpointStatus> = statuses
                .iter()
                .filter(|s| s.state == EndpointState::Refused)
                .collect();
            if !statuses.is_empty() && refused.len() == statuses.len() {
                let detail = refused
                    .iter()
                    .filter_map(|s| s.detail.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(TierSetError::Tier(LlmError::NoUsableEndpoint {
                    tier,
                    detail,
                }));
            }
            problems.extend(
                statuses
                    .into_iter()
                    .filter(|s| !s.is_healthy())
                    .map(|status| EndpointProblem {
                        tier: tier.clone(),
                        status,
                    }),
            );
        }
        Ok(problems)
    }

    /// Starts periodic active checks of every tier whose policy has a non-zero interval. Needs a
    /// Tokio runtime. The checks stop when the handle is dropped.
    pub fn spawn_health_checks(&self) -> HealthChecks {
        let tasks = self
            .iter()
            .filter(|tier| !tier.config().health.interval.is_zero())
            .map(|tier| tokio::spawn(check_forever(Arc::clone(tier))))
            .collect();
        HealthChecks { tasks }
    }
}

async fn check_forever(tier: Arc<Tier>) {
    let mut ticks = tokio::time::interval(tier.config().health.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        tier.check_health().await;
    }
}
