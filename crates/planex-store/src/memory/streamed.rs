//! Streamed plans in the memory store: a task opened with its plan still being written, steps
//! added one batch at a time, re-plans that supersede steps, and the close (`Store::open_plan`
//! and the methods after it; `lua/add_steps.lua` and its siblings do the same on Redis).

use super::state::Inner;
use crate::check::check_added_steps;
use crate::error::StoreError;
use crate::types::*;
use planex_core::cause::SharedSource;
use planex_core::{CallRecord, Plan, StepId, TaskId};

impl Inner {
    /// `Store::open_plan`.
    pub(super) fn open_plan(&mut self, task_id: &TaskId) -> Result<(), StoreError> {
        let entry = self.task(task_id)?;
        if entry.record.status != TaskStatus::Planning {
            return Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status: entry.record.status,
                action: "open its plan",
            });
        }
        entry.record.status = TaskStatus::Running;
        entry.plan_open = true;
        self.announce(task_id);
        Ok(())
    }

    /// `Store::add_steps`.
    pub(super) fn add_steps(
        &mut self,
        task_id: &TaskId,
        steps: Vec<StepSpec>,
    ) -> Result<(), StoreError> {
        let entry = self.task(task_id)?;
        if entry.record.status != TaskStatus::Running || !entry.plan_open {
            return Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status: entry.record.status,
                action: "add steps to its plan (it is not open)",
            });
        }
        check_added_steps(task_id, &steps, |id| entry.record.steps.contains_key(&id))?;
        let mut ready = Vec::new();
        for spec in steps {
            let step_id = spec.step.step_id;
            let deps = spec.step.depends_on.clone();
            let tolerant = spec.tolerate_failed_deps;
            let states: Vec<StepState> = deps
                .iter()
                .filter_map(|d| entry.record.steps.get(d).map(|s| s.state))
                .collect();
            let waiting = states.iter().filter(|s| !s.is_terminal()).count();
            let completed = states.contains(&StepState::Complete);
            let lost = deps
                .iter()
                .zip(&states)
                .find(|(_, s)| matches!(s, StepState::Failed | StepState::Skipped))
                .map(|(d, _)| *d);
            for dep in deps.iter().zip(&states).filter(|(_, s)| !s.is_terminal()) {
                entry.dependents.entry(*dep.0).or_default().push(step_id);
            }
            entry.pending.insert(step_id, waiting);
            entry.emit(EventKind::StepPlanned {
                step_id,
                tool_name: spec.step.tool_name.clone(),
                tier: spec.tier.clone(),
                depends_on: deps.clone(),
            });
            let mut record = StepRecord::new(spec);
            let skip = match (lost, tolerant) {
                (Some(dep), false) => Some(format!("dependency step {dep} did not complete")),
                (_, true) if waiting == 0 && !deps.is_empty() && !completed => Some(
                    "no dependency step completed, so there is nothing to answer from".to_owned(),
                ),
                _ => None,
            };
            if let Some(reason) = skip {
                record.state = StepState::Skipped;
                record.error = Some(reason.clone());
                record.finished_at_ms = Some(now_ms());
                entry.record.steps.insert(step_id, record);
                entry.emit(EventKind::StepSkipped { step_id, reason });
            } else {
                if waiting == 0 {
                    record.state = StepState::Ready;
                    ready.push(step_id);
                }
                entry.record.steps.insert(step_id, record);
            }
        }
        self.enqueue(task_id, &ready);
        Ok(())
    }

    /// `Store::supersede_steps`.
    pub(super) fn supersede_steps(
        &mut self,
        task_id: &TaskId,
        round: u32,
        steps: &[StepId],
        reason: &str,
    ) -> Result<(), StoreError> {
        let entry = self.task(task_id)?;
        if entry.record.status != TaskStatus::Running || !entry.plan_open {
            return Err(StoreError::WrongStatus {
                task_id: task_id.clone(),
                status: entry.record.status,
                action: "re-plan it (its plan is not open)",
            });
        }
        let mut superseded = Vec::new();
        for step_id in steps {
            let Some(step) = entry.record.steps.get_mut(step_id) else {
                continue;
            };
            step.superseded = true;
            superseded.push(*step_id);
            if matches!(step.state, StepState::Pending | StepState::Ready) {
                step.state = StepState::Skipped;
                step.error = Some(reason.to_owned());
                step.finished_at_ms = Some(now_ms());
                entry.emit(EventKind::StepSkipped {
                    step_id: *step_id,
                    reason: reason.to_owned(),
                });
            }
        }
        entry.emit(EventKind::Replanned {
            round,
            reason: reason.to_owned(),
            superseded,
        });
        Ok(())
    }

    /// `Store::close_plan`.
    pub(super) fn close_plan(
        &mut self,
        task_id: &TaskId,
        plan: Option<&Plan>,
        calls: Vec<CallRecord>,
        cut_short: Option<String>,
    ) -> Result<(), StoreError> {
        let plan = plan
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                what: "cannot encode the plan".into(),
                source: Some(SharedSource::new(e)),
            })?;
        let entry = self.task(task_id)?;
        entry.record.calls.extend(calls);
        if !entry.plan_open {
            // Ended meanwhile (cancelled): the calls are recorded, nothing else changes.
            return Ok(());
        }
        entry.plan_open = false;
        entry.cut_short = cut_short;
        if plan.is_some() {
            entry.record.plan = plan;
        }
        let steps = entry.record.steps.len();
        entry.emit(EventKind::Planned { steps });
        if entry.finish_if_done().is_some() {
            self.record_finished(task_id);
        }
        Ok(())
    }
}
