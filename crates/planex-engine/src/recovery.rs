//! Recovery of what an API replica leaves behind when it dies mid-task: budget reservations it
//! never settled, and tasks it never finished planning.
//!
//! The work of an accepted task lives in the store, so workers finish it without the replica that
//! submitted it; but that replica was the one waiting to settle the task's budget reservation
//! (`submit.rs`), and a task it was still planning stays in `planning` forever. Any replica can
//! run an [`OrphanRecovery`] pass (`planex serve` runs one every minute):
//! - a reservation of a finished task is settled with the task's recorded cost (the same
//!   settlement the submitting replica would have made; settling twice is harmless);
//! - a task `running` with its streamed plan still open after the planning bound has its plan
//!   closed: the steps planned so far run and the task ends `partial` saying why;
//! - a task still `planning` after the planning bound (the planning deadline plus one lease: its
//!   replica fails it itself at the deadline while it lives) is failed with a reason saying what is
//!   known, and its reservations are released; such tasks are found through the store's index of
//!   planning tasks ([`planex_store::Store::planning_tasks`]), so budgets need not be on;
//! - a reservation with no task behind it (a `/v1/plan` or `/v1/execute` call, or a task whose
//!   keys expired) is released once passes of this process have seen it for the grace, longer
//!   than any single call takes;
//! - anything else (a task still running, or planning within the grace) is left alone.
//!
//! Key decision: ownership is never recorded, only the task's state and the reservation's age
//! decide, so recovery is safe to run on every replica at once and needs no leader election.

use crate::{Engine, EngineError};
use planex_core::{Decimal, Stage, TaskId};
use planex_store::{TaskRecord, TaskStatus, now_ms};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What one recovery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Reservations settled with the cost their finished task recorded.
    pub settled: usize,
    /// Reservations released without spend (task gone, or failed while planning).
    pub released: usize,
    /// Tasks failed because they were left in `planning` by a replica that stopped.
    pub abandoned_plans: usize,
}

/// The suffix of a task's planner-call reservation id (`submit.rs`).
const PLAN_SUFFIX: &str = "/plan";

/// Recovery passes of one process; remembers since when it has seen reservations without a task.
#[derive(Debug)]
pub struct OrphanRecovery {
    grace: Duration,
    planning_bound: Duration,
    taskless_since: HashMap<String, Instant>,
}

impl OrphanRecovery {
    /// Recovery that leaves planning tasks and taskless reservations alone for `grace`.
    pub fn new(grace: Duration) -> Self {
        OrphanRecovery {
            grace,
            planning_bound: grace,
            taskless_since: HashMap::new(),
        }
    }

    /// Fails tasks still `planning` after `bound` instead of after the grace: the planning
    /// deadline (`PlannerSettings::deadline`) plus one lease, past which the replica that accepted
    /// the task must have stopped or lost the store.
    pub fn with_planning_bound(mut self, bound: Duration) -> Self {
        self.planning_bound = bound;
        self
    }

