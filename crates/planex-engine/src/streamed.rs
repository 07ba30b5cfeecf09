//! Streamed planning (docs/ARCHITECTURE.md §4): the planner's answer is read as it arrives, each
//! step is validated on its own the moment its JSON object closes and, once accepted, joins the
//! running task, which runs it as soon as its dependencies allow, while the planner still writes.
//!
//! Key decisions:
//! - The task is opened (`Store::open_plan`) at its first accepted step, so a planner call that
//!   fails before any step leaves a task that never ran, exactly as whole-plan planning does.
//! - A step may depend only on earlier steps (`PlanBuilder`), so the plan is a DAG by construction
//!   and no step is ever withdrawn because a later one arrived.
//! - When the plan turns out invalid (a step breaks a rule, or the finished answer does not parse
//!   as the plan that streamed), every step of it is superseded: waiting ones are skipped, running
//!   ones finish and are billed, no result of it is used. The one re-plan then streams like the
//!   first, its step ids moved past the discarded ones (`Step::renumbered`).
//! - Under a budget a plan streams only when a plan of the maximum size fits it with the planner
//!   call's worst case ([`Engine::worst_plan_fits`]); each step then grows the task's hold by its
//!   estimate before it is added. A denial (an account is full) stops adding, not validating:
//!   once the planner call has settled the rest are added if they fit, else the task ends
//!   `partial` with the reason; denied before any step ran, the plan goes through whole-plan
//!   admission instead.
//! - A store failure after the task opened closes its plan when the store lets it (else orphan
//!   recovery does), and the task is watched to settle its spend either way.

use crate::admission::{Charge, Prepared};
use crate::planner::{parse_plan, plan_call_record, planner_chat, planner_request, push_rejection};
use crate::stream_state::{Halt, Streaming, round_plan, shape, stopped, stream_round};
use crate::{Engine, EngineError, PlanningFailed, TierHints};
use planex_core::{CallRecord, Plan, PlanBuilder, PlanError, PlanLimits, Stage, Step, TaskId};
use planex_llm::ChatModel;
use planex_store::{Booking, StepSpec, StoreError};

/// How a streamed planning ended, for `plan_and_start`.
pub(crate) enum StreamEnd {
    /// The plan closed (its steps run, or ran).
    Started {
        /// Whether its plan came from the first round (it may be cached).
        first_round: bool,
        /// The plan.
        plan: Plan,
    },
    /// No step was ever added: the task never ran. The planner calls are in the failure.
    NotStarted(PlanningFailed),
    /// The first step did not fit while the planner call held its worst case: no step ran, and
    /// the valid plan goes through whole-plan admission (fit budget, hold, start) instead.
    Whole {
        /// The plan.
        plan: Plan,
        /// Its tier hints.
        hints: TierHints,
        /// The planner calls made.
        calls: Vec<CallRecord>,
    },
    /// The task is finished or will finish; planning stopped early (cancelled, budget, deadline).
    Stopped(Result<(), EngineError>),
}

impl Engine {
    /// Whether a task may stream its plan under its budget: when a plan of the most steps it may
    /// have, each of its most expensive tool, fits with the planner call's worst case (a streamed
    /// step cannot be re-planned for budget the way a whole plan is, `admission.rs` **fit
    /// budget**; and the planner's draw stays open while the first steps are held).
    pub(crate) fn worst_plan_fits(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        charge: Option<&Charge<'_>>,
    ) -> bool {
        let Some((charge, budget)) = charge.and_then(|c| c.budget.map(|b| (c, b))) else {
            return true;
        };
        let prompt = crate::system_prompt(&p.catalog, p.max_steps).len() + p.task.len();
        // The planner call's worst case: its draw is open while the first steps are held.
        let planning = charge.guard.planning_estimate(
            planner.tier_name(),
            prompt,
            self.settings.planner.max_tokens,
            planner.price(),
        );
        let worst = p
            .catalog
            .specs()
            .map(|tool| {
                let steps = (1..=p.max_steps as u32)
                    .map(|id| Step {
                        step_id: planex_core::StepId(id),
                        tool_name: tool.name.clone(),
                        args: serde_json::Map::new(),
                        depends_on: Vec::new(),
                    })
                    .collect();
                let plan = Plan {
                    task: String::new(),
                    steps,
                    source: planex_core::PlanSource::Planner,
                };
                let specs = self.task_specs(p, &plan, &TierHints::new());
                charge.guard.estimate_steps(&specs, &self.executor.models)
            })
            .max()
            .unwrap_or_default();
        planning + worst <= budget
    }

