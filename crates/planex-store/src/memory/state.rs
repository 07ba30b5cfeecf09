//! The memory store's state behind its one lock: tasks, per-tier ready queues, leases and dead
//! letters, and the operations on them that the `Store` methods compose (each under one lock, so
//! each trait operation is atomic).

use super::listing::TenantIndex;
use crate::dead_letters::DeadLetter;
use crate::error::StoreError;
use crate::types::*;
use planex_core::{CallRecord, StepId, TaskId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

#[derive(Default)]
pub(super) struct Inner {
    pub(super) tasks: HashMap<TaskId, TaskEntry>,
    pub(super) tiers: HashMap<String, TierQueue>,
    pub(super) leases: HashMap<String, LeaseEntry>,
    pub(super) dlq: VecDeque<DeadLetter>,
    /// The id of the letter parked last (ids only grow).
    pub(super) last_letter: Option<crate::dead_letters::LetterId>,
    pub(super) next_token: u64,
    /// Finished tasks in the order they finished, for eviction.
    pub(super) finished: VecDeque<Finished>,
    /// What the finished tasks in `finished` take, by the store's own accounting.
    pub(super) finished_bytes: usize,
    /// Task ids per tenant by creation time, for listing.
    pub(super) index: TenantIndex,
    /// Workers that sent a heartbeat, by (tier, worker): when it lapses (`heartbeat.rs`).
    pub(super) heartbeats: HashMap<(String, String), Instant>,
    /// Workers' TTFT reports by (tier, worker), with when each lapses.
    pub(super) ttft_reports: HashMap<(String, String), (crate::workers::WorkerTtft, Instant)>,
    /// Readers of task status changes (`changes.rs`).
    pub(super) changes: super::changes::ChangeFeed,
}

#[derive(Default)]
pub(super) struct TierQueue {
    pub(super) ready: VecDeque<(TaskId, StepId)>,
    pub(super) notify: Arc<Notify>,
}

pub(super) struct LeaseEntry {
    pub(super) task_id: TaskId,
    pub(super) step_id: StepId,
    pub(super) tier: String,
    /// The worker holding it.
    pub(super) worker: String,
    pub(super) deadline: Instant,
}

/// A finished task, in the order tasks finished (`retention.rs` evicts from the front).
pub(super) struct Finished {
    pub(super) at: Instant,
    pub(super) task_id: TaskId,
    /// What it takes, by the store's accounting.
    pub(super) bytes: usize,
}

pub(super) struct TaskEntry {
    pub(super) record: TaskRecord,
    pub(super) pending: HashMap<StepId, usize>,
    pub(super) dependents: BTreeMap<StepId, Vec<StepId>>,
    pub(super) events: Vec<TaskEvent>,
    pub(super) subscribers: Vec<mpsc::UnboundedSender<TaskEvent>>,
    /// A streamed plan still being written (`Store::open_plan`): the task does not finish.
    pub(super) plan_open: bool,
    /// Why its plan did not run as written (`Store::close_plan`'s `cut_short`).
    pub(super) cut_short: Option<String>,
    /// Per step, the deliveries its workers lost (lease expired), for its dead letter.
    pub(super) lost: HashMap<StepId, Vec<String>>,
}

impl TaskEntry {
    pub(super) fn emit(&mut self, kind: EventKind) {
        let event = TaskEvent {
            seq: self.events.len() as u64 + 1,
            at_ms: now_ms(),
            kind,
        };
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
        self.events.push(event);
    }

    pub(super) fn step_mut(&mut self, step_id: StepId) -> Result<&mut StepRecord, StoreError> {
        let task_id = &self.record.task_id;
        self.record
            .steps
            .get_mut(&step_id)
            .ok_or_else(|| StoreError::StepNotFound {
                task_id: task_id.clone(),
                step_id,
            })
    }

    /// Whether any dependency of `step_id` completed.
    fn any_dependency_complete(&self, step_id: StepId) -> bool {
        self.record.steps.get(&step_id).is_some_and(|record| {
            record.spec.step.depends_on.iter().any(|dep| {
                self.record
                    .steps
                    .get(dep)
                    .is_some_and(|d| d.state == StepState::Complete)
            })
        })
    }

    /// Propagates a terminal step to its dependents: decrements pending counts (returning the
    /// steps that became ready), or skips dependents that cannot run without it: a step that does
    /// not tolerate failed dependencies at once, one that does (the synthesis step) once its last
    /// dependency ends and none of them completed, so no model call answers from nothing
    /// (`lua/common.lua` `settle` does the same).
    pub(super) fn settle(
        &mut self,
        step_id: StepId,
        succeeded: bool,
        ready: &mut Vec<StepId>,
        skipped: &mut Vec<StepId>,
    ) {
        let dependents = self.dependents.get(&step_id).cloned().unwrap_or_default();
        for dependent in dependents {
            let Some(record) = self.record.steps.get(&dependent) else {
                continue;
            };
            if record.state != StepState::Pending {
                continue;
            }
            let tolerant = record.spec.tolerate_failed_deps;
            let mut reason = None;
            if succeeded || tolerant {
                let count = self.pending.entry(dependent).or_insert(1);
                *count = count.saturating_sub(1);
                if *count == 0 {
                    if succeeded || self.any_dependency_complete(dependent) {
                        if let Some(record) = self.record.steps.get_mut(&dependent) {
                            record.state = StepState::Ready;
                            ready.push(dependent);
                        }
                    } else {
                        reason = Some(
                            "no dependency step completed, so there is nothing to answer from"
                                .to_owned(),
                        );
                    }
                }
            } else {
                reason = Some(format!("dependency step {step_id} did not complete"));
            }
            if let Some(reason) = reason
                && let Some(record) = self.record.steps.get_mut(&dependent)
            {
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

    /// Finishes the task when every step is terminal and its plan is closed; returns the final
    /// status if it did. Steps a re-plan superseded do not count (`lua/common.lua`
    /// `finish_if_done` alike).
    pub(super) fn finish_if_done(&mut self) -> Option<TaskStatus> {
        if self.plan_open
            || self.record.status.is_terminal()
            || !self.record.steps.values().all(|s| s.state.is_terminal())
        {
            return None;
        }
        let counted: Vec<&StepRecord> = self
            .record
            .steps
            .values()
            .filter(|s| !s.superseded)
            .collect();
        let completed = counted
            .iter()
            .filter(|s| s.state == StepState::Complete)
            .count();
        let status = final_status(completed, counted.len(), self.cut_short.is_some());
        if status != TaskStatus::Complete {
            let reasons: Vec<String> =
                self.cut_short
                    .iter()
                    .cloned()
                    .chain(
                        self.record.problems().into_iter().map(|(id, state, why)| {
                            format!("step {id} {}: {why}", state_word(state))
                        }),
                    )
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

/// A finished task's status from how many of its counted steps completed: all of them (and
/// its plan ran as written) `complete`, none `failed`, else `partial`.
fn final_status(completed: usize, counted: usize, cut_short: bool) -> TaskStatus {
    if completed == 0 {
        TaskStatus::Failed
    } else if completed == counted && !cut_short {
        TaskStatus::Complete
    } else {
        TaskStatus::Partial
    }
}

pub(super) fn state_word(state: StepState) -> &'static str {
    match state {
        StepState::Failed => "failed",
        StepState::Skipped => "skipped",
        _ => "did not complete",
    }
}

impl Inner {
    /// Tells the readers of task changes the task's status now (`changes.rs`).
    pub(super) fn announce(&self, task_id: &TaskId) {
        if let Some(entry) = self.tasks.get(task_id) {
            self.changes.announce(&entry.record);
        }
    }

    pub(super) fn task(&mut self, task_id: &TaskId) -> Result<&mut TaskEntry, StoreError> {
        self.tasks
            .get_mut(task_id)
            .ok_or_else(|| StoreError::TaskNotFound(task_id.clone()))
    }

    pub(super) fn enqueue(&mut self, task_id: &TaskId, steps: &[StepId]) {
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

    /// Marks a step failed (DLQ, dependents skipped, task maybe finished). Caller checked it is
    /// not terminal. `attempt_errors`: the last worker's earlier attempts; the deliveries lost
    /// before come first in the dead letter.
    pub(super) fn fail_step(
        &mut self,
        task_id: &TaskId,
        step_id: StepId,
        error: String,
        attempts: u32,
        calls: Vec<CallRecord>,
        attempt_errors: Vec<String>,
    ) -> Result<Completion, StoreError> {
        let entry = self.task(task_id)?;
        let tenant = entry.record.tenant.clone();
        let mut history = entry.lost.remove(&step_id).unwrap_or_default();
        history.extend(attempt_errors);
        entry.record.calls.extend(calls);
        let step = entry.step_mut(step_id)?;
        step.state = StepState::Failed;
        step.error = Some(error.clone());
        step.attempts = attempts;
        step.finished_at_ms = Some(now_ms());
        let letter = DeadLetter {
            id: String::new(),
            task_id: task_id.clone(),
            tenant,
            step_id,
            tool_name: step.spec.step.tool_name.clone(),
            tier: step.spec.tier.clone(),
            error: error.clone(),
            attempts,
            deliveries: step.deliveries,
            at_ms: now_ms(),
            attempt_errors: history,
        };
        entry.emit(EventKind::StepFailed { step_id, error });
        let (mut ready, mut skipped) = (Vec::new(), Vec::new());
        entry.settle(step_id, false, &mut ready, &mut skipped);
        let task_finished = entry.finish_if_done();
        if task_finished.is_some() {
            self.record_finished(task_id);
        }
        self.park(letter);
        self.enqueue(task_id, &ready);
        Ok(Completion::Applied {
            newly_ready: ready,
            skipped,
            task_finished,
        })
    }

    /// Redelivers (or dead-letters) steps of `tier` whose lease has expired.
    pub(super) fn recover_expired(&mut self, tier: &str, max_deliveries: u32) {
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
            let cancelled = self.is_cancelled(&lease.task_id);
            let Ok(entry) = self.task(&lease.task_id) else {
                continue;
            };
            let Some(step) = entry.record.steps.get_mut(&lease.step_id) else {
                continue;
            };
            if step.state != StepState::Running {
                continue;
            }
            if !cancelled {
                let note = format!(
                    "delivery {} (worker {}): its lease expired; the worker died, hung or lost the store",
                    step.deliveries, lease.worker
                );
                entry.lost.entry(lease.step_id).or_default().push(note);
            }
            let Some(step) = entry.record.steps.get_mut(&lease.step_id) else {
                continue;
            };
            if cancelled {
                // Its worker vanished after the task was cancelled: it is not run again.
                entry.skip_cancelled(lease.step_id);
            } else if step.deliveries >= max_deliveries {
                let error = format!(
                    "poison step: delivered {} times and never completed (its worker died or hung each time)",
                    step.deliveries
                );
                let attempts = step.attempts;
                // The step exists and is running, so fail_step cannot hit a missing task or step;
                // if it ever did, the failure is logged rather than dropped.
                if let Err(error) = self.fail_step(
                    &lease.task_id,
                    lease.step_id,
                    error,
                    attempts,
                    Vec::new(),
                    Vec::new(),
                ) {
                    tracing::error!(%error, task = %lease.task_id, "could not dead-letter a poison step");
                }
            } else {
                step.state = StepState::Ready;
                let queue = self.tiers.entry(lease.tier).or_default();
                queue.ready.push_front((lease.task_id, lease.step_id));
            }
        }
    }

    pub(super) fn next_deadline(&self, tier: &str) -> Option<Instant> {
        self.leases
            .values()
            .filter(|l| l.tier == tier)
            .map(|l| l.deadline)
            .min()
    }

    pub(super) fn take_ready(
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
            let trace_parent = entry.record.trace_parent.clone();
            let Some(step) = entry.record.steps.get_mut(&step_id) else {
                continue;
            };
            step.state = StepState::Running;
            step.deliveries += 1;
            step.worker = Some(worker.to_owned());
            let resumed = step.started_at_ms.is_some();
            step.started_at_ms.get_or_insert_with(now_ms);
            let leased = StepLease {
                task_id: task_id.clone(),
                task_text,
                spec: step.spec.clone(),
                dep_results,
                token: token.clone(),
                delivery: step.deliveries,
                resumed,
                trace_parent,
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
                    worker: worker.to_owned(),
                    deadline: Instant::now() + lease,
                },
            );
            out.push(leased);
        }
        out
    }
}
