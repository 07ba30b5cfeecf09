//! The state of one task's streamed planning (`streamed.rs`): the steps accepted so far, how
//! each step object of the planner's stream is validated, routed, held for and added to the
//! running task, and why a round stops adding (`Halt`). The planner call itself is read by
//! [`stream_round`], which feeds every step object to the state as its closing brace arrives.

use crate::admission::{Charge, Prepared};
use crate::routing::split_tier_hints;
use crate::{Engine, TierHints};
use planex_core::{Plan, PlanBuilder, PlanError, PlanLimits, Step, StepStream, StreamedStep};
use planex_llm::{CallContext, ChatModel, DeltaSink};
use planex_store::{Booking, StepSpec, StoreError, TaskStatus};
use serde_json::Value;

/// Why a streamed round stopped adding steps before its plan ended.
pub(crate) enum Halt {
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
    pub(crate) engine: &'a Engine,
    /// The task.
    pub(crate) p: &'a Prepared,
    pub(crate) charge: Option<&'a Charge<'a>>,
    /// The worst case of the planner calls, held besides the steps' estimates.
    pub(crate) planning_hold: planex_core::Decimal,
    pub(crate) opened: bool,
    /// Where this round's step ids start in the task (the steps of earlier rounds come first).
    pub(crate) offset: u32,
    /// This round's accepted steps, as the planner numbered them, and their tier hints.
    pub(crate) builder: PlanBuilder<'a>,
    pub(crate) hints: TierHints,
    /// How many of this round's steps are in the task.
    pub(crate) added: usize,
    /// Every step spec in the task (renumbered), for the hold.
    pub(crate) specs: Vec<StepSpec>,
    pub(crate) halt: Option<Halt>,
    /// Validate steps as they stream but add them only once the plan is whole (`stream_plans =
    /// false` with a joiner: the plan still runs in an open task).
    pub(crate) defer: bool,
    /// Re-plan rounds so far (discarded plans and joiner rounds), for `replanned` events.
    pub(crate) replan_rounds: u32,
    /// The planning deadline: the plan closes by then, joiner rounds included, so orphan
    /// recovery (which closes plans left open past it plus a lease) never meets a live one.
    pub(crate) deadline: tokio::time::Instant,
}

impl<'a> Streaming<'a> {
    pub(crate) fn limits(&self) -> PlanLimits {
        PlanLimits {
            max_steps: self.p.max_steps,
        }
    }

    /// Starts a round: a fresh builder, step ids after every step the task holds.
    pub(crate) fn new_round(&mut self) {
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
    pub(crate) async fn on_step(&mut self, mut value: Value) {
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
    pub(crate) async fn add_remaining(&mut self) -> Result<(), Halt> {
        let remaining: Vec<Step> = self.builder.steps()[self.added..].to_vec();
        for step in &remaining {
            self.add(step).await?;
        }
        Ok(())
    }

    /// Routes `step` (over the steps before it), grows the hold, and adds it to the task.
    pub(crate) async fn add(&mut self, step: &Step) -> Result<(), Halt> {
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
    pub(crate) async fn hold(&self, more: &[StepSpec]) -> Result<(), Halt> {
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

    /// The number of the task's next re-plan round (1 = the first).
    pub(crate) fn next_replan_round(&mut self) -> u32 {
        self.replan_rounds += 1;
        self.replan_rounds
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

    /// Starts a joiner round: `builder` holds the `kept` steps its new ones may depend on, under
    /// their ids in the task, then the new ones (added next, one by one).
    pub(crate) fn start_join_round(&mut self, builder: PlanBuilder<'a>, kept: usize) {
        self.offset = 0;
        self.added = kept;
        self.builder = builder;
        self.hints = TierHints::new();
        self.halt = None;
    }

    /// Adds a joiner's step (accepted by the round's builder) to the task.
    pub(crate) async fn add_joined(&mut self, step: &Step) -> Result<(), String> {
        self.add(step).await.map_err(|halt| halt.describe())
    }

    /// Step ids of this round in the task (renumbered).
    pub(crate) fn round_ids(&self) -> Vec<planex_core::StepId> {
        self.specs
            .iter()
            .map(|s| s.step.step_id)
            .filter(|id| id.0 > self.offset)
            .collect()
    }
}

impl Halt {
    /// What stopped the round, for people.
    pub(crate) fn describe(&self) -> String {
        match self {
            Halt::Invalid(error) => error.to_string(),
            Halt::Budget(reason) => reason.clone(),
            Halt::Cancelled => "the task was cancelled".to_owned(),
            Halt::Store(error) => planex_core::cause::chain_text(error),
        }
    }
}

/// A store refusal as the halt it means.
pub(crate) fn stopped(error: StoreError) -> Halt {
    match error {
        StoreError::WrongStatus {
            status: TaskStatus::Cancelled,
            ..
        } => Halt::Cancelled,
        other => Halt::Store(other),
    }
}

/// This round's plan as the task runs it (renumbered past earlier rounds' steps).
pub(crate) fn round_plan(s: &Streaming<'_>) -> Plan {
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

pub(crate) fn shape(detail: String) -> PlanError {
    PlanError::Shape {
        detail,
        step_index: None,
    }
}

/// Makes one streamed planner call, feeding each step object to `s` as it closes; `None` when
/// `deadline` passed first. The deadline is checked between pieces only, never while a step is
/// being added, so no store write is cut off half-way.
pub(crate) async fn stream_round(
    s: &mut Streaming<'_>,
    planner: &dyn ChatModel,
    request: &planex_llm::ChatRequest,
    deadline: tokio::time::Instant,
) -> Option<Result<planex_llm::ChatOutcome, planex_llm::ChatFailure>> {
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
            _ = tokio::time::sleep_until(deadline) => return None,
        }
    };
    while let Ok(delta) = deltas.try_recv() {
        reader.feed(s, delta).await;
    }
    Some(outcome)
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
                StreamedStep::Step { index, mut value } if index < s.builder.len() => {
                    // Compared as the builder holds it: without the planner's tier hint.
                    if let Some(step) = value.as_object_mut() {
                        step.remove("tier");
                    }
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