    /// Streams the plan of a received task (`submit.rs` `plan_and_start`) and records how it
    /// ended: a task that never ran is failed as whole-plan planning would; one that ran is
    /// watched to settle its spend, its plan cached when the first round wrote it. `Err(admitted)`
    /// hands a valid plan that could not stream for budget back to whole-plan admission.
    pub(crate) async fn start_streamed(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        charge: Option<&Charge<'_>>,
        cache_key: Option<&String>,
    ) -> Result<Result<TaskId, EngineError>, crate::admission::Admitted> {
        let task_id = p.task_id.clone();
        match self.plan_streamed(p, planner, charge).await {
            StreamEnd::Started { first_round, plan } => {
                if let (Some(cache), Some(key), true) = (&self.plan_cache, cache_key, first_round) {
                    cache.put(key, &plan).await;
                }
            }
            StreamEnd::Stopped(Ok(())) => {}
            StreamEnd::Stopped(Err(error)) => {
                // The task may be running (or be closed by orphan recovery): its spend is still
                // settled when it ends.
                self.watch_to_settle(&task_id, charge);
                return Ok(Err(error));
            }
            StreamEnd::NotStarted(failed) => {
                let cost = crate::admission::cost_of(&failed.calls);
                let outcome = self
                    .record_unstarted(
                        task_id.clone(),
                        crate::admission::Admission::PlanningFailed(failed),
                    )
                    .await;
                if let (Some(charge), Ok(_)) = (charge, &outcome) {
                    charge.guard.settle_reservation(&task_id.0, cost).await;
                }
                return Ok(outcome);
            }
            StreamEnd::Whole { plan, hints, calls } => {
                let specs = self.task_specs(p, &plan, &hints);
                return Err(crate::admission::Admitted {
                    plan,
                    specs,
                    calls,
                    from_cache: false,
                    replanned: false,
                });
            }
        }
        self.watch_to_settle(&task_id, charge);
        self.watch_for_drift(&task_id);
        Ok(Ok(task_id))
    }

