//! The in-process store: the embedded default for `planex run` and single-node use.
//!
//! One `std::sync::Mutex` guards all state, so each trait operation is atomic exactly as the Redis
//! backend's Lua scripts are; no lock is held across an `.await`. Claimers wait on a per-tier
//! `Notify` (woken by enqueues) or until the tier's earliest lease expires, never by polling.

use crate::check::{check_reused, check_steps};
use crate::dead_letters::{DeadLetter, DeadLetterPage, DeadLetterQuery, LetterId};
use crate::error::StoreError;
use crate::types::*;
use crate::{EventStream, Store, Submission, TaskChangeStream, TaskPage, TaskQuery, WorkerTtft};
use async_trait::async_trait;
use planex_core::cause::SharedSource;
use planex_core::{CallRecord, Plan, StepId, TaskId, dag};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

mod cancel;
mod changes;
mod dead_letters;
mod events;
mod heartbeat;
mod listing;
mod options;
mod retention;
mod state;
mod streamed;
mod submissions;

pub use options::{DEFAULT_FINISHED_TASK_TTL, MemoryStoreOptions};
use state::{Inner, TaskEntry};
use submissions::Submissions;

/// The in-process `Store`.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    submissions: Mutex<Submissions>,
    options: MemoryStoreOptions,
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
            submissions: Mutex::default(),
            options,
        }
    }

    /// The finished tasks kept now and the bytes they take by the store's own accounting (what
    /// `max_finished_tasks` and `max_finished_bytes` bound).
    pub fn retained_finished(&self) -> (usize, usize) {
        self.lock().retained()
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
            plan_open: false,
            cut_short: None,
            lost: HashMap::new(),
        };
        let record = &entry.record;
        inner
            .index
            .insert(&record.tenant, record.created_at_ms, &record.task_id);
        let task_id = entry.record.task_id.clone();
        inner.tasks.insert(task_id.clone(), entry);
        inner.announce(&task_id);
        Ok(())
    }

    async fn start_task_reusing(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        reused: BTreeMap<StepId, serde_json::Value>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        check_steps(task_id, &steps)?;
        check_reused(task_id, &steps, &reused)?;
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
        let now = now_ms();
        for spec in steps {
            let step_id = spec.step.step_id;
            let waits_for = spec
                .step
                .depends_on
                .iter()
                .filter(|d| !reused.contains_key(d))
                .count();
            let mut record = StepRecord::new(spec);
            if let Some(result) = reused.get(&step_id).cloned() {
                record.state = StepState::Complete;
                record.result = Some(result);
                record.finished_at_ms = Some(now);
            } else {
                entry.pending.insert(step_id, waits_for);
                if waits_for == 0 {
                    record.state = StepState::Ready;
                    roots.push(step_id);
                }
            }
            entry.record.steps.insert(step_id, record);
        }
        entry.record.plan = Some(plan);
        entry.record.calls.extend(planner_calls);
        entry.record.status = TaskStatus::Running;
        let count = entry.record.steps.len();
        entry.emit(EventKind::Planned { steps: count });
        inner.enqueue(task_id, &roots);
        inner.announce(task_id);
        Ok(())
    }

    async fn heartbeat(&self, tier: &str, worker: &str, ttl: Duration) -> Result<(), StoreError> {
        self.lock().heartbeat(tier, worker, ttl);
        Ok(())
    }

    async fn reap_dead_workers(&self, tier: &str) -> Result<usize, StoreError> {
        Ok(self.lock().reap_dead_workers(tier))
    }

    async fn live_workers(&self, tier: &str) -> Result<usize, StoreError> {
        Ok(self.lock().live_workers(tier))
    }

    async fn report_ttft(
        &self,
        tier: &str,
        report: &WorkerTtft,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.lock().report_ttft(tier, report, ttl);
        Ok(())
    }

    async fn tier_ttft(&self, tier: &str) -> Result<Vec<WorkerTtft>, StoreError> {
        Ok(self.lock().tier_ttft(tier))
    }

    async fn retire_worker(&self, tier: &str, worker: &str) -> Result<(), StoreError> {
        self.lock().forget_heartbeat(tier, worker);
        Ok(())
    }

    async fn open_plan(&self, task_id: &TaskId) -> Result<(), StoreError> {
        self.lock().open_plan(task_id)
    }

    async fn add_steps(&self, task_id: &TaskId, steps: Vec<StepSpec>) -> Result<(), StoreError> {
        self.lock().add_steps(task_id, steps)
    }

    async fn supersede_steps(
        &self,
        task_id: &TaskId,
        round: u32,
        steps: &[StepId],
        reason: &str,
    ) -> Result<(), StoreError> {
        self.lock().supersede_steps(task_id, round, steps, reason)
    }

    async fn close_plan(
        &self,
        task_id: &TaskId,
        plan: Option<&Plan>,
        calls: Vec<CallRecord>,
        cut_short: Option<String>,
    ) -> Result<(), StoreError> {
        self.lock().close_plan(task_id, plan, calls, cut_short)
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

    async fn cancel_task(&self, task_id: &TaskId) -> Result<(), StoreError> {
        self.lock().cancel(task_id)
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
        let cancelled = inner.is_cancelled(&lease.task_id);
        let entry = inner.task(&lease.task_id)?;
        let step = entry.step_mut(lease.spec.step.step_id)?;
        if step.state == StepState::Running && cancelled {
            entry.skip_cancelled(lease.spec.step.step_id);
        } else if step.state == StepState::Running {
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
                attempt_errors,
            } => inner.fail_step(
                &lease.task_id,
                step_id,
                error,
                attempts,
                calls,
                attempt_errors,
            ),
        }
    }

    async fn planning_tasks(
        &self,
        created_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        let inner = self.lock();
        let mut planning: Vec<(u64, &TaskId)> = inner
            .tasks
            .values()
            .filter(|t| t.record.status == TaskStatus::Planning || t.plan_open)
            .map(|t| &t.record)
            .filter(|r| r.created_at_ms <= created_by_ms)
            .map(|r| (r.created_at_ms, &r.task_id))
            .collect();
        planning.sort_unstable();
        Ok(planning
            .into_iter()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        let inner = self.lock();
        Ok(listing::page(&inner.index, query, |id| {
            inner.tasks.get(id).map(|t| &t.record)
        }))
    }

    async fn get_task(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        Ok(self.lock().tasks.get(task_id).map(|t| t.record.clone()))
    }

    async fn remember_submission(
        &self,
        tenant: &str,
        key_digest: &str,
        submission: &Submission,
        ttl: Duration,
    ) -> Result<Option<Submission>, StoreError> {
        let key = (tenant.to_owned(), key_digest.to_owned());
        let cap = self.options.max_idempotency_keys.max(1);
        Ok(self
            .submissions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remember(key, submission, ttl, cap))
    }

    async fn confirm_submission(
        &self,
        tenant: &str,
        key_digest: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.submissions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .confirm((tenant.to_owned(), key_digest.to_owned()), ttl);
        Ok(())
    }

    async fn forget_submission(&self, tenant: &str, key_digest: &str) -> Result<(), StoreError> {
        self.submissions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .forget(&(tenant.to_owned(), key_digest.to_owned()));
        Ok(())
    }

    async fn events(&self, task_id: &TaskId) -> Result<EventStream, StoreError> {
        self.lock().event_stream(task_id)
    }

    async fn publish_transient(&self, task_id: &TaskId, kind: EventKind) -> Result<(), StoreError> {
        self.lock().publish_transient(task_id, kind);
        Ok(())
    }

    async fn task_changes(&self) -> Result<TaskChangeStream, StoreError> {
        Ok(self.lock().changes.subscribe())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let inner = self.lock();
        let skip = inner.dlq.len().saturating_sub(limit);
        Ok(inner.dlq.iter().skip(skip).cloned().collect())
    }

    async fn dead_letter_page(
        &self,
        query: &DeadLetterQuery,
    ) -> Result<DeadLetterPage, StoreError> {
        Ok(self.lock().letter_page(query))
    }

    async fn dead_letter(&self, id: LetterId) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.lock().letter(id))
    }

    async fn purge_dead_letter(&self, id: LetterId) -> Result<bool, StoreError> {
        Ok(self.lock().purge_letter(id))
    }

    async fn queue_depth(&self, tier: &str) -> Result<QueueDepth, StoreError> {
        let inner = self.lock();
        Ok(QueueDepth {
            ready: inner.tiers.get(tier).map_or(0, |q| q.ready.len() as u64),
            in_flight: inner.leases.values().filter(|l| l.tier == tier).count() as u64,
        })
    }
}
