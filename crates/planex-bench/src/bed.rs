//! The test bed of `overhead`, `http` and `makespan`: an engine whose two tiers are wrapped in
//! probes, its in-process workers, and the timings of one task derived from the probes' spans.
//!
//! A step's overhead is the time from the moment the last of its dependencies' model calls returned
//! (the planner call, for steps without dependencies) to the moment its own model call starts: that
//! is exactly the engine time the step adds to the critical path. Tasks run one at a time.
//!
//! Key decision: the engine is wired by hand (`Engine::new`, no budget guard, no plan cache), not
//! through `planex_app::App`: the app's plan cache would answer the repeated benchmark task without
//! a planner call, and its budget guard would add admission work to the figures this bed has always
//! measured (docs/BENCHMARKS.md).

use crate::probe::{Probe, Span};
use crate::workload::{
    STEPS, catalog, dag_plan, gpu_price, null_executor_reply, null_model, sim_tier,
};
use anyhow::{Context, Result, bail};
use planex_core::{StepId, dag};
use planex_engine::{Engine, EngineSettings, Models, TaskRequest};
use planex_llm::ChatModel;
use planex_sim::{SimConfig, SimServer};
use planex_store::{MemoryStore, Store, TaskRecord, TaskStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long one benchmark task may take.
const TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// An engine with probes on both tiers, its in-process workers, and the simulators it uses.
pub(crate) struct Bed {
    engine: Arc<Engine>,
    planner: Arc<Probe>,
    executor: Arc<Probe>,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
    sims: Vec<SimServer>,
}

impl Bed {
    /// Wraps `planner` and `executor` in probes and starts the engine (whole-plan planning) and
    /// 32 worker slots.
    pub(crate) async fn start(
        planner: Arc<dyn ChatModel>,
        executor: Arc<dyn ChatModel>,
        sims: Vec<SimServer>,
    ) -> Result<Bed> {
        Self::start_with(planner, executor, sims, false).await
    }

    /// As [`Bed::start`], streaming plans when `stream_plans`.
    pub(crate) async fn start_with(
        planner: Arc<dyn ChatModel>,
        executor: Arc<dyn ChatModel>,
        sims: Vec<SimServer>,
        stream_plans: bool,
    ) -> Result<Bed> {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Self::start_on(store, planner, executor, sims, stream_plans).await
    }

    /// As [`Bed::start_with`], on `store`.
    pub(crate) async fn start_on(
        store: Arc<dyn Store>,
        planner: Arc<dyn ChatModel>,
        executor: Arc<dyn ChatModel>,
        sims: Vec<SimServer>,
        stream_plans: bool,
    ) -> Result<Bed> {
        let (planner, executor) = (Probe::new(planner), Probe::new(executor));
        let mut models = Models::new();
        models.insert(planner.clone());
        models.insert(executor.clone());
        // The benchmark plans have STEPS (10) steps, more than the default `max_subtasks` (8).
        let mut settings = EngineSettings {
            synthesis: false,
            max_subtasks: STEPS,
            ..EngineSettings::default()
        };
        settings.planner.stream = stream_plans;
        let engine = Arc::new(Engine::new(store, catalog()?, models, settings)?);
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(32, "bench", shutdown.clone()).await;
        Ok(Bed {
            engine,
            planner,
            executor,
            shutdown,
            workers,
            sims,
        })
    }

    /// Runs one task and times it from the probes' spans.
    pub(crate) async fn timed_task(&self, task: &str) -> Result<TaskTiming> {
        self.planner.take();
        self.executor.take();
        let request = TaskRequest {
            task: task.into(),
            synthesis: Some(false),
            ..TaskRequest::default()
        };
        let started = Instant::now();
        let record = self.engine.run(request, TASK_TIMEOUT).await?;
        let ended = Instant::now();
        if record.status != TaskStatus::Complete {
            bail!(
                "benchmark task ended {}: {}",
                record.status,
                record.error.as_deref().unwrap_or("no reason")
            );
        }
        TaskTiming::new(
            &record,
            started,
            ended,
            self.planner.take(),
            self.executor.take(),
        )
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Drops the model-call spans the probes recorded (a load that runs tasks without timing
    /// them would otherwise keep every span).
    pub(crate) fn discard_spans(&self) {
        self.planner.take();
        self.executor.take();
    }

    /// Stops the workers and the simulators.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        for sim in self.sims {
            sim.shutdown().await;
        }
    }
}

/// Timings of one task, derived from the model-call spans.
pub(crate) struct TaskTiming {
    /// `engine.run` called → final record returned.
    pub(crate) makespan: Duration,
    /// The planner call (first call start → last call end; one call unless re-planned).
    pub(crate) planning: Duration,
    /// Per step: last dependency's call returned (planner's, for roots) → own call started.
    pub(crate) overhead: BTreeMap<StepId, Duration>,
    /// Per step: its model call.
    pub(crate) call: BTreeMap<StepId, Duration>,
    /// Steps without dependencies.
    pub(crate) roots: Vec<StepId>,
    /// Last model call returned → final record returned.
    pub(crate) finish: Duration,
    /// Longest path through the DAG of measured call durations plus planning (an ideal engine).
    pub(crate) ideal: Duration,
    /// Model-call attempts beyond one per call (retries).
    pub(crate) retries: u32,
    /// The planner call's start → the first step's model call start.
    pub(crate) first_dispatch: Duration,
}

impl TaskTiming {
    fn new(
        record: &TaskRecord,
        started: Instant,
        ended: Instant,
        planner: Vec<Span>,
        executor: Vec<Span>,
    ) -> Result<TaskTiming> {
        let (Some(first), Some(last)) = (planner.first(), planner.last()) else {
            bail!("the planner was not called");
        };
        let planned = last.end;
        let mut spans: BTreeMap<StepId, &Span> = BTreeMap::new();
        for span in &executor {
            let id = span
                .request_id
                .as_deref()
                .and_then(|r| r.rsplit_once('-'))
                .and_then(|(_, step)| step.parse::<u32>().ok())
                .context("a step call without a `<task>-<step>` request id")?;
            if spans.insert(StepId(id), span).is_some() {
                bail!(
                    "step {id} called its model twice (escalation or redelivery); timings would be ambiguous"
                );
            }
        }
        let mut timing = TaskTiming {
            makespan: ended - started,
            planning: last.end - first.start,
            overhead: BTreeMap::new(),
            call: BTreeMap::new(),
            roots: Vec::new(),
            finish: Duration::ZERO,
            ideal: Duration::ZERO,
            first_dispatch: executor
                .iter()
                .map(|s| s.start)
                .min()
                .map_or(Duration::ZERO, |at| {
                    at.saturating_duration_since(first.start)
                }),
            retries: planner
                .iter()
                .chain(&executor)
                .map(|s| s.attempts.saturating_sub(1))
                .sum(),
        };
        let mut last_end = planned;
        for (id, step) in &record.steps {
            let span = spans
                .get(id)
                .with_context(|| format!("step {id} made no model call"))?;
            let mut ready = planned;
            for dep in &step.spec.step.depends_on {
                let dep_span = spans
                    .get(dep)
                    .with_context(|| format!("step {dep} made no model call"))?;
                ready = ready.max(dep_span.end);
            }
            if step.spec.step.depends_on.is_empty() {
                timing.roots.push(*id);
            }
            let call = span.end - span.start;
            timing
                .overhead
                .insert(*id, span.start.saturating_duration_since(ready));
            timing.call.insert(*id, call);
            last_end = last_end.max(span.end);
        }
        timing.finish = ended.saturating_duration_since(last_end);
        // An ideal engine (zero overhead) finishes when the planning and the heaviest chain of
        // measured calls have.
        let (_, longest) = dag::critical_path(record.steps.values().map(|s| &s.spec.step), |s| {
            timing
                .call
                .get(&s.step_id)
                .map_or(0.0, Duration::as_secs_f64)
        });
        timing.ideal = timing.planning + Duration::try_from_secs_f64(longest).unwrap_or_default();
        Ok(timing)
    }
}

/// Both tiers are in-process null models.
pub(crate) async fn null_bed() -> Result<Bed> {
    null_bed_on(Arc::new(MemoryStore::new())).await
}

/// [`null_bed`] on `store`.
pub(crate) async fn null_bed_on(store: Arc<dyn Store>) -> Result<Bed> {
    let planner = null_model("planner", dag_plan(), 600, 400, gpu_price(454, 2500));
    let executor = null_model(
        "executor",
        null_executor_reply(),
        150,
        120,
        gpu_price(96, 6000),
    );
    Bed::start_on(store, planner, executor, Vec::new(), false).await
}

/// The planner is a null model; the executor a tier client of a zero-latency simulator.
pub(crate) async fn http_bed(stream: bool) -> Result<Bed> {
    let sim = SimServer::start(SimConfig {
        port: 0,
        model: "sim-executor".into(),
        ttft_ms: 0,
        tokens_per_second: 0.0,
        ..SimConfig::default()
    })
    .await?;
    let executor = sim_tier(
        "executor",
        &sim,
        "sim-executor",
        gpu_price(96, 6000),
        stream,
    )?;
    let planner = null_model("planner", dag_plan(), 600, 400, gpu_price(454, 2500));
    Bed::start(planner, executor, vec![sim]).await
}