    /// One pass: the tasks left planning past the bound (the store's index of planning tasks),
    /// then the held reservations (only with a budget guard).
    pub async fn pass(&mut self, engine: &Engine) -> Result<Recovery, EngineError> {
        let mut report = Recovery::default();
        let abandoned = self.abandon_stale_plans(engine, &mut report).await?;
        let Some(guard) = &engine.budget else {
            return Ok(report);
        };
        let ledger = guard.ledger();
        let held = ledger.held().await.map_err(crate::error::ledger_down)?;
        let live: HashSet<&String> = held.iter().collect();
        self.taskless_since.retain(|id, _| live.contains(id));
        for id in &held {
            let (task_id, plan) = match id.strip_suffix(PLAN_SUFFIX) {
                Some(task) => (TaskId::from(task), true),
                None => (TaskId::from(id.as_str()), false),
            };
            let record = match engine.store.get_task(&task_id).await? {
                // Failed just now for planning too long: release what it holds.
                Some(_) if abandoned.contains(&task_id) => None,
                Some(record) if record.status == TaskStatus::Planning => {
                    let age_ms = now_ms().saturating_sub(record.created_at_ms);
                    if u128::from(age_ms) < self.planning_bound.as_millis() {
                        continue;
                    }
                    if !engine
                        .abandon_plan(&record, self.planning_bound, &mut report)
                        .await?
                    {
                        // It moved on meanwhile (its replica started it at last): leave it.
                        continue;
                    }
                    None
                }
                Some(record) => Some(record),
                None => {
                    let since = *self
                        .taskless_since
                        .entry(id.clone())
                        .or_insert_with(Instant::now);
                    if since.elapsed() < self.grace {
                        continue;
                    }
                    self.taskless_since.remove(id);
                    None
                }
            };
            match record {
                Some(record) if record.status.is_terminal() && plan => {
                    if ledger
                        .reconcile(id, planner_cost(&record))
                        .await
                        .map_err(crate::error::ledger_down)?
                    {
                        report.settled += 1;
                    }
                }
                Some(record) if record.status.is_terminal() => {
                    guard.settle(&record).await;
                    report.settled += 1;
                }
                // Running: its replica (or the next pass) settles it when it finishes.
                Some(_) => {}
                // No task, or one abandoned while planning: what its calls drew stays charged
                // (a reconcile of nothing charges at least what the draws used), the rest is freed.
                None => {
                    if ledger
                        .reconcile(id, Decimal::ZERO)
                        .await
                        .map_err(crate::error::ledger_down)?
                    {
                        report.released += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}

impl OrphanRecovery {
    /// Fails the tasks still `planning` that were created more than the planning bound ago, at
    /// most [`PLANNING_BATCH`] a pass (the next pass takes the rest). Their reservations, if any,
    /// are settled by the reservation part of the same pass.
    async fn abandon_stale_plans(
        &self,
        engine: &Engine,
        report: &mut Recovery,
    ) -> Result<HashSet<TaskId>, EngineError> {
        let mut abandoned = HashSet::new();
        let bound_ms = u64::try_from(self.planning_bound.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(bound_ms);
        for task_id in engine.store.planning_tasks(cutoff, PLANNING_BATCH).await? {
            let record = engine.store.get_task(&task_id).await?;
            // Running and listed: a streamed plan its replica left open. Its steps run; closing
            // the plan lets the task finish with them (its reservation is settled then).
            if let Some(record) = &record
                && record.status == TaskStatus::Running
            {
                engine
                    .close_abandoned_plan(record, self.planning_bound)
                    .await?;
                report.abandoned_plans += 1;
                continue;
            }
            // A task started, finished or gone since it was listed is left alone.
            if let Some(record) = record
                && record.status == TaskStatus::Planning
                && engine
                    .abandon_plan(&record, self.planning_bound, report)
                    .await?
            {
                abandoned.insert(task_id);
            }
        }
        Ok(abandoned)
    }
}

/// How many stale planning tasks one pass fails at most.
const PLANNING_BATCH: usize = 1000;

impl Engine {
    /// The planner calls a task's reservation holds (none without a budget guard), for the record
    /// of a task whose replica stopped while planning it.
    async fn planner_calls_left_behind(&self, task_id: &TaskId) -> Vec<planex_core::CallRecord> {
        match &self.budget {
            Some(guard) => {
                guard
                    .planner_calls_left_behind(task_id, &self.executor.models)
                    .await
            }
            None => Vec::new(),
        }
    }

    /// Closes the streamed plan of a task whose replica stopped while writing it: the steps it
    /// added run, the task ends `partial` (or `failed`) saying why.
    async fn close_abandoned_plan(
        &self,
        record: &TaskRecord,
        bound: Duration,
    ) -> Result<(), EngineError> {
        let reason = format!(
            "its plan was still open {} s after the task was created (the planning deadline plus one lease): the API replica streaming it stopped or lost the store, so only the steps planned by then ran; submit the task again for the rest",
            bound.as_secs_f64()
        );
        tracing::warn!(task = %record.task_id, "closing a streamed plan its replica left open");
        let calls = self.planner_calls_left_behind(&record.task_id).await;
        self.store
            .close_plan(&record.task_id, None, calls, Some(reason))
            .await?;
        Ok(())
    }

    /// Fails a task still planning after `bound`; false when it moved on meanwhile.
    async fn abandon_plan(
        &self,
        record: &TaskRecord,
        bound: Duration,
        report: &mut Recovery,
    ) -> Result<bool, EngineError> {
        let reason = format!(
            "planning did not finish within {} s (the planning deadline plus one lease), so the API replica that accepted the task stopped or lost the store before recording the outcome; submit the task again",
            bound.as_secs_f64()
        );
        // What its planner calls drew (and the tenant was charged) stays in the task's cost.
        let calls = self.planner_calls_left_behind(&record.task_id).await;
        match self
            .store
            .finish_unplanned(&record.task_id, TaskStatus::Failed, reason, calls)
            .await
        {
            Ok(()) => {
                report.abandoned_plans += 1;
                Ok(true)
            }
            // Another replica (or the planner, at last) got there first.
            Err(planex_store::StoreError::WrongStatus { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

/// What the planner calls of a task cost (its `/plan` reservation's actual spend).
fn planner_cost(record: &TaskRecord) -> Decimal {
    record
        .calls
        .iter()
        .filter(|c| c.stage == Stage::Plan)
        .map(|c| c.cost_usd)
        .sum()
}