    /// Stage **plan (streamed)**: streams the planner's answer and adds each valid step to the
    /// running task at once; on an invalid plan, supersedes its steps and re-plans once. Closes
    /// the task's plan however it ends after the task was opened.
    pub(crate) async fn plan_streamed(
        &self,
        p: &Prepared,
        planner: &dyn ChatModel,
        charge: Option<&Charge<'_>>,
    ) -> StreamEnd {
        let settings = &self.settings.planner;
        let limits = PlanLimits {
            max_steps: p.max_steps,
        };
        let (mut messages, response_format) =
            planner_request(&p.catalog, &p.task, limits, settings);
        let prompt = crate::system_prompt(&p.catalog, p.max_steps).len() + p.task.len();
        let planning_hold = match charge {
            Some(charge) => charge.guard.planning_estimate(
                planner.tier_name(),
                prompt,
                settings.max_tokens,
                planner.price(),
            ),
            None => planex_core::Decimal::ZERO,
        };
        let mut s = Streaming {
            engine: self,
            p,
            charge,
            planning_hold,
            opened: false,
            offset: 0,
            builder: PlanBuilder::new(p.task.clone(), &p.catalog, limits),
            hints: TierHints::new(),
            added: 0,
            specs: Vec::new(),
            halt: None,
            defer: !settings.stream,
            replan_rounds: 0,
            deadline: tokio::time::Instant::now() + settings.deadline,
        };
        let deadline = s.deadline;
        let mut calls: Vec<CallRecord> = Vec::new();
        let mut last_error = None;
        for round in 0..2u32 {
            s.new_round();
            let request = planner_chat(&messages, &response_format, settings);
            let outcome = match stream_round(&mut s, planner, &request, deadline).await {
                None => {
                    let reason = format!(
                        "planning did not finish within {} s ([engine] planning_deadline_secs); the planner tier is slow or unreachable: check it, then submit the task again",
                        settings.deadline.as_secs_f64()
                    );
                    return self.end_without_plan(&mut s, calls, reason, None).await;
                }
                Some(Err(failure)) => {
                    let reason = format!(
                        "the planner call failed: {}",
                        planex_core::cause::ErrorChain(&failure)
                    );
                    return self.end_without_plan(&mut s, calls, reason, None).await;
                }
                Some(Ok(outcome)) => outcome,
            };
            calls.push(plan_call_record(planner, &outcome, Stage::Plan));
            let verdict = match s.halt.take() {
                Some(Halt::Invalid(error)) => Err(Halt::Invalid(error)),
                Some(Halt::Cancelled) => Err(Halt::Cancelled),
                Some(Halt::Store(error)) => Err(Halt::Store(error)),
                deferred => {
                    s.halt = deferred;
                    self.check_whole(&mut s, &outcome.content).await
                }
            };
            let verdict = match verdict {
                Ok(plan) => Ok(plan),
                Err(Halt::Invalid(error)) => Err(error),
                Err(Halt::Store(error)) => return self.store_failed(&mut s, calls, error).await,
                Err(Halt::Cancelled | Halt::Budget(_)) => {
                    return self.close(&mut s, None, calls, None).await;
                }
            };
            match verdict {
                Ok(plan) => {
                    if let Some(Halt::Budget(reason)) = s.halt.take() {
                        if !s.opened {
                            let hints = std::mem::take(&mut s.hints);
                            return StreamEnd::Whole { plan, hints, calls };
                        }
                        // The planner's calls have settled: the hold needs only what they cost.
                        s.planning_hold = crate::admission::cost_of(&calls);
                        if s.add_remaining().await.is_err() {
                            let reason = format!(
                                "the plan's steps after the first {} were not run: {reason}",
                                s.added
                            );
                            let plan = round_plan(&s);
                            return self.close(&mut s, Some(plan), calls, Some(reason)).await;
                        }
                    }
                    if s.defer {
                        // The whole plan is in: its steps go into the task now, held against
                        // what the planner calls cost rather than their worst case.
                        s.planning_hold = crate::admission::cost_of(&calls);
                        if let Err(halt) = s.add_remaining().await {
                            if !s.opened {
                                let hints = std::mem::take(&mut s.hints);
                                return StreamEnd::Whole { plan, hints, calls };
                            }
                            let reason = format!(
                                "the plan's steps after the first {} were not run: {}",
                                s.added,
                                halt.describe()
                            );
                            return self.close(&mut s, Some(plan), calls, Some(reason)).await;
                        }
                    }
                    let mut plan = plan;
                    let mut calls = calls;
                    let mut joined = false;
                    if settings.max_replans > 0 {
                        match self.join(&mut s, planner, &mut plan, &mut calls).await {
                            Ok(replanned) => joined = replanned,
                            Err(error) => {
                                let closed = self.close(&mut s, Some(plan), calls, None).await;
                                return match closed {
                                    StreamEnd::Stopped(Ok(())) => StreamEnd::Stopped(Err(error)),
                                    other => other,
                                };
                            }
                        }
                    }
                    if let Err(error) = self.add_synthesis(&mut s, &plan).await {
                        return self.store_failed(&mut s, calls, error).await;
                    }
                    return match self.close(&mut s, Some(plan.clone()), calls, None).await {
                        // A plan the joiner changed is not the planner's answer: not cached.
                        StreamEnd::Stopped(Ok(())) => StreamEnd::Started {
                            first_round: round == 0 && !joined,
                            plan,
                        },
                        other => other,
                    };
                }
                Err(error) => {
                    tracing::warn!(round, %error, "the streamed plan is invalid");
                    let reason = format!("the streamed plan was discarded: {error}");
                    if let Err(error) = self.discard_round(&mut s, &reason).await {
                        return self.store_failed(&mut s, calls, error).await;
                    }
                    push_rejection(&mut messages, outcome.content, &error);
                    last_error = Some(error);
                }
            }
        }
        let reason = match &last_error {
            Some(error) => {
                format!("the planner returned an invalid plan twice; last error: {error}")
            }
            None => "the planner returned no plan".to_owned(),
        };
        self.end_without_plan(&mut s, calls, reason, last_error)
            .await
    }

    /// The finished answer's own verdict: it must parse as a valid plan whose steps begin with
    /// the ones that streamed; steps the stream did not yield are added now. A valid plan that
    /// differs from what streamed replaces it (the streamed steps are superseded).
    async fn check_whole(&self, s: &mut Streaming<'_>, content: &str) -> Result<Plan, Halt> {
        let settings = &self.settings.planner;
        let (parsed, hints) = parse_plan(content, &s.p.catalog, s.limits(), settings);
        let whole = parsed.map_err(Halt::Invalid)?;
        let streamed = s.builder.steps().to_vec();
        if whole.steps.len() < streamed.len() || whole.steps[..streamed.len()] != streamed[..] {
            tracing::warn!(
                "the finished plan differs from the steps that streamed: it replaces them"
            );
            let ids = s.round_ids();
            if !ids.is_empty() {
                let reason = "the finished plan differs from the steps that streamed";
                self.engine_supersede(s, &ids, reason)
                    .await
                    .map_err(Halt::Store)?;
            }
            s.new_round();
        }
        s.hints.extend(hints);
        for step in whole.steps.iter().skip(s.builder.len()) {
            let value =
                serde_json::to_value(step).map_err(|e| Halt::Invalid(shape(e.to_string())))?;
            s.on_step(value).await;
            match s.halt.take() {
                Some(budget @ Halt::Budget(_)) => s.halt = Some(budget),
                Some(stop) => return Err(stop),
                None => {}
            }
        }
        Ok(round_plan(s))
    }

