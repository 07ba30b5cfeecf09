//! The endpoints of one tier: least-outstanding-requests choice and passive health.
//!
//! Key decisions:
//! - Each call goes to the usable endpoint with the fewest attempts in flight from this process
//!   (ties rotate), so a slow server — fewer completions, more outstanding — gets fewer calls
//!   without any latency bookkeeping. A retry prefers an endpoint the call has not tried yet.
//! - Passive health as in proven LLM gateways: `allowed_fails` consecutive endpoint failures
//!   (transport, timeout, 429, 5xx, malformed) put an endpoint in cooldown; when the cooldown ends it
//!   is half-open, and one more failure sends it straight back. Client errors (other 4xx) say nothing
//!   about the endpoint and are not counted.
//! - When every endpoint is cooling down or unreachable the pool still answers with the one whose
//!   cooldown ends first (a pool that tripped completely must not turn a blip into an outage), but an
//!   endpoint *refused* for serving the wrong model is never used, whatever else happens.
//! - Time is passed in (`now`), so the state machine is tested without waiting.

use crate::endpoint::Endpoint;
use crate::error::LlmError;
use crate::health::{HealthEvent, HealthEventKind, HealthPolicy};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How an endpoint stands right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum EndpointState {
    /// Takes calls.
    Healthy,
    /// Too many consecutive failures; skipped until the cooldown ends.
    CoolingDown {
        /// Time left, in milliseconds.
        remaining_ms: u64,
    },
    /// The last active health check could not reach it; skipped until a check succeeds.
    Unreachable,
    /// It serves a different model than the tier is pinned to; never used until a check sees the
    /// configured model again.
    Refused,
}

/// One endpoint's health and load, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointStatus {
    /// Base URL.
    pub base_url: String,
    /// Where it stands.
    #[serde(flatten)]
    pub state: EndpointState,
    /// Attempts in flight from this process.
    pub outstanding: usize,
    /// Consecutive failed attempts.
    pub consecutive_failures: u32,
    /// Attempts sent to it since start.
    pub requests: u64,
    /// Why it is not healthy (last error, unreachable or refused reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl EndpointStatus {
    /// Whether it takes calls.
    pub fn is_healthy(&self) -> bool {
        self.state == EndpointState::Healthy
    }
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    cooldown_until: Option<Instant>,
    last_error: Option<String>,
    unreachable: Option<String>,
    refused: Option<String>,
}

#[derive(Debug)]
struct Slot {
    endpoint: Endpoint,
    outstanding: AtomicUsize,
    requests: AtomicU64,
    health: Mutex<Health>,
}

impl Slot {
    fn health(&self) -> MutexGuard<'_, Health> {
        // A poisoned lock only means a panic elsewhere mid-update; the counters are still usable.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The endpoints of one tier with their load and health.
#[derive(Debug)]
pub(crate) struct EndpointPool {
    tier: String,
    slots: Vec<Slot>,
    next: AtomicUsize,
    policy: HealthPolicy,
    events: broadcast::Sender<HealthEvent>,
}

/// An endpoint chosen for one attempt; its outstanding count drops when this is dropped.
#[derive(Debug)]
pub(crate) struct Pick<'a> {
    pool: &'a EndpointPool,
    index: usize,
}

impl Pick<'_> {
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.pool.slots[self.index].endpoint
    }
}

