//! Shared server state: configuration, counters, fault injector, workload counters, the
//! concurrency limit and the shutdown signal.
//!
//! Key decision: the concurrency limit is a semaphore and `in_flight` is counted only while a
//! permit is held (by an RAII [`Slot`] that a streaming body carries until its last chunk), so
//! `max_in_flight` can never exceed `--max-concurrency`; every simulated wait races the
//! shutdown token so a graceful shutdown never waits for a hang.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::answer::{Meta, Usage};
use crate::config::{MAX_RECORDED_CALLS, SimConfig};
use crate::faults::FaultInjector;

/// Counters reported by `GET /sim/stats` and [`crate::SimServer::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Chat-completion requests received (including rejected ones).
    pub requests_total: u64,
    /// Valid requests recognised as planner requests.
    pub planner_requests: u64,
    /// Valid requests recognised as executor requests.
    pub executor_requests: u64,
    /// Requests (chat and search) that got an injected fault (error, hang, malformed or cut off).
    pub errors_injected: u64,
    /// Chat requests being served now (holding a concurrency slot).
    pub in_flight: u64,
    /// Highest `in_flight` seen since start or reset.
    pub max_in_flight: u64,
    /// Sum of `usage.prompt_tokens` over every answer written whole (what clients were told).
    pub prompt_tokens_total: u64,
    /// Sum of `usage.completion_tokens` over every answer written whole.
    pub completion_tokens_total: u64,
    /// Answers not written whole: cut off part-way (`--truncate-rate`, `#sim:truncate`), or
    /// streamed to a client that went away before the end. Not in the totals above, since their
    /// client was never told a usage.
    #[serde(default)]
    pub cut_off_answers: u64,
    /// Prompt plus completion tokens the cut-off answers would have reported.
    #[serde(default)]
    pub cut_off_tokens_total: u64,
}

/// One answer in the call ledger (`--record-calls`, `GET /sim/calls`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedCall {
    /// The answer's `id` (`chatcmpl-sim-…`), as its client saw it.
    pub id: String,
    /// `usage.prompt_tokens` of the answer.
    pub prompt_tokens: u32,
    /// `usage.completion_tokens` of the answer.
    pub completion_tokens: u32,
    /// Whether the whole answer, usage included, was written; `false` for one cut off.
    pub whole: bool,
    /// The request's W3C `traceparent` header, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The body of `GET /sim/calls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLedger {
    /// Whether the server records calls (`--record-calls`); when not, `calls` is empty.
    pub recording: bool,
    /// Every answer produced since start or reset, in order.
    pub calls: Vec<ServedCall>,
    /// Answers past [`crate::config::MAX_RECORDED_CALLS`], not kept.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests_total: AtomicU64,
    planner_requests: AtomicU64,
    executor_requests: AtomicU64,
    errors_injected: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    prompt_tokens_total: AtomicU64,
    completion_tokens_total: AtomicU64,
    cut_off_answers: AtomicU64,
    cut_off_tokens_total: AtomicU64,
}

/// Which counter to bump.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Requests,
    Planner,
    Executor,
    Faults,
}

#[derive(Debug)]
struct Inner {
    config: SimConfig,
    counters: Counters,
    faults: FaultInjector,
    plan_counts: Mutex<HashMap<String, usize>>,
    ledger: Mutex<CallLedger>,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    sequence: AtomicU64,
}

/// Cheaply cloneable handle on the state of one simulated server.
#[derive(Clone, Debug)]
pub struct SimState {
    inner: Arc<Inner>,
}