    /// Supersedes `ids` as the task's next re-plan round (numbered across discarded plans and
    /// joiner rounds alike, as `replanned` events show them).
    async fn engine_supersede(
        &self,
        s: &mut Streaming<'_>,
        ids: &[planex_core::StepId],
        reason: &str,
    ) -> Result<(), StoreError> {
        let round = s.next_replan_round();
        self.store
            .supersede_steps(&s.p.task_id, round, ids, reason)
            .await
            .or_else(|e| match e {
                StoreError::WrongStatus { .. } => Ok(()),
                other => Err(other),
            })
    }

    /// Supersedes this round's steps in the task (none added: nothing to do).
    async fn discard_round(&self, s: &mut Streaming<'_>, reason: &str) -> Result<(), StoreError> {
        let ids = s.round_ids();
        if ids.is_empty() || !s.opened {
            return Ok(());
        }
        self.engine_supersede(s, &ids, reason).await
    }

    /// Adds the synthesis step of `plan` (when the task has one). A cancelled task takes none
    /// (nothing more runs); a store failure is the error.
    async fn add_synthesis(&self, s: &mut Streaming<'_>, plan: &Plan) -> Result<(), StoreError> {
        if !s.p.synthesis {
            return Ok(());
        }
        let specs = self.task_specs(s.p, plan, &TierHints::new());
        let synthesis: Vec<StepSpec> = specs
            .into_iter()
            .filter(|spec| spec.stage == Stage::Synthesis)
            .collect();
        if let Err(halt) = s.hold(&synthesis).await {
            tracing::warn!(reason = %halt.describe(), "the synthesis step does not fit the budget; each of its calls is still held when made");
        }
        match self.store.add_steps(&s.p.task_id, synthesis.clone()).await {
            Ok(()) => {
                s.specs.extend(synthesis);
                Ok(())
            }
            Err(error) => match stopped(error) {
                Halt::Store(error) => Err(error),
                _ => Ok(()),
            },
        }
    }

    /// The store failed while the plan streamed: a task already opened is closed if the store
    /// lets it (its steps run, the reason is recorded; else orphan recovery closes it later).
    async fn store_failed(
        &self,
        s: &mut Streaming<'_>,
        calls: Vec<CallRecord>,
        error: StoreError,
    ) -> StreamEnd {
        if s.opened {
            let reason = format!(
                "planning stopped when the store failed ({}); the steps planned by then ran",
                planex_core::cause::chain_text(&error)
            );
            if let Err(close) = self
                .store
                .close_plan(&s.p.task_id, None, calls, Some(reason))
                .await
            {
                tracing::warn!(error = %planex_core::cause::ErrorChain(&close), "could not close the plan after a store failure; orphan recovery closes it");
            }
        }
        StreamEnd::Stopped(Err(error.into()))
    }

    /// Closes the task's plan (recording `calls`) and sets its hold to what it needs.
    async fn close(
        &self,
        s: &mut Streaming<'_>,
        plan: Option<Plan>,
        calls: Vec<CallRecord>,
        cut_short: Option<String>,
    ) -> StreamEnd {
        if let Some(charge) = s.charge {
            let spent = crate::admission::cost_of(&calls);
            let target = spent + charge.guard.estimate_steps(&s.specs, &self.executor.models);
            if let Ok(Booking::Denied(denial)) =
                charge.guard.ledger().hold(&s.p.task_id.0, target).await
            {
                tracing::info!(over_by = %denial.over_by_usd, "the task's hold stays above its estimate: an account is full");
            }
            charge.guard.freed();
        }
        let closed = self
            .store
            .close_plan(&s.p.task_id, plan.as_ref(), calls, cut_short)
            .await;
        StreamEnd::Stopped(closed.map_err(EngineError::from))
    }

    /// Ends planning without a plan to run: a task never opened did not start (the caller
    /// records it as failed planning); an opened one has its steps superseded and ends `failed`
    /// with `reason`.
    async fn end_without_plan(
        &self,
        s: &mut Streaming<'_>,
        calls: Vec<CallRecord>,
        reason: String,
        plan_error: Option<PlanError>,
    ) -> StreamEnd {
        if !s.opened {
            return StreamEnd::NotStarted(PlanningFailed {
                reason,
                plan_error,
                calls,
            });
        }
        let all: Vec<_> = s.specs.iter().map(|spec| spec.step.step_id).collect();
        if let Err(error) = self.engine_supersede(s, &all, &reason).await {
            return self.store_failed(s, calls, error).await;
        }
        self.close(s, None, calls, Some(reason)).await
    }
}
