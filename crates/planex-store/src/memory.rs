//! The in-process store: the embedded default for `planex run` and single-node use.
//!
//! One `std::sync::Mutex` guards all state, so each trait operation is atomic exactly as the Redis
//! backend's Lua scripts are; no lock is held across an `.await`. Claimers wait on a per-tier
//! `Notify` (woken by enqueues) or until the tier's earliest lease expires, never by polling.

use crate::types::*;
use crate::{EventStream, Store};
use async_trait::async_trait;
use futures::StreamExt;
use planex_core::cause::SharedSource;
use planex_core::{CallRecord, Plan, StepId, TaskId, dag};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// Settings of the memory store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreOptions {
    /// A step handed out this many times without completing is a poison step: it goes to the
    /// dead-letter queue instead of another worker.
    pub max_deliveries: u32,
    /// How long a finished task is kept (`None`: until `max_finished_tasks` pushes it out), as the
    /// Redis store's `finished_task_ttl`.
    pub finished_task_ttl: Option<Duration>,
    /// Most finished tasks kept; the oldest finished go first. Tasks not yet finished are never
    /// evicted. Keeps a long-running `planex serve --store memory` from growing without bound.
    pub max_finished_tasks: usize,
    /// Most dead letters kept; the oldest go first.
    pub dead_letter_cap: usize,
}

impl Default for MemoryStoreOptions {
    fn default() -> Self {
        MemoryStoreOptions {
            max_deliveries: 5,
            finished_task_ttl: Some(Duration::from_secs(7 * 24 * 3600)),
            max_finished_tasks: 100_000,
            dead_letter_cap: 10_000,
        }
    }
}

/// The in-process `Store`.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    options: MemoryStoreOptions,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<TaskId, TaskEntry>,
    tiers: HashMap<String, TierQueue>,
    leases: HashMap<String, LeaseEntry>,
    dlq: VecDeque<DeadLetter>,
    next_token: u64,
    /// Finished tasks in the order they finished, for eviction.
    finished: VecDeque<(Instant, TaskId)>,
}

#[derive(Default)]
struct TierQueue {
    ready: VecDeque<(TaskId, StepId)>,
    notify: Arc<Notify>,
}

struct LeaseEntry {
    task_id: TaskId,
    step_id: StepId,
    tier: String,
    deadline: Instant,
}

struct TaskEntry {
    record: TaskRecord,
    pending: HashMap<StepId, usize>,
    dependents: BTreeMap<StepId, Vec<StepId>>,
    events: Vec<TaskEvent>,
    subscribers: Vec<mpsc::UnboundedSender<TaskEvent>>,
}

impl TaskEntry {
    fn emit(&mut self, kind: EventKind) {
        let event = TaskEvent {
            seq: self.events.len() as u64 + 1,
            at_ms: now_ms(),
            kind,
        };
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
        self.events.push(event);
    }

    fn step_mut(&mut self, step_id: StepId) -> Result<&mut StepRecord, StoreError> {
        let task_id = &self.record.task_id;
        self.record
            .steps
            .get_mut(&step_id)
            .ok_or_else(|| StoreError::StepNotFound {
                task_id: task_id.clone(),
                step_id,
            })
    }

    /// Propagates a terminal step to its dependents: decrements pending counts (returning the
    /// steps that became ready), or skips dependents that cannot run without it.
    fn settle(
        &mut self,
        step_id: StepId,
        succeeded: bool,
        ready: &mut Vec<StepId>,
        skipped: &mut Vec<StepId>,
    ) {
        let dependents = self.dependents.get(&step_id).cloned().unwrap_or_default();
        for dependent in dependents {
            let Some(record) = self.record.steps.get_mut(&dependent) else {
                continue;
            };
            if record.state != StepState::Pending {
                continue;
            }
            if succeeded || record.spec.tolerate_failed_deps {
                let count = self.pending.entry(dependent).or_insert(1);
                *count = count.saturating_sub(1);
                if *count == 0 {
                    record.state = StepState::Ready;
                    ready.push(dependent);
                }
            } else {
                let reason = format!("dependency step {step_id} did not complete");
                record.state = StepState::Skipped;
                record.error = Some(reason.clone());
                record.finished_at_ms = Some(now_ms());
                skipped.push(dependent);
                self.emit(EventKind::StepSkipped {
                    step_id: dependent,
                    reason,
                });
                self.settle(dependent, false, ready, skipped);
            }
        }
    }