/// A held concurrency slot; dropping it frees the slot and decrements `in_flight`.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    inner: Arc<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SimState {
    /// Fresh state for `config` (counters at zero).
    pub fn new(config: SimConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        Self {
            inner: Arc::new(Inner {
                faults: FaultInjector::new(&config),
                counters: Counters::default(),
                plan_counts: Mutex::new(HashMap::new()),
                ledger: Mutex::new(CallLedger {
                    recording: config.record_calls,
                    ..CallLedger::default()
                }),
                slots,
                shutdown: CancellationToken::new(),
                sequence: AtomicU64::new(0),
                config,
            }),
        }
    }

    /// The configuration this state was built from.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        let c = &self.inner.counters;
        SimStats {
            requests_total: c.requests_total.load(Ordering::SeqCst),
            planner_requests: c.planner_requests.load(Ordering::SeqCst),
            executor_requests: c.executor_requests.load(Ordering::SeqCst),
            errors_injected: c.errors_injected.load(Ordering::SeqCst),
            in_flight: c.in_flight.load(Ordering::SeqCst),
            max_in_flight: c.max_in_flight.load(Ordering::SeqCst),
            prompt_tokens_total: c.prompt_tokens_total.load(Ordering::SeqCst),
            completion_tokens_total: c.completion_tokens_total.load(Ordering::SeqCst),
            cut_off_answers: c.cut_off_answers.load(Ordering::SeqCst),
            cut_off_tokens_total: c.cut_off_tokens_total.load(Ordering::SeqCst),
        }
    }

    /// Zeroes counters, `xN` fault counters, workload plan counters and the call ledger, and
    /// re-seeds the fault RNG; `max_in_flight` restarts from the current `in_flight`.
    pub fn reset(&self) {
        let c = &self.inner.counters;
        for counter in [
            &c.requests_total,
            &c.planner_requests,
            &c.executor_requests,
            &c.errors_injected,
            &c.prompt_tokens_total,
            &c.completion_tokens_total,
            &c.cut_off_answers,
            &c.cut_off_tokens_total,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        c.max_in_flight
            .store(c.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        self.inner.faults.reset();
        self.inner
            .plan_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut ledger = self.inner.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger.calls.clear();
        ledger.dropped = 0;
    }

    /// A copy of the call ledger (empty unless the server records calls).
    pub fn calls(&self) -> CallLedger {
        self.inner
            .ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Signals every pending simulated wait to end now (used by graceful shutdown).
    pub fn cancel_waits(&self) {
        self.inner.shutdown.cancel();
    }

    /// Counts one answer: its usage goes to the token totals when it is written whole, to the
    /// cut-off counters when it is cut off; the ledger (if recording) gets it either way.
    pub(crate) fn add_answer(&self, meta: &Meta, usage: Usage, whole: bool) {
        let c = &self.inner.counters;
        if whole {
            c.prompt_tokens_total
                .fetch_add(u64::from(usage.prompt_tokens), Ordering::SeqCst);
            c.completion_tokens_total
                .fetch_add(u64::from(usage.completion_tokens), Ordering::SeqCst);
        } else {
            c.cut_off_answers.fetch_add(1, Ordering::SeqCst);
            c.cut_off_tokens_total.fetch_add(
                u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens),
                Ordering::SeqCst,
            );
        }
        // Not recording (the default): no lock taken on the answer path.
        if !self.inner.config.record_calls {
            return;
        }
        let mut ledger = self.inner.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if ledger.calls.len() >= MAX_RECORDED_CALLS {
            ledger.dropped += 1;
            return;
        }
        ledger.calls.push(ServedCall {
            id: meta.id.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            whole,
            traceparent: meta.traceparent.clone(),
        });
    }

    pub(crate) fn bump(&self, counter: Counter) {
        let c = &self.inner.counters;
        let target = match counter {
            Counter::Requests => &c.requests_total,
            Counter::Planner => &c.planner_requests,
            Counter::Executor => &c.executor_requests,
            Counter::Faults => &c.errors_injected,
        };
        target.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn faults(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// A unique number for response ids.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.inner.sequence.fetch_add(1, Ordering::SeqCst)
    }

    /// The 0-based index of this planner request for `task` since start or reset.
    pub(crate) fn next_plan_index(&self, task: &str) -> usize {
        let mut counts = self
            .inner
            .plan_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(task.trim().to_owned()).or_insert(0);
        let index = *count;
        *count += 1;
        index
    }

    /// Waits for a concurrency slot (queueing like vLLM) and counts the request in flight.
    pub(crate) async fn acquire(&self) -> Option<Slot> {
        let permit = self.inner.slots.clone().acquire_owned().await.ok()?;
        let c = &self.inner.counters;
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Some(Slot {
            _permit: permit,
            inner: self.inner.clone(),
        })
    }

    /// Sleeps for `duration` unless shutdown begins first.
    pub(crate) async fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.inner.shutdown.cancelled() => {}
        }
    }

    /// Sleeps until `deadline` unless shutdown begins first.
    pub(crate) async fn sleep_until(&self, deadline: tokio::time::Instant) {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = self.inner.shutdown.cancelled() => {}
        }
    }
}
