//! Task submission: the admission stages (`admission.rs`: prepare → reserve → plan or cache → fit
//! budget), then **start** (book the steps, hand them to the store) and **settle** (reconcile the
//! spend with real costs however the task ends).
//!
//! Key decisions: a task is **received** (checked, its planner call reserved, recorded in
//! `planning`) before it is planned, so [`Engine::accept`] can hand the caller the task id at once
//! and plan in a background task that no client connection can cancel; [`Engine::submit`] runs the
//! same stages inline. Planning has a deadline (`PlannerSettings::deadline`), so no task stays in
//! `planning` past it while its replica lives. The outcome is read from the store by id, so any
//! replica can serve the task. Budgets are enforced by reservations booked *before* each spend (the
//! planner call, then the executor steps) and settled with real costs afterwards; every settlement
//! goes through `BudgetGuard::settle_reservation` / `release_reservation` / `settle`, which log
//! ledger failures instead of dropping them.

use crate::admission::{Admission, Admitted, Charge, Prepared, cost_of};
use crate::{Engine, EngineError, PlanningFailed, TaskRequest};
use planex_core::{Plan, StepId, TaskId};
use planex_llm::ChatModel;
use planex_store::{Booking, NewTask, StepSpec, TaskRecord, TaskStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How long the settlement of a task's spend waits for the task to finish.
const SETTLE_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A task received (recorded in `planning`) and not yet planned.
pub(crate) struct Received {
    planner: Arc<dyn ChatModel>,
    cache_key: Option<String>,
    cached: Option<Plan>,
    /// The step specs of the client's plan (`Prepared::client_plan`), already reserved for.
    client_specs: Option<Vec<StepSpec>>,
}

/// A task accepted by [`Engine::accept`]: its id, known before planning, and the background
/// planning and start.
pub struct Accepted {
    /// The task's id (its record exists, in `planning`).
    pub task_id: TaskId,
    admission: tokio::task::JoinHandle<Result<TaskId, EngineError>>,
}

impl Accepted {
    /// Waits for planning and start: `Ok` once the task runs (or failed planning), the budget
    /// refusal of its plan as `EngineError::Budget` (the task is then `rejected`). Dropping the
    /// `Accepted` instead leaves the planning running.
    pub async fn admitted(self) -> Result<TaskId, EngineError> {
        self.admission
            .await
            .map_err(|source| EngineError::Admission {
                task_id: self.task_id.clone(),
                source,
            })?
    }
}

impl Engine {
    /// Records the task, plans it and hands its steps to the store. Returns once the task is
    /// running (or has failed planning). A budget refusal is `EngineError::Budget`; when the task
    /// was already recorded, it is left `rejected` with its planner calls.
    pub async fn submit(&self, request: TaskRequest) -> Result<TaskId, EngineError> {
        let prepared = self.prepare(&request).await?;
        let span = task_span(&request, &prepared);
        async {
            let received = self.receive(&request, &prepared).await?;
            self.plan_and_start(&request, prepared, received).await
        }
        .instrument(span)
        .await
    }

    /// Checks the request, reserves its planner call and records the task in `planning`, then
    /// plans and starts it in a background task (one a graceful stop waits for,
    /// [`Engine::finish_planning`]) and returns its id at once. Refusals that need no
    /// plan (an invalid request, unknown tools, a budget that cannot pay the planner call) are
    /// `Err` and nothing is recorded; a refusal of the plan leaves the task `rejected` (and is the
    /// outcome of [`Accepted::admitted`]).
    pub async fn accept(self: &Arc<Self>, request: TaskRequest) -> Result<Accepted, EngineError> {
        let prepared = self.prepare(&request).await?;
        let span = task_span(&request, &prepared);
        let received = self
            .receive(&request, &prepared)
            .instrument(span.clone())
            .await?;
        let task_id = prepared.task_id.clone();
        let engine = self.clone();
        let admission = self.planning.spawn(
            async move {
                let outcome = engine.plan_and_start(&request, prepared, received).await;
                match &outcome {
                    Ok(_) => {}
                    Err(EngineError::Budget(refusal)) => {
                        tracing::info!(%refusal, "the task's plan was refused by a budget")
                    }
                    Err(EngineError::Store(planex_store::StoreError::WrongStatus {
                        status: TaskStatus::Cancelled,
                        ..
                    })) => tracing::info!("the task was cancelled while it was planned"),
                    Err(error) => {
                        tracing::warn!(error = %planex_core::cause::ErrorChain(error), "planning or starting the task failed")
                    }
                }
                outcome
            }
            .instrument(span),
        );
        Ok(Accepted { task_id, admission })
    }

    /// Stages before planning: reserve the planner call (unless the plan is cached), or for a
    /// client plan its steps' estimate, and record the task in `planning`.
    async fn receive(&self, request: &TaskRequest, p: &Prepared) -> Result<Received, EngineError> {
        let planner = self.planner()?;
        let charge = self.charge(request);
        let (cache_key, cached, client_specs) = match &p.client_plan {
            Some(plan) => {
                let specs = self.step_specs_with_hints(
                    &p.catalog,
                    plan,
                    p.synthesis,
                    &crate::TierHints::new(),
                );
                if let Some(charge) = &charge {
                    self.reserve_client_plan(p, &specs, charge).await?;
                }
                (None, None, Some(specs))
            }
            None => {
                let (cache_key, cached) = self.cached_plan(request, p, planner.model_name()).await;
                if let Some(charge) = &charge {
                    self.reserve_planning(p, planner.as_ref(), charge, cached.is_some())
                        .await?;
                }
                (cache_key, cached, None)
            }
        };
        if let Err(error) = self.store.create_task(new_task(request, p)).await {
            if let Some(charge) = &charge {
                charge.guard.release_reservation(&p.task_id.0).await;
            }
            return Err(error.into());
        }
        Ok(Received {
            planner,
            cache_key,
            cached,
            client_specs,
        })
    }

    /// Runs the stages after `receive` in order: plan or cache and fit budget (within the planning
    /// deadline), then settle the planner calls and start (or record why the task did not start).
    async fn plan_and_start(
        &self,
        request: &TaskRequest,
        p: Prepared,
        received: Received,
    ) -> Result<TaskId, EngineError> {
        let Received {
            planner,
            cache_key,
            cached,
            client_specs,
        } = received;
        let charge = self.charge(request);
        let planner = match &charge {
            Some(charge) => charge.metered(&planner, &p),
            None => planner,
        };
        let streams = p.client_plan.is_none()
            && cached.is_none()
            && (self.settings.planner.stream || self.settings.planner.max_replans > 0)
            && self.worst_plan_fits(&p, planner.as_ref(), charge.as_ref());
        let admission = match (&p.client_plan, client_specs) {
            // The client's plan: no planner call, no re-plan for budget (checked at receipt).
            (Some(plan), Some(specs)) => Admission::Admitted(Admitted {
                plan: plan.clone(),
                specs,
                calls: Vec::new(),
                from_cache: false,
                replanned: false,
            }),
            // Streamed: the task runs (or ended) unless the plan fell back to whole-plan admission.
            _ if streams => {
                let streamed = self
                    .start_streamed(&p, planner.as_ref(), charge.as_ref(), cache_key.as_ref())
                    .await;
                match streamed {
                    Ok(outcome) => return outcome,
                    Err(admitted) => {
                        let admission = Admission::Admitted(admitted);
                        self.fit_budget(&p, planner.as_ref(), admission, charge.as_ref())
                            .await
                    }
                }
            }
            _ => {
                self.plan_within_deadline(&p, planner.as_ref(), cached, charge.as_ref())
                    .await
            }
        };
        let admitted = match admission {
            Admission::Admitted(admitted) => admitted,
            refused_or_failed => {
                // What planning spent is paid, whatever was decided; settled once the outcome is
                // recorded (else the held reservation lets orphan recovery find the task).
                let cost = cost_of(refused_or_failed.calls());
                let outcome = self
                    .record_unstarted(p.task_id.clone(), refused_or_failed)
                    .await;
                if let (Some(charge), Ok(_) | Err(EngineError::Budget(_))) = (&charge, &outcome) {
                    charge.guard.settle_reservation(&p.task_id.0, cost).await;
                }
                return outcome;
            }
        };
        if let Some(charge) = &charge {
            self.hold_for_steps(&p, &admitted, charge).await?;
        }
        // A client plan has no cache key: the cache is neither read nor written for it. The
        // plan is cached after the start, so the first steps are not kept waiting for it (one
        // round trip on a Redis cache); a start that fails leaves the plan uncached.
        let cacheable = !admitted.from_cache && !admitted.replanned;
        let (task_id, plan) = self
            .start(p.task_id, admitted, p.reused, charge.as_ref())
            .await?;
        if let (Some(cache), Some(key), true) = (&self.plan_cache, &cache_key, cacheable) {
            cache.put(key, &plan).await;
        }
        self.watch_for_drift(&task_id);
        Ok(task_id)
    }

    /// Stages **plan or cache** and **fit budget**, bounded by the planning deadline: past it the
    /// task fails planning (a call still in flight is abandoned; its worst case, drawn from the
    /// task's reservation, stays charged).
    async fn plan_within_deadline(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        cached: Option<Plan>,
        charge: Option<&Charge<'_>>,
    ) -> Admission {
        let deadline = self.settings.planner.deadline;
        let planning = async {
            let admission = self.plan_or_cache(p, planner, cached).await;
            self.fit_budget(p, planner, admission, charge).await
        };
        match tokio::time::timeout(deadline, planning).await {
            Ok(admission) => admission,
            Err(_) => Admission::PlanningFailed(PlanningFailed {
                reason: format!(
                    "planning did not finish within {} s ([engine] planning_deadline_secs); the planner tier is slow or unreachable: check it, then submit the task again",
                    deadline.as_secs_f64()
                ),
                plan_error: None,
                calls: Vec::new(),
            }),
        }
    }

    /// Ends a task that was not started: `failed` after a planning failure, `rejected` after a
    /// budget refusal (which is also returned as `EngineError::Budget`).
    pub(crate) async fn record_unstarted(
        &self,
        task_id: TaskId,
        admission: Admission,
    ) -> Result<TaskId, EngineError> {
        let (status, reason, calls, refusal) = match admission {
            Admission::PlanningFailed(failed) => {
                (TaskStatus::Failed, failed.reason, failed.calls, None)
            }
            Admission::Refused {
                refusal,
                reason,
                calls,
            } => (TaskStatus::Rejected, reason, calls, Some(refusal)),
            Admission::Admitted(_) => return Ok(task_id),
        };
        tracing::warn!(task = %task_id, %reason, "task not started");
        self.store
            .finish_unplanned(&task_id, status, reason, calls)
            .await?;
        match refusal {
            Some(refusal) => Err(EngineError::Budget(refusal)),
            None => Ok(task_id),
        }
    }

    /// Sets the task's hold to what planning spent plus the steps' estimate (giving back the rest
    /// of the planner's worst case); a denial ends the task `rejected`, a ledger failure ends it
    /// `failed`, and either settles what planning spent. It does not wait for room: a task that
    /// waited here would keep money other submissions wait for.
    async fn hold_for_steps(
        &self,
        p: &Prepared,
        admitted: &Admitted,
        charge: &Charge<'_>,
    ) -> Result<(), EngineError> {
        let Charge {
            guard, accounts, ..
        } = charge;
        let spent = cost_of(&admitted.calls);
        // A replay's reused steps cost nothing again (their outputs still feed the synthesis).
        let target = spent
            + guard.estimate_steps_except(&admitted.specs, &self.executor.models, |id| {
                p.reused.contains_key(&id)
            });
        let id = &p.task_id.0;
        let booked = match guard.ledger().hold(id, target).await {
            Ok(Booking::Denied(denial)) => Ok(Some(denial)),
            Ok(Booking::Granted | Booking::Closed) => Ok(None),
            Err(error) => Err(error),
        };
        guard.freed();
        let (status, reason, error) = match booked {
            Ok(None) => return Ok(()),
            Ok(Some(denial)) => {
                let refusal =
                    guard.refusal(&denial, accounts, Some(&p.task_id), admitted.replanned);
                let reason = refusal.to_string();
                (
                    TaskStatus::Rejected,
                    reason,
                    EngineError::Budget(Box::new(refusal)),
                )
            }
            Err(error) => {
                let error = crate::error::ledger_down(error);
                (
                    TaskStatus::Failed,
                    planex_core::cause::chain_text(&error),
                    error,
                )
            }
        };
        // Recorded first: if the store cannot record the outcome, the held reservation is how
        // orphan recovery finds the task still `planning`.
        self.store
            .finish_unplanned(&p.task_id, status, reason, admitted.calls.clone())
            .await?;
        guard.settle_reservation(id, spent).await;
        Err(error)
    }

    /// Stage **start**: hands the steps to the store (which enqueues the ready ones) and, under a
    /// budget, watches the task to **settle** its reservation however it ends. Gives the plan
    /// back (for the plan cache).
    async fn start(
        &self,
        task_id: TaskId,
        admitted: Admitted,
        reused: BTreeMap<StepId, serde_json::Value>,
        charge: Option<&Charge<'_>>,
    ) -> Result<(TaskId, Plan), EngineError> {
        let planning_cost = cost_of(&admitted.calls);
        let started = self
            .store
            .start_task_reusing(
                &task_id,
                &admitted.plan,
                admitted.specs,
                reused,
                admitted.calls,
            )
            .await;
        if let Err(error) = started {
            // The reservation stays held unless the task is surely not running: a start that
            // failed after its write was applied leaves a running task, whose calls need it.
            // A refused start (cancelled meanwhile, or never recorded) settles what planning cost.
            if let (Some(charge), planex_store::StoreError::WrongStatus { .. }) = (charge, &error) {
                charge
                    .guard
                    .settle_reservation(&task_id.0, planning_cost)
                    .await;
            }
            return Err(error.into());
        }
        self.watch_to_settle(&task_id, charge);
        Ok((task_id, admitted.plan))
    }

    /// Under a budget, watches a started task to **settle** its reservation however it ends.
    pub(crate) fn watch_to_settle(&self, task_id: &TaskId, charge: Option<&Charge<'_>>) {
        if let Some(charge) = charge {
            let (guard, store, id) = (charge.guard.clone(), self.store.clone(), task_id.clone());
            // A waiter may settle first: settlement is idempotent.
            tokio::spawn(async move {
                match planex_store::wait_for_task(store.as_ref(), &id, SETTLE_WAIT).await {
                    Ok(Some(record)) => guard.settle(&record).await,
                    Ok(None) => {
                        tracing::warn!(task = %id, "task still running after a day; its spend is settled by the next reader or by orphan recovery")
                    }
                    Err(error) => {
                        tracing::warn!(task = %id, error = %planex_core::cause::ErrorChain(&error), "could not watch the task to settle its spend; orphan recovery settles it")
                    }
                }
            });
        }
    }

    /// Submits a task and waits for its final record (event driven) up to `timeout`.
    pub async fn run(
        &self,
        request: TaskRequest,
        timeout: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let task_id = self.submit(request).await?;
        self.wait(&task_id, timeout).await
    }

    /// Waits for a task's final record (event driven) up to `timeout`, settles its spend and
    /// records its drift sample (both idempotent, so the task's own watchers may come first).
    pub async fn wait(
        &self,
        task_id: &TaskId,
        timeout: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let record = planex_store::wait_for_task(self.store.as_ref(), task_id, timeout)
            .await?
            .ok_or_else(|| EngineError::Timeout(task_id.clone()))?;
        if let Some(guard) = &self.budget {
            guard.settle(&record).await;
        }
        if let Some(drift) = self.drift() {
            drift.observe(&record).await;
        }
        Ok(record)
    }
}

/// The tracing span of one task's admission.
fn task_span(request: &TaskRequest, p: &Prepared) -> tracing::Span {
    tracing::info_span!(
        "invoke_agent",
        otel.name = "invoke_agent planex",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "planex",
        planex.task_id = %p.task_id,
        planex.tenant = request.tenant.as_deref().unwrap_or(""),
    )
}

/// The store record of a new task.
fn new_task(request: &TaskRequest, p: &Prepared) -> NewTask {
    NewTask {
        task_id: p.task_id.clone(),
        task: p.task.clone(),
        tenant: request.tenant.clone(),
        cost_center: request.cost_center.clone(),
        task_type: Some(p.task_type.clone()),
        end_user: request.end_user.clone(),
        retry_of: request.reuse.as_ref().map(|r| r.retry_of.clone()),
        // Called inside the task's span: its context is what the task's steps join.
        trace_parent: planex_llm::trace_context::current_traceparent(),
    }
}