    /// Finishes the task when every step is terminal; returns the final status if it did.
    fn finish_if_done(&mut self) -> Option<TaskStatus> {
        if self.record.status.is_terminal()
            || !self.record.steps.values().all(|s| s.state.is_terminal())
        {
            return None;
        }
        let completed = self
            .record
            .steps
            .values()
            .filter(|s| s.state == StepState::Complete)
            .count();
        let status = if completed == self.record.steps.len() {
            TaskStatus::Complete
        } else if completed == 0 {
            TaskStatus::Failed
        } else {
            TaskStatus::Partial
        };
        if status != TaskStatus::Complete {
            let reasons: Vec<String> = self
                .record
                .problems()
                .into_iter()
                .map(|(id, state, why)| format!("step {id} {}: {why}", state_word(state)))
                .collect();
            self.record.error = Some(reasons.join("; "));
        }
        self.record.status = status;
        self.record.finished_at_ms = Some(now_ms());
        self.emit(EventKind::TaskCompleted { status });
        self.subscribers.clear();
        Some(status)
    }
}

fn state_word(state: StepState) -> &'static str {
    match state {
        StepState::Failed => "failed",
        StepState::Skipped => "skipped",
        _ => "did not complete",
    }
}

impl Inner {
    /// Drops finished tasks past `finished_task_ttl` or beyond `max_finished_tasks` (oldest
    /// finished first) and dead letters beyond `dead_letter_cap`. Runs on each task creation, so
    /// memory stays bounded without a background sweeper.
    fn evict(&mut self, options: &MemoryStoreOptions) {
        let now = Instant::now();
        while let Some((finished, _)) = self.finished.front() {
            let expired = options
                .finished_task_ttl
                .is_some_and(|ttl| now.duration_since(*finished) >= ttl);
            if !expired && self.finished.len() <= options.max_finished_tasks {
                break;
            }
            if let Some((_, task_id)) = self.finished.pop_front() {
                self.tasks.remove(&task_id);
            }
        }
        let excess = self.dlq.len().saturating_sub(options.dead_letter_cap);
        self.dlq.drain(..excess);
    }

    /// Remembers that TASK_ID finished now, for eviction.
    fn record_finished(&mut self, task_id: &TaskId) {
        self.finished.push_back((Instant::now(), task_id.clone()));
    }

    fn task(&mut self, task_id: &TaskId) -> Result<&mut TaskEntry, StoreError> {
        self.tasks
            .get_mut(task_id)
            .ok_or_else(|| StoreError::TaskNotFound(task_id.clone()))
    }

    fn enqueue(&mut self, task_id: &TaskId, steps: &[StepId]) {
        for step_id in steps {
            let Some(tier) = self
                .tasks
                .get(task_id)
                .and_then(|t| t.record.steps.get(step_id))
                .map(|s| s.spec.tier.clone())
            else {
                continue;
            };
            let queue = self.tiers.entry(tier).or_default();
            queue.ready.push_back((task_id.clone(), *step_id));
            queue.notify.notify_waiters();
        }
    }

