//! Wires both architectures for `planex compare` and `planex curve`: plan-and-execute (engine, memory
//! store, in-process workers) and the ReAct baseline (same tools and tiers), each against its **own**
//! simulators over real HTTP, with the same per-call latency.
//!
//! Key decisions: every simulated tier is started twice, once per architecture, so each simulator's
//! own token counters (`/sim/stats`) are an independent check of that architecture's totals, and one
//! architecture's load can never slow the other. Simulated tiers get a fixed latency (the compare
//! flags, replacing the config's `simulated` speeds) and no concurrency limit on either side, so a
//! call's latency is the same wherever it is made and makespan differences come from the shape of
//! the work alone. Tiers with real endpoints are used as configured by both architectures.

use crate::CompareError;
use crate::react::{ReactRunner, ReactSettings, ReactStatus};
use planex_app::Config as Settings;
use planex_core::{CallRecord, Catalog, Usage};
use planex_engine::{Engine, Models, TaskRequest};
use planex_llm::{CallContext, ChatMessage, ChatRequest, Endpoint, TierSet};
use planex_sim::{SimConfig, SimServer, Workload};
use planex_store::{MemoryStore, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Calls in flight allowed per simulated tier and per worker: high enough that nothing queues.
const UNLIMITED: usize = 1024;

/// Loads the config (`None`: the embedded, simulated default) and compiles its tool catalog.
pub fn load_config(path: Option<&Path>) -> Result<(Settings, Arc<Catalog>), CompareError> {
    let config_error = |source| CompareError::Config {
        path: path.map(Path::to_owned),
        source,
    };
    let settings = Settings::load(path).map_err(config_error)?;
    let catalog = settings.catalog().map_err(config_error)?;
    Ok((settings, Arc::new(catalog)))
}

/// How the simulators behave and the loops are bounded.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// Time to first token of every simulated call, in milliseconds.
    pub latency_ms: u64,
    /// Generation speed of simulated calls (0 = the whole answer at once).
    pub tokens_per_second: f64,
    /// Most ReAct actions per task.
    pub react_max_actions: usize,
    /// Give up on one task after this long.
    pub task_timeout: Duration,
}

/// What one architecture did for one task.
#[derive(Debug, Clone)]
pub struct ArchOutcome {
    /// `complete`, `partial`, `failed`… for plan-and-execute; `answered`, `step_limit`, `failed` for ReAct.
    pub status: String,
    /// Whether the task produced its answer.
    pub ok: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// Every priced call.
    pub calls: Vec<CallRecord>,
    /// Wall time from submission to the final answer.
    pub makespan: Duration,
}

/// Server-side token counts of one architecture's simulators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCounts {
    /// Chat requests the simulators answered with content.
    pub requests: u64,
    /// Summed usage they reported.
    pub usage: Usage,
}

struct Side {
    sims: Vec<SimServer>,
    engine: Arc<Engine>,
}

/// Both architectures, ready to run tasks.
pub struct Harness {
    plan_execute: Side,
    /// Plan-and-execute with streamed plans (steps start while the planner writes).
    streamed: Side,
    react: Side,
    runner: ReactRunner,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
    shutdown: CancellationToken,
    timeout: Duration,
    /// Whether any tier is simulated (output is then synthetic).
    pub simulated: bool,
    /// The planner tier's name.
    pub planner_tier: String,
}

/// One architecture's simulators and engine; `what` names it in errors.
async fn side(
    settings: &Settings,
    catalog: &Arc<Catalog>,
    workload: &Workload,
    options: &HarnessOptions,
    what: &'static str,
    stream_plans: bool,
) -> Result<Side, CompareError> {
    let client = planex_llm::default_client().map_err(CompareError::HttpClient)?;
    let mut tiers = settings.tiers.clone();
    let mut sims = Vec::new();
    for tier in &mut tiers {
        if settings.simulated.contains_key(&tier.name) {
            let server = SimServer::start(SimConfig {
                port: 0,
                model: tier.model.clone(),
                ttft_ms: options.latency_ms,
                tokens_per_second: options.tokens_per_second,
                max_concurrency: UNLIMITED,
                workload: workload.clone(),
                ..SimConfig::default()
            })
            .await
            .map_err(|source| CompareError::SimulatorStart {
                tier: tier.name.clone(),
                source,
            })?;
            tier.endpoints = vec![Endpoint::new(server.base_url())];
            tier.max_concurrency = UNLIMITED;
            sims.push(server);
        }
    }
    let tiers = TierSet::from_configs(tiers, &client).map_err(CompareError::Tiers)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut engine_settings = settings.engine.clone();
    engine_settings.planner.stream = stream_plans;
    let engine = Engine::new(
        store,
        catalog.clone(),
        Models::from_tier_set(&tiers),
        engine_settings,
    )
    .map_err(|source| CompareError::Engine { what, source })?;
    Ok(Side {
        sims,
        engine: Arc::new(engine),
    })
}