impl Drop for Pick<'_> {
    fn drop(&mut self) {
        self.pool.slots[self.index]
            .outstanding
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an attempt told us about its endpoint.
pub(crate) enum Verdict<'a> {
    /// It answered.
    Success,
    /// It failed in a way that says something about the endpoint.
    Failure(&'a LlmError),
    /// It failed for a reason that is not the endpoint's (a client error).
    Neutral,
}

impl<'a> Verdict<'a> {
    /// Classifies an attempt's error: retryable errors count against the endpoint.
    pub(crate) fn of_error(error: &'a LlmError) -> Self {
        if error.is_retryable() {
            Verdict::Failure(error)
        } else {
            Verdict::Neutral
        }
    }
}

impl EndpointPool {
    pub(crate) fn new(tier: &str, endpoints: &[Endpoint], policy: HealthPolicy) -> Self {
        let (events, _) = broadcast::channel(256);
        EndpointPool {
            tier: tier.to_owned(),
            slots: endpoints
                .iter()
                .map(|endpoint| Slot {
                    endpoint: endpoint.clone(),
                    outstanding: AtomicUsize::new(0),
                    requests: AtomicU64::new(0),
                    health: Mutex::new(Health::default()),
                })
                .collect(),
            next: AtomicUsize::new(0),
            policy,
            events,
        }
    }

    pub(crate) fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    pub(crate) fn endpoints(&self) -> impl Iterator<Item = (usize, &Endpoint)> {
        self.slots.iter().map(|s| &s.endpoint).enumerate()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.events.subscribe()
    }

    fn emit(&self, index: usize, kind: HealthEventKind) {
        let endpoint = self.slots[index].endpoint.base_url.clone();
        match &kind {
            HealthEventKind::Recovered
            | HealthEventKind::Reachable
            | HealthEventKind::Readmitted => {
                tracing::info!(tier = %self.tier, %endpoint, event = ?kind, "endpoint usable again");
            }
            HealthEventKind::Refused { detail } => {
                tracing::error!(tier = %self.tier, %endpoint, "{detail}");
            }
            _ => tracing::warn!(tier = %self.tier, %endpoint, event = ?kind, "endpoint set aside"),
        }
        // No receiver is fine: events are for whoever listens (tests, dashboards).
        let _ = self.events.send(HealthEvent {
            tier: self.tier.clone(),
            endpoint,
            kind,
        });
    }

    /// Ends cooldowns that are over at `now` (half-open), emitting `Recovered` for each.
    pub(crate) fn expire_cooldowns(&self, now: Instant) {
        for index in 0..self.slots.len() {
            let recovered = {
                let mut health = self.slots[index].health();
                match health.cooldown_until {
                    Some(until) if until <= now => {
                        health.cooldown_until = None;
                        // Half-open: one more failure trips it again.
                        health.consecutive_failures = self.policy.allowed_fails.saturating_sub(1);
                        true
                    }
                    _ => false,
                }
            };
            if recovered {
                self.emit(index, HealthEventKind::Recovered);
            }
        }
    }

    /// Chooses the endpoint for the next attempt: the usable one with the fewest outstanding
    /// attempts, preferring endpoints not in `tried`; ties rotate between calls.
    pub(crate) fn pick(&self, tried: &[usize], now: Instant) -> Result<Pick<'_>, LlmError> {
        self.expire_cooldowns(now);
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let usable: Vec<usize> = (0..n)
            .map(|k| start.wrapping_add(k) % n)
            .filter(|&i| {
                let h = self.slots[i].health();
                h.refused.is_none() && h.unreachable.is_none() && h.cooldown_until.is_none()
            })
            .collect();
        let fresh: Vec<usize> = usable
            .iter()
            .copied()
            .filter(|i| !tried.contains(i))
            .collect();
        let candidates = if fresh.is_empty() { usable } else { fresh };
        let chosen = candidates
            .iter()
            .copied()
            .min_by_key(|&i| self.slots[i].outstanding.load(Ordering::Relaxed))
            .or_else(|| self.last_resort(tried))
            .ok_or_else(|| self.none_usable())?;
        let slot = &self.slots[chosen];
        slot.outstanding.fetch_add(1, Ordering::Relaxed);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Pick {
            pool: self,
            index: chosen,
        })
    }

    /// Every endpoint is set aside: the non-refused one back soonest (untried first), if any.
    fn last_resort(&self, tried: &[usize]) -> Option<usize> {
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let chosen = (0..self.slots.len())
            .filter(|&i| self.slots[i].health().refused.is_none())
            .min_by_key(|&i| {
                let until = self.slots[i].health().cooldown_until.unwrap_or(far);
                (tried.contains(&i), until)
            })?;
        tracing::warn!(tier = %self.tier, endpoint = %self.slots[chosen].endpoint.base_url,
            "every endpoint of the tier is cooling down or unreachable; trying the one back soonest");
        Some(chosen)
    }

    fn none_usable(&self) -> LlmError {
        let reasons: Vec<String> = self
            .slots
            .iter()
            .map(|s| {
                let h = s.health();
                format!(
                    "{}: {}",
                    s.endpoint.base_url,
                    h.refused.as_deref().unwrap_or("refused")
                )
            })
            .collect();
        LlmError::NoUsableEndpoint {
            tier: self.tier.clone(),
            detail: reasons.join("; "),
        }
    }

    /// Records what an attempt on endpoint `index` told us at `now`.
    pub(crate) fn record(&self, index: usize, verdict: Verdict<'_>, now: Instant) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let event = {
            let mut health = slot.health();
            match verdict {
                Verdict::Neutral => None,
                Verdict::Success => {
                    health.consecutive_failures = 0;
                    health.last_error = None;
                    health
                        .cooldown_until
                        .take()
                        .map(|_| HealthEventKind::Recovered)
                }
                Verdict::Failure(error) => {
                    health.consecutive_failures = health.consecutive_failures.saturating_add(1);
                    health.last_error = Some(planex_core::cause::chain_text(error));
                    let trips = self.policy.allowed_fails > 0
                        && health.consecutive_failures >= self.policy.allowed_fails
                        && !self.policy.cooldown.is_zero();
                    if trips && health.cooldown_until.is_none() {
                        health.cooldown_until = Some(now + self.policy.cooldown);
                        Some(HealthEventKind::CooledDown {
                            consecutive_failures: health.consecutive_failures,
                            cooldown_ms: duration_ms(self.policy.cooldown),
                        })
                    } else {
                        None
                    }
                }
            }
        };
        if let Some(kind) = event {
            self.emit(index, kind);
        }
    }

    /// Records an active health check of endpoint `index`: `unreachable` and `refused` replace the
    /// previous verdicts (`None` clears them).
    pub(crate) fn record_check(
        &self,
        index: usize,
        unreachable: Option<String>,
        refused: Option<String>,
    ) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let mut events = Vec::new();
        {
            let mut health = slot.health();
            match (&health.unreachable, &unreachable) {
                (None, Some(detail)) => events.push(HealthEventKind::Unreachable {
                    detail: detail.clone(),
                }),
                (Some(_), None) => events.push(HealthEventKind::Reachable),
                _ => {}
            }
            match (&health.refused, &refused) {
                (None, Some(detail)) => events.push(HealthEventKind::Refused {
                    detail: detail.clone(),
                }),
                (Some(_), None) => events.push(HealthEventKind::Readmitted),
                _ => {}
            }
            health.unreachable = unreachable;
            // An unreachable endpoint's model is unknown: keep the last pin verdict until it answers.
            if health.unreachable.is_none() {
                health.refused = refused;
            } else if matches!(events.last(), Some(HealthEventKind::Readmitted)) {
                events.pop();
            }
        }
        for kind in events {
            self.emit(index, kind);
        }
    }

    /// Every endpoint's state at `now`.
    pub(crate) fn statuses(&self, now: Instant) -> Vec<EndpointStatus> {
        self.slots
            .iter()
            .map(|slot| {
                let health = slot.health();
                let (state, detail) = if let Some(reason) = &health.refused {
                    (EndpointState::Refused, Some(reason.clone()))
                } else if let Some(reason) = &health.unreachable {
                    (EndpointState::Unreachable, Some(reason.clone()))
                } else {
                    match health.cooldown_until {
                        Some(until) if until > now => (
                            EndpointState::CoolingDown {
                                remaining_ms: duration_ms(until - now),
                            },
                            health.last_error.clone(),
                        ),
                        _ => (EndpointState::Healthy, None),
                    }
                };
                EndpointStatus {
                    base_url: slot.endpoint.base_url.clone(),
                    state,
                    outstanding: slot.outstanding.load(Ordering::Relaxed),
                    consecutive_failures: health.consecutive_failures,
                    requests: slot.requests.load(Ordering::Relaxed),
                    detail,
                }
            })
            .collect()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