    /// Marks a step failed (DLQ, dependents skipped, task maybe finished). Caller checked it is not terminal.
    fn fail_step(
        &mut self,
        task_id: &TaskId,
        step_id: StepId,
        error: String,
        attempts: u32,
        calls: Vec<CallRecord>,
    ) -> Result<Completion, StoreError> {
        let entry = self.task(task_id)?;
        entry.record.calls.extend(calls);
        let step = entry.step_mut(step_id)?;
        step.state = StepState::Failed;
        step.error = Some(error.clone());
        step.attempts = attempts;
        step.finished_at_ms = Some(now_ms());
        let letter = DeadLetter {
            task_id: task_id.clone(),
            step_id,
            tool_name: step.spec.step.tool_name.clone(),
            tier: step.spec.tier.clone(),
            error: error.clone(),
            attempts,
            deliveries: step.deliveries,
            at_ms: now_ms(),
        };
        entry.emit(EventKind::StepFailed { step_id, error });
        let (mut ready, mut skipped) = (Vec::new(), Vec::new());
        entry.settle(step_id, false, &mut ready, &mut skipped);
        let task_finished = entry.finish_if_done();
        if task_finished.is_some() {
            self.record_finished(task_id);
        }
        self.dlq.push_back(letter);
        self.enqueue(task_id, &ready);
        Ok(Completion::Applied {
            newly_ready: ready,
            skipped,
            task_finished,
        })
    }

    /// Redelivers (or dead-letters) steps of `tier` whose lease has expired.
    fn recover_expired(&mut self, tier: &str, max_deliveries: u32) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, l)| l.tier == tier && l.deadline <= now)
            .map(|(token, _)| token.clone())
            .collect();
        for token in expired {
            let Some(lease) = self.leases.remove(&token) else {
                continue;
            };
            let Ok(entry) = self.task(&lease.task_id) else {
                continue;
            };
            let Some(step) = entry.record.steps.get_mut(&lease.step_id) else {
                continue;
            };
            if step.state != StepState::Running {
                continue;
            }
            if step.deliveries >= max_deliveries {
                let error = format!(
                    "poison step: delivered {} times and never completed (its worker died or hung each time)",
                    step.deliveries
                );
                let attempts = step.attempts;
                // The step exists and is running, so fail_step cannot hit a missing task or step.
                let _ = self.fail_step(&lease.task_id, lease.step_id, error, attempts, Vec::new());
            } else {
                step.state = StepState::Ready;
                let queue = self.tiers.entry(lease.tier).or_default();
                queue.ready.push_front((lease.task_id, lease.step_id));
            }
        }
    }

    fn next_deadline(&self, tier: &str) -> Option<Instant> {
        self.leases
            .values()
            .filter(|l| l.tier == tier)
            .map(|l| l.deadline)
            .min()
    }

    fn take_ready(
        &mut self,
        tier: &str,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Vec<StepLease> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some((task_id, step_id)) =
                self.tiers.get_mut(tier).and_then(|q| q.ready.pop_front())
            else {
                break;
            };
            self.next_token += 1;
            let token = format!("m{}", self.next_token);
            let Some(entry) = self.tasks.get_mut(&task_id) else {
                continue;
            };
            let dep_results: BTreeMap<StepId, serde_json::Value> =
                match entry.record.steps.get(&step_id) {
                    Some(step) if step.state == StepState::Ready => step
                        .spec
                        .step
                        .depends_on
                        .iter()
                        .filter_map(|d| {
                            entry
                                .record
                                .steps
                                .get(d)
                                .and_then(|s| s.result.clone())
                                .map(|r| (*d, r))
                        })
                        .collect(),
                    _ => continue,
                };
            let task_text = entry.record.task.clone();
            let Some(step) = entry.record.steps.get_mut(&step_id) else {
                continue;
            };
            step.state = StepState::Running;
            step.deliveries += 1;
            step.worker = Some(worker.to_owned());
            step.started_at_ms.get_or_insert_with(now_ms);
            let leased = StepLease {
                task_id: task_id.clone(),
                task_text,
                spec: step.spec.clone(),
                dep_results,
                token: token.clone(),
                delivery: step.deliveries,
            };
            entry.emit(EventKind::StepStarted {
                step_id,
                tier: tier.to_owned(),
                worker: worker.to_owned(),
                delivery: leased.delivery,
            });
            self.leases.insert(
                token,
                LeaseEntry {
                    task_id,
                    step_id,
                    tier: tier.to_owned(),
                    deadline: Instant::now() + lease,
                },
            );
            out.push(leased);
        }
        out
    }
}

