//! Worker heartbeats in the memory store: when a worker's heartbeat lapses, its leases expire at
//! once so the next claim redelivers its steps (`Store::reap_dead_workers`; `lua/reap.lua` alike).
//! Workers' TTFT reports (`Store::report_ttft`) lapse the same way.

use super::state::Inner;
use crate::workers::WorkerTtft;
use std::time::Duration;
use tokio::time::Instant;

impl Inner {
    /// `Store::heartbeat`.
    pub(super) fn heartbeat(&mut self, tier: &str, worker: &str, ttl: Duration) {
        self.heartbeats
            .insert((tier.to_owned(), worker.to_owned()), Instant::now() + ttl);
    }

    /// `Store::reap_dead_workers`: the leases of `tier`'s workers whose heartbeat lapsed expire
    /// now; the workers are forgotten. Returns how many leases.
    pub(super) fn reap_dead_workers(&mut self, tier: &str) -> usize {
        let now = Instant::now();
        let dead: Vec<String> = self
            .heartbeats
            .iter()
            .filter(|((t, _), lapses)| t == tier && **lapses <= now)
            .map(|((_, worker), _)| worker.clone())
            .collect();
        // Lapsed TTFT reports go too (on every tier: a worker reports on tiers it escalated to).
        self.ttft_reports.retain(|_, (_, lapses)| *lapses > now);
        let mut reaped = 0;
        for worker in dead {
            self.heartbeats.remove(&(tier.to_owned(), worker.clone()));
            for lease in self.leases.values_mut() {
                if lease.tier == tier && lease.worker == worker && lease.deadline > now {
                    lease.deadline = now;
                    reaped += 1;
                }
            }
        }
        if reaped > 0 {
            self.tiers
                .entry(tier.to_owned())
                .or_default()
                .notify
                .notify_waiters();
        }
        reaped
    }

    /// `Store::live_workers`: `tier`'s heartbeats that have not lapsed.
    pub(super) fn live_workers(&self, tier: &str) -> usize {
        let now = Instant::now();
        self.heartbeats
            .iter()
            .filter(|((t, _), lapses)| t == tier && **lapses > now)
            .count()
    }

    /// Forgets a worker's heartbeat and TTFT report (it stopped cleanly).
    pub(super) fn forget_heartbeat(&mut self, tier: &str, worker: &str) {
        let key = (tier.to_owned(), worker.to_owned());
        self.heartbeats.remove(&key);
        self.ttft_reports.remove(&key);
    }

    /// `Store::report_ttft`.
    pub(super) fn report_ttft(&mut self, tier: &str, report: &WorkerTtft, ttl: Duration) {
        self.ttft_reports.insert(
            (tier.to_owned(), report.worker.clone()),
            (report.clone(), Instant::now() + ttl),
        );
    }

    /// `Store::tier_ttft`: `tier`'s reports that have not lapsed.
    pub(super) fn tier_ttft(&self, tier: &str) -> Vec<WorkerTtft> {
        let now = Instant::now();
        self.ttft_reports
            .iter()
            .filter(|((t, _), (_, lapses))| t == tier && *lapses > now)
            .map(|(_, (report, _))| report.clone())
            .collect()
    }
}
