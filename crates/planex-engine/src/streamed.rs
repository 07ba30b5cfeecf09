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
//! - Under a budget a streamed plan is admitted only when a plan of the maximum size fits it
//!   (`admission.rs` `worst_plan_fits`); each step then grows the task's hold by its estimate
//!   before it is added. A denial (an account is full) stops adding: the task ends `partial`
//!   with the reason once the steps already added finish.

use crate::admission::{Charge, Prepared};
use crate::planner::{parse_plan, plan_call_record, planner_chat, planner_request, push_rejection};
use crate::routing::split_tier_hints;
use crate::{Engine, EngineError, PlanningFailed, TierHints};
use planex_core::{
    CallRecord, Plan, PlanBuilder, PlanError, PlanLimits, Stage, Step, StepStream, StreamedStep,
    TaskId,
};
use planex_llm::{CallContext, ChatModel, DeltaSink};
use planex_store::{Booking, StepSpec, StoreError, TaskStatus};
use serde_json::Value;

/// Why a streamed round stopped adding steps before its plan ended.
enum Halt {
    /// The plan broke a rule: no step of it is used.
    Invalid(PlanError),
    /// The task's hold could not grow for the next step (an account is full).
    Budget(String),
    /// The task was cancelled meanwhile.
    Cancelled,
    /// The store failed.
    Store(StoreError),
}

/// The state of one task's streamed planning, across its rounds (the plan, then one re-plan,
/// then the joiner's rounds).
pub(crate) struct Streaming<'a> {
    engine: &'a Engine,
    /// The task.
    pub(crate) p: &'a Prepared,
    charge: Option<&'a Charge<'a>>,
    /// The worst case of the planner calls, held besides the steps' estimates.
    planning_hold: planex_core::Decimal,
    opened: bool,
    /// Where this round's step ids start in the task (the steps of earlier rounds come first).
    offset: u32,
    /// This round's accepted steps, as the planner numbered them, and their tier hints.
    builder: PlanBuilder<'a>,
    hints: TierHints,
    /// How many of this round's steps are in the task.
    added: usize,
    /// Every step spec in the task (renumbered), for the hold.
    specs: Vec<StepSpec>,
    halt: Option<Halt>,
    /// Validate steps as they stream but add them only once the plan is whole (`stream_plans =
    /// false` with a joiner: the plan still runs in an open task).
    defer: bool,
    /// The planning deadline: the plan closes by then, joiner rounds included, so orphan
    /// recovery (which closes plans left open past it plus a lease) never meets a live one.
    pub(crate) deadline: tokio::time::Instant,
}

impl<'a> Streaming<'a> {
    fn limits(&self) -> PlanLimits {
        PlanLimits {
            max_steps: self.p.max_steps,
        }
    }

    /// Starts a round: a fresh builder, step ids after every step the task holds.
    fn new_round(&mut self) {
        self.offset = self
            .specs
            .iter()
            .map(|s| s.step.step_id.0)
            .max()
            .unwrap_or(0);
        self.builder = PlanBuilder::new(self.p.task.clone(), &self.p.catalog, self.limits());
        self.hints = TierHints::new();
        self.added = 0;
        self.halt = None;
    }

    /// Handles one step object of the stream: validates it and, unless the round halted, adds
    /// it. After a budget halt steps are still validated (the plan may run once the planner's
    /// call has settled), not added.
    async fn on_step(&mut self, mut value: Value) {
        if !matches!(self.halt, None | Some(Halt::Budget(_))) {
            return;
        }
        let mut hints = TierHints::new();
        if !self.engine.settings.planner.tier_hints.is_empty() {
            let mut wrapper = serde_json::json!({ "steps": [value] });
            hints = split_tier_hints(&mut wrapper);
            value = wrapper["steps"][0].take();
        }
        let step = match self.builder.push(value) {
            Ok(step) => step.clone(),
            Err(error) => {
                self.halt = Some(Halt::Invalid(error));
                return;
            }
        };
        self.hints.extend(hints);
        if self.halt.is_some() || self.defer {
            return;
        }
        if let Err(halt) = self.add(&step).await {
            self.halt = Some(halt);
        }
    }

    /// Adds the accepted steps not added yet (after a budget halt, once the planner's calls
    /// settled and the hold no longer carries their worst case).
    async fn add_remaining(&mut self) -> Result<(), Halt> {
        let remaining: Vec<Step> = self.builder.steps()[self.added..].to_vec();
        for step in &remaining {
            self.add(step).await?;
        }
        Ok(())
    }