impl Side {
    /// One tiny call per tier, then zeroed simulator counters: the tokenizer, the connection pools
    /// and the servers are warm before anything is measured, for both architectures alike.
    async fn warm_up(&self) -> Result<(), CompareError> {
        let models = &self.engine.executor().models;
        for name in models.names() {
            let model = models.get(&name).map_err(|source| CompareError::Engine {
                what: "the warm-up calls",
                source,
            })?;
            let request = ChatRequest::new(vec![ChatMessage::user("warm-up call, not measured")])
                .with_max_tokens(4);
            model
                .chat(&request, &CallContext::default())
                .await
                .map_err(|source| CompareError::WarmUp {
                    tier: name.clone(),
                    source: Box::new(source),
                })?;
        }
        for sim in &self.sims {
            sim.state().reset();
        }
        Ok(())
    }
}

impl Harness {
    /// Starts the simulators, tier clients, engine and workers of both architectures.
    pub async fn start(
        settings: &Settings,
        catalog: &Arc<Catalog>,
        workload: &Workload,
        options: &HarnessOptions,
    ) -> Result<Harness, CompareError> {
        let plan_execute = side(
            settings,
            catalog,
            workload,
            options,
            "the plan-and-execute engine",
            false,
        )
        .await?;
        let streamed = side(
            settings,
            catalog,
            workload,
            options,
            "the streamed plan-and-execute engine",
            true,
        )
        .await?;
        let react = side(
            settings,
            catalog,
            workload,
            options,
            "the ReAct baseline's engine",
            false,
        )
        .await?;
        plan_execute.warm_up().await?;
        streamed.warm_up().await?;
        react.warm_up().await?;
        let runner = ReactRunner::for_engine(
            &react.engine,
            ReactSettings {
                max_actions: options.react_max_actions,
                ..ReactSettings::default()
            },
        )?;
        let shutdown = CancellationToken::new();
        let concurrency = if settings.simulated.is_empty() {
            settings.worker_concurrency
        } else {
            UNLIMITED
        };
        let mut workers = plan_execute
            .engine
            .spawn_workers(concurrency, "compare", shutdown.clone())
            .await;
        workers.extend(
            streamed
                .engine
                .spawn_workers(concurrency, "compare-streamed", shutdown.clone())
                .await,
        );
        Ok(Harness {
            plan_execute,
            streamed,
            react,
            runner,
            workers,
            shutdown,
            timeout: options.task_timeout,
            simulated: !settings.simulated.is_empty(),
            planner_tier: settings.engine.planner_tier.clone(),
        })
    }

    /// Runs `task` with plan-and-execute, the whole plan first (`streamed`: each step as soon as
    /// the planner has written it); `steps` (the pinned plan's size) raises `max_subtasks`.
    pub async fn run_plan_execute(
        &self,
        task: &str,
        steps: Option<usize>,
        streamed: bool,
    ) -> ArchOutcome {
        let engine = match streamed {
            true => &self.streamed.engine,
            false => &self.plan_execute.engine,
        };
        let default = engine.settings().max_subtasks;
        let request = TaskRequest {
            task: task.to_owned(),
            max_subtasks: steps.map(|n| n.max(default)),
            ..TaskRequest::default()
        };
        let started = Instant::now();
        match engine.run(request, self.timeout).await {
            Ok(record) => {
                let makespan = started.elapsed();
                let ok = record.status == planex_store::TaskStatus::Complete;
                ArchOutcome {
                    status: record.status.to_string(),
                    ok,
                    error: record.error.clone(),
                    calls: record.calls,
                    makespan,
                }
            }
            Err(error) => ArchOutcome {
                status: "error".into(),
                ok: false,
                error: Some(planex_core::cause::chain_text(&error)),
                calls: Vec::new(),
                makespan: started.elapsed(),
            },
        }
    }

    /// Runs `task` as a ReAct loop.
    pub async fn run_react(&self, task: &str) -> ArchOutcome {
        let run = match tokio::time::timeout(
            self.timeout,
            self.runner.run(task, &CallContext::default()),
        )
        .await
        {
            Ok(run) => run,
            Err(_) => {
                return ArchOutcome {
                    status: "timeout".into(),
                    ok: false,
                    error: Some(format!(
                        "the ReAct loop did not finish within {} s",
                        self.timeout.as_secs()
                    )),
                    calls: Vec::new(),
                    makespan: self.timeout,
                };
            }
        };
        ArchOutcome {
            status: run.status.to_string(),
            ok: run.status == ReactStatus::Answered,
            error: run.error,
            calls: run.calls,
            makespan: run.elapsed,
        }
    }

    /// What the plan-and-execute and ReAct simulators counted (zero for real endpoints).
    pub fn server_counts(&self) -> (ServerCounts, ServerCounts) {
        let count = |side: &Side| {
            side.sims
                .iter()
                .fold(ServerCounts::default(), |mut acc, sim| {
                    let stats = sim.stats();
                    acc.requests += stats.planner_requests + stats.executor_requests;
                    acc.usage.prompt_tokens += stats.prompt_tokens_total;
                    acc.usage.completion_tokens += stats.completion_tokens_total;
                    acc
                })
        };
        (count(&self.plan_execute), count(&self.react))
    }

    /// Stops the workers and simulators.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        let sims = self.plan_execute.sims.into_iter().chain(self.streamed.sims);
        for sim in sims.chain(self.react.sims) {
            sim.shutdown().await;
        }
    }
}