impl MemoryStore {
    /// An empty store with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with the given options.
    pub fn with_options(options: MemoryStoreOptions) -> Self {
        MemoryStore {
            inner: Mutex::default(),
            options,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave state half-written in a way later calls
        // depend on more than on losing the process, so recover the guard rather than poison callers.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_task(&self, task: NewTask) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.evict(&self.options);
        if inner.tasks.contains_key(&task.task_id) {
            return Err(StoreError::TaskExists(task.task_id));
        }
        let entry = TaskEntry {
            record: TaskRecord::new(task),
            pending: HashMap::new(),
            dependents: BTreeMap::new(),
            events: Vec::new(),
            subscribers: Vec::new(),
        };
        inner.tasks.insert(entry.record.task_id.clone(), entry);
        Ok(())
    }

    async fn start_task(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        check_steps(task_id, &steps)?;
        let plan = serde_json::to_value(plan).map_err(|e| StoreError::Corrupt {
            what: "cannot encode the plan".into(),
            source: Some(SharedSource::new(e)),
        })?;
        let mut inner = self.lock();
        let entry = inner.task(task_id)?;
        if entry.record.status != TaskStatus::Planning {
            return Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status: entry.record.status,
                action: "start it with a plan",
            });
        }
        entry.dependents = dag::dependents(steps.iter().map(|s| &s.step));
        let mut roots = Vec::new();
        for spec in steps {
            let step_id = spec.step.step_id;
            entry.pending.insert(step_id, spec.step.depends_on.len());
            let mut record = StepRecord::new(spec);
            if record.spec.step.depends_on.is_empty() {
                record.state = StepState::Ready;
                roots.push(step_id);
            }
            entry.record.steps.insert(step_id, record);
        }
        entry.record.plan = Some(plan);
        entry.record.calls.extend(planner_calls);
        entry.record.status = TaskStatus::Running;
        let count = entry.record.steps.len();
        entry.emit(EventKind::Planned { steps: count });
        inner.enqueue(task_id, &roots);
        Ok(())
    }

    async fn finish_unplanned(
        &self,
        task_id: &TaskId,
        status: TaskStatus,
        reason: String,
        calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let entry = inner.task(task_id)?;
        if entry.record.status != TaskStatus::Planning || !status.is_terminal() {
            return Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status: entry.record.status,
                action: "finish it before planning completed",
            });
        }
        entry.record.calls.extend(calls);
        entry.record.status = status;
        entry.record.error = Some(reason);
        entry.record.finished_at_ms = Some(now_ms());
        entry.emit(EventKind::TaskCompleted { status });
        entry.subscribers.clear();
        inner.record_finished(task_id);
        Ok(())
    }

    async fn claim(
        &self,
        tier: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<StepLease>, StoreError> {
        let give_up = Instant::now() + wait;
        loop {
            let notify = self
                .lock()
                .tiers
                .entry(tier.to_owned())
                .or_default()
                .notify
                .clone();
            let notified = notify.notified();
            let next_expiry = {
                let mut inner = self.lock();
                inner.recover_expired(tier, self.options.max_deliveries);
                let taken = inner.take_ready(tier, worker, max.max(1), lease);
                if !taken.is_empty() {
                    return Ok(taken);
                }
                inner.next_deadline(tier)
            };
            let now = Instant::now();
            if now >= give_up {
                return Ok(Vec::new());
            }
            let wake_at = next_expiry.map_or(give_up, |d| d.min(give_up));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn extend_lease(&self, lease: &StepLease, by: Duration) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        Ok(match inner.leases.get_mut(&lease.token) {
            Some(entry) => {
                entry.deadline = Instant::now() + by;
                true
            }
            None => false,
        })
    }

    async fn release(&self, lease: &StepLease) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.leases.remove(&lease.token).is_none() {
            return Ok(());
        }
        let entry = inner.task(&lease.task_id)?;
        let step = entry.step_mut(lease.spec.step.step_id)?;
        if step.state == StepState::Running {
            step.state = StepState::Ready;
            step.deliveries = step.deliveries.saturating_sub(1);
            let queue = inner.tiers.entry(lease.spec.tier.clone()).or_default();
            queue
                .ready
                .push_front((lease.task_id.clone(), lease.spec.step.step_id));
            queue.notify.notify_waiters();
        }
        Ok(())
    }

    async fn complete(
        &self,
        lease: &StepLease,
        outcome: StepOutcome,
    ) -> Result<Completion, StoreError> {
        let mut inner = self.lock();
        inner.leases.remove(&lease.token);
        let step_id = lease.spec.step.step_id;
        let entry = inner.task(&lease.task_id)?;
        if entry.step_mut(step_id)?.state.is_terminal() {
            return Ok(Completion::Duplicate);
        }
        // Another delivery of this step may still hold a lease; it is void now.
        inner
            .leases
            .retain(|_, l| !(l.task_id == lease.task_id && l.step_id == step_id));
        match outcome {
            StepOutcome::Succeeded {
                result,
                attempts,
                calls,
            } => {
                let entry = inner.task(&lease.task_id)?;
                entry.record.calls.extend(calls);
                let step = entry.step_mut(step_id)?;
                step.state = StepState::Complete;
                step.result = Some(result);
                step.attempts = attempts;
                step.finished_at_ms = Some(now_ms());
                entry.emit(EventKind::StepCompleted { step_id });
                let (mut ready, mut skipped) = (Vec::new(), Vec::new());
                entry.settle(step_id, true, &mut ready, &mut skipped);
                let task_finished = entry.finish_if_done();
                if task_finished.is_some() {
                    inner.record_finished(&lease.task_id);
                }
                inner.enqueue(&lease.task_id, &ready);
                Ok(Completion::Applied {
                    newly_ready: ready,
                    skipped,
                    task_finished,
                })
            }
            StepOutcome::Failed {
                error,
                attempts,
                calls,
            } => inner.fail_step(&lease.task_id, step_id, error, attempts, calls),
        }
    }

    async fn get_task(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        Ok(self.lock().tasks.get(task_id).map(|t| t.record.clone()))
    }

    async fn events(&self, task_id: &TaskId) -> Result<EventStream, StoreError> {
        let mut inner = self.lock();
        let entry = inner.task(task_id)?;
        let history = futures::stream::iter(entry.events.clone());
        if entry.record.status.is_terminal() {
            return Ok(history.boxed());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        entry.subscribers.push(tx);
        let live = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        Ok(history
            .chain(live)
            .scan(false, |done, event| {
                let out = if *done { None } else { Some(event) };
                if let Some(e) = &out {
                    *done = matches!(e.kind, EventKind::TaskCompleted { .. });
                }
                futures::future::ready(out)
            })
            .boxed())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let inner = self.lock();
        let skip = inner.dlq.len().saturating_sub(limit);
        Ok(inner.dlq.iter().skip(skip).cloned().collect())
    }

    async fn queue_depth(&self, tier: &str) -> Result<QueueDepth, StoreError> {
        let inner = self.lock();
        Ok(QueueDepth {
            ready: inner.tiers.get(tier).map_or(0, |q| q.ready.len() as u64),
            in_flight: inner.leases.values().filter(|l| l.tier == tier).count() as u64,
        })
    }
}