    /// Routes `step` (over the steps before it), grows the hold, and adds it to the task.
    async fn add(&mut self, step: &Step) -> Result<(), Halt> {
        let partial = Plan {
            task: String::new(),
            steps: self.builder.steps().to_vec(),
            source: planex_core::PlanSource::Planner,
        };
        let routed =
            self.engine
                .step_specs_with_hints(&self.p.catalog, &partial, false, &self.hints);
        let Some(mut spec) = routed.into_iter().find(|s| s.step.step_id == step.step_id) else {
            return Ok(());
        };
        spec.step = spec.step.renumbered(self.offset);
        self.hold(std::slice::from_ref(&spec)).await?;
        if !self.opened {
            self.engine
                .store
                .open_plan(&self.p.task_id)
                .await
                .map_err(stopped)?;
            self.opened = true;
        }
        self.engine
            .store
            .add_steps(&self.p.task_id, vec![spec.clone()])
            .await
            .map_err(stopped)?;
        self.specs.push(spec);
        self.added += 1;
        Ok(())
    }

    /// Grows the task's hold to the planner calls' worst case plus the estimate of every step
    /// in the task and `more`.
    async fn hold(&self, more: &[StepSpec]) -> Result<(), Halt> {
        let Some(charge) = self.charge else {
            return Ok(());
        };
        let all: Vec<StepSpec> = self.specs.iter().chain(more).cloned().collect();
        let target = self.planning_hold
            + charge
                .guard
                .estimate_steps(&all, &self.engine.executor.models);
        let booked = charge.guard.ledger().hold(&self.p.task_id.0, target).await;
        charge.guard.freed();
        match booked {
            Ok(Booking::Granted | Booking::Closed) => Ok(()),
            Ok(Booking::Denied(denial)) => {
                let refusal =
                    charge
                        .guard
                        .refusal(&denial, &charge.accounts, Some(&self.p.task_id), false);
                Err(Halt::Budget(refusal.to_string()))
            }
            Err(error) => Err(Halt::Budget(planex_core::cause::chain_text(
                &crate::error::ledger_down(error),
            ))),
        }
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &Engine {
        self.engine
    }

    /// The id after every step in the task.
    pub(crate) fn next_step_id(&self) -> u32 {
        self.specs
            .iter()
            .map(|s| s.step.step_id.0)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// Every step in the task.
    pub(crate) fn step_ids(&self) -> Vec<planex_core::StepId> {
        self.specs.iter().map(|s| s.step.step_id).collect()
    }

    /// Starts a joiner round: `builder` holds the steps its new ones may depend on, under their
    /// ids in the task, then the new ones.
    pub(crate) fn start_join_round(&mut self, builder: PlanBuilder<'a>) {
        self.offset = 0;
        self.added = builder.len();
        self.builder = builder;
        self.hints = TierHints::new();
        self.halt = None;
    }

    /// Adds a joiner's step (accepted by the round's builder) to the task.
    pub(crate) async fn add_joined(&mut self, step: &Step) -> Result<(), String> {
        self.add(step).await.map_err(|halt| match halt {
            Halt::Invalid(error) => error.to_string(),
            Halt::Budget(reason) => reason,
            Halt::Cancelled => "the task was cancelled".to_owned(),
            Halt::Store(error) => error.to_string(),
        })
    }

    /// Step ids of this round in the task (renumbered).
    fn round_ids(&self) -> Vec<planex_core::StepId> {
        self.specs
            .iter()
            .map(|s| s.step.step_id)
            .filter(|id| id.0 > self.offset)
            .collect()
    }
}

/// A store refusal as the halt it means.
fn stopped(error: StoreError) -> Halt {
    match error {
        StoreError::WrongStatus {
            status: TaskStatus::Cancelled,
            ..
        } => Halt::Cancelled,
        other => Halt::Store(other),
    }
}

/// How a streamed planning ended, for `plan_and_start`.
pub(crate) enum StreamEnd {
    /// The plan closed (its steps run, or ran); the task's id.
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
            StreamEnd::Stopped(Err(error)) => return Ok(Err(error)),
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
            deadline: tokio::time::Instant::now() + settings.deadline,
        };
        let deadline = s.deadline;
        let mut calls: Vec<CallRecord> = Vec::new();
        let mut last_error = None;
        for round in 0..2u32 {
            s.new_round();
            let request = planner_chat(&messages, &response_format, settings);
            let streamed =
                tokio::time::timeout_at(deadline, stream_round(&mut s, planner, &request));
            let outcome = match streamed.await {
                Err(_) => {
                    let reason = format!(
                        "planning did not finish within {} s ([engine] planning_deadline_secs); the planner tier is slow or unreachable: check it, then submit the task again",
                        settings.deadline.as_secs_f64()
                    );
                    return self.end_without_plan(&mut s, calls, reason, None).await;
                }
                Ok(Err(failure)) => {
                    let reason = format!(
                        "the planner call failed: {}",
                        planex_core::cause::ErrorChain(&failure)
                    );
                    return self.end_without_plan(&mut s, calls, reason, None).await;
                }
                Ok(Ok(outcome)) => outcome,
            };
            calls.push(plan_call_record(planner, &outcome, Stage::Plan));
            let verdict = match s.halt.take() {
                Some(Halt::Invalid(error)) => Err(error),
                Some(Halt::Cancelled) => {
                    return self.close(&mut s, None, calls, None).await;
                }
                Some(Halt::Store(error)) => return StreamEnd::Stopped(Err(error.into())),
                deferred => {
                    s.halt = deferred;
                    self.check_whole(&mut s, &outcome.content).await
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
                    if s.defer && s.add_remaining().await.is_err() {
                        let reason = "the plan's steps could not all be added".to_owned();
                        return self.close(&mut s, Some(plan), calls, Some(reason)).await;
                    }
                    let mut plan = plan;
                    let mut calls = calls;
                    if settings.max_replans > 0
                        && let Err(error) = self.join(&mut s, planner, &mut plan, &mut calls).await
                    {
                        let closed = self.close(&mut s, Some(plan), calls, None).await;
                        return match closed {
                            StreamEnd::Stopped(Ok(())) => StreamEnd::Stopped(Err(error)),
                            other => other,
                        };
                    }
                    if let Some(end) = self.add_synthesis(&mut s, &plan).await {
                        return end;
                    }
                    return match self.close(&mut s, Some(plan.clone()), calls, None).await {
                        StreamEnd::Stopped(Ok(())) => StreamEnd::Started {
                            first_round: round == 0,
                            plan,
                        },
                        other => other,
                    };
                }
                Err(error) => {
                    tracing::warn!(round, %error, "the streamed plan is invalid");
                    let reason = format!("the streamed plan was discarded: {error}");
                    if let Err(error) = self.discard_round(&mut s, round + 1, &reason).await {
                        return StreamEnd::Stopped(Err(error.into()));
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
    async fn check_whole(&self, s: &mut Streaming<'_>, content: &str) -> Result<Plan, PlanError> {
        let settings = &self.settings.planner;
        let (parsed, hints) = parse_plan(content, &s.p.catalog, s.limits(), settings);
        let whole = parsed?;
        let streamed = s.builder.steps().to_vec();
        if whole.steps.len() < streamed.len() || whole.steps[..streamed.len()] != streamed[..] {
            tracing::warn!(
                "the finished plan differs from the steps that streamed: it replaces them"
            );
            let ids = s.round_ids();
            if !ids.is_empty() {
                let reason = "the finished plan differs from the steps that streamed";
                if let Err(error) = self.engine_supersede(s, 1, &ids, reason).await {
                    return Err(shape(format!("the store failed: {error}")));
                }
            }
            s.new_round();
        }
        s.hints.extend(hints);
        for step in whole.steps.iter().skip(s.builder.len()) {
            let value = serde_json::to_value(step).map_err(|e| shape(e.to_string()))?;
            s.on_step(value).await;
            match s.halt.take() {
                Some(Halt::Invalid(error)) => return Err(error),
                Some(Halt::Cancelled | Halt::Store(_)) => {
                    return Err(shape("the task stopped while its plan was added".into()));
                }
                budget => s.halt = budget,
            }
        }
        Ok(round_plan(s))
    }

    async fn engine_supersede(
        &self,
        s: &Streaming<'_>,
        round: u32,
        ids: &[planex_core::StepId],
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store
            .supersede_steps(&s.p.task_id, round, ids, reason)
            .await
            .map(|_| ())
            .or_else(|e| match e {
                StoreError::WrongStatus { .. } => Ok(()),
                other => Err(other),
            })
    }

    /// Supersedes this round's steps in the task (none added: nothing to do).
    async fn discard_round(
        &self,
        s: &mut Streaming<'_>,
        round: u32,
        reason: &str,
    ) -> Result<(), StoreError> {
        let ids = s.round_ids();
        if ids.is_empty() || !s.opened {
            return Ok(());
        }
        self.engine_supersede(s, round, &ids, reason).await
    }

    /// Adds the synthesis step of `plan` (when the task has one); `Some` when that stopped the
    /// task.
    async fn add_synthesis(&self, s: &mut Streaming<'_>, plan: &Plan) -> Option<StreamEnd> {
        if !s.p.synthesis {
            return None;
        }
        let specs = self.task_specs(s.p, plan, &TierHints::new());
        let synthesis: Vec<StepSpec> = specs
            .into_iter()
            .filter(|spec| spec.stage == Stage::Synthesis)
            .collect();
        if let Err(halt) = s.hold(&synthesis).await {
            let Halt::Budget(reason) = halt else {
                return None;
            };
            tracing::warn!(%reason, "the synthesis step does not fit the budget");
        }
        match self.store.add_steps(&s.p.task_id, synthesis.clone()).await {
            Ok(()) => {
                s.specs.extend(synthesis);
                None
            }
            Err(error) => match stopped(error) {
                Halt::Cancelled => None,
                Halt::Store(error) => Some(StreamEnd::Stopped(Err(error.into()))),
                _ => None,
            },
        }
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
        if let Err(error) = self.discard_round(s, 2, &reason).await {
            return StreamEnd::Stopped(Err(error.into()));
        }
        let all: Vec<_> = s.specs.iter().map(|spec| spec.step.step_id).collect();
        if let Err(error) = self.engine_supersede(s, 2, &all, &reason).await {
            return StreamEnd::Stopped(Err(error.into()));
        }
        self.close(s, None, calls, Some(reason)).await
    }
}

/// This round's plan as the task runs it (renumbered past earlier rounds' steps).
fn round_plan(s: &Streaming<'_>) -> Plan {
    Plan {
        task: s.p.task.clone(),
        steps: s
            .builder
            .steps()
            .iter()
            .map(|step| step.renumbered(s.offset))
            .collect(),
        source: planex_core::PlanSource::Planner,
    }
}

fn shape(detail: String) -> PlanError {
    PlanError::Shape {
        detail,
        step_index: None,
    }
}

/// Makes one streamed planner call, feeding each step object to `s` as it closes.
async fn stream_round(
    s: &mut Streaming<'_>,
    planner: &dyn ChatModel,
    request: &planex_llm::ChatRequest,
) -> Result<planex_llm::ChatOutcome, planex_llm::ChatFailure> {
    let (sink, mut deltas) = DeltaSink::channel();
    let ctx = CallContext {
        request_id: s.p.ctx.request_id.clone(),
        deltas: Some(sink),
    };
    let call = planner.chat(request, &ctx);
    tokio::pin!(call);
    let mut reader = Reader {
        stream: StepStream::new(),
        attempt: 1,
    };
    let outcome = loop {
        tokio::select! {
            outcome = &mut call => break outcome,
            Some(delta) = deltas.recv() => reader.feed(s, delta).await,
        }
    };
    while let Ok(delta) = deltas.try_recv() {
        reader.feed(s, delta).await;
    }
    outcome
}

/// The step extractor of one streamed call, restarted when the call is retried.
struct Reader {
    stream: StepStream,
    attempt: u32,
}

impl Reader {
    /// Feeds one piece of the answer. A retried call starts its text over: its steps must
    /// repeat the ones already added (else the plan is invalid), and only new ones are added.
    async fn feed(&mut self, s: &mut Streaming<'_>, delta: planex_llm::ContentDelta) {
        if delta.attempt != self.attempt {
            self.attempt = delta.attempt;
            self.stream = StepStream::new();
        }
        for piece in self.stream.push(&delta.text) {
            match piece {
                StreamedStep::Step { index, value } if index < s.builder.len() => {
                    let same = serde_json::to_value(&s.builder.steps()[index]).ok() == Some(value);
                    if !same && s.halt.is_none() {
                        s.halt = Some(Halt::Invalid(PlanError::Shape {
                            detail: "the planner call was retried and wrote a different plan than the steps already running".into(),
                            step_index: Some(index),
                        }));
                    }
                }
                StreamedStep::Step { value, .. } => s.on_step(value).await,
                StreamedStep::Malformed { index, detail } => {
                    if s.halt.is_none() {
                        s.halt = Some(Halt::Invalid(PlanError::Shape {
                            detail,
                            step_index: Some(index),
                        }));
                    }
                }
            }
        }
    }
}
