//! `planex bench`: the engine's latency targets, measured in this process (docs/BENCHMARKS.md).
//!
//! - `overhead`: engine time per step with an in-process null model (answers at once), so every
//!   microsecond measured is the engine's: planner-answer parsing and validation, the memory store,
//!   worker wake-up and claim, templating, prompt rendering, accounting.
//! - `http`: the same with the executor tier a real tier client calling a zero-latency simulator on
//!   127.0.0.1; null-model tasks are interleaved in the same run, so the ratio compares like with like.
//! - `makespan`: a 10-step, three-level plan with 200 ms per step against its critical path plus
//!   planning time, and against a 10-step chain (the sequential equivalent).
//!
//! Key decision: steps are timed with `Instant` at the model seam (a probe `ChatModel` wraps each
//! tier), because store events carry millisecond timestamps, too coarse for microsecond overheads.
//! A step's overhead is the time from the moment the last of its dependencies' model calls returned
//! (the planner call, for steps without dependencies) to the moment its own model call starts: that
//! is exactly the engine time the step adds to the critical path. Tasks run one at a time.

use anyhow::{Context, Result, bail};
use planex_core::{Catalog, Decimal, Price, StepId, ToolSpec, Usage, dag};
use planex_engine::{Engine, EngineSettings, Models, TaskRequest};
use planex_llm::{
    CallContext, ChatFailure, ChatModel, ChatOutcome, ChatRequest, Endpoint, InstantModel, Tier,
    TierConfig,
};
use planex_sim::{SimConfig, SimServer, Workload};
use planex_store::{MemoryStore, Store, TaskRecord, TaskStatus};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Arguments of `planex bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Engine overhead per step, model call excluded (in-process null model; target p99 < 50 µs).
    Overhead(StepArgs),
    /// Per step including a loopback HTTP call to a zero-latency simulator (target p99 < 0.5 ms).
    Http(HttpArgs),
    /// Makespan of a 10-step, 3-level plan at 200 ms per step (target ≤ 1.02 × (critical path + planning)).
    Makespan(MakespanArgs),
    /// Steps per second and per-edge latency through the Redis store (bench_redis/).
    Redis(crate::bench_redis::RedisBenchArgs),
}

#[derive(clap::Args)]
struct StepArgs {
    /// Tasks to time (each a 10-step plan in three levels), run one at a time.
    #[arg(long, default_value_t = 3000)]
    tasks: usize,
    /// Untimed tasks run first.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct HttpArgs {
    #[command(flatten)]
    steps: StepArgs,
    /// Ask for whole (non-streamed) answers instead of the tiers' default SSE streaming.
    #[arg(long)]
    no_stream: bool,
}

#[derive(clap::Args)]
struct MakespanArgs {
    /// Timed runs of the 3-level plan.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Timed runs of the 10-step chain (the sequential equivalent); 0 skips them.
    #[arg(long, default_value_t = 3)]
    sequential_runs: usize,
    /// Time to first token of the executor simulator = time per step, in ms.
    #[arg(long, default_value_t = 200)]
    step_ms: u64,
    /// Time to first token of the planner simulator, in ms.
    #[arg(long, default_value_t = 0)]
    planner_ttft_ms: u64,
    /// Ask for whole (non-streamed) answers instead of the tiers' default SSE streaming.
    #[arg(long)]
    no_stream: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

const MAX_TASKS: usize = 1_000_000;
const MAX_RUNS: usize = 10_000;
const TASK_TIMEOUT: Duration = Duration::from_secs(60);
const LEVELS: u32 = 3;
const STEPS: usize = 10;

/// Runs one benchmark and prints its report.
pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.which {
        Which::Overhead(args) => overhead(args).await,
        Which::Http(args) => http(args).await,
        Which::Makespan(args) => makespan(args).await,
        Which::Redis(args) => crate::bench_redis::run(args).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Models: `InstantModel` (planex_llm) answers at once; a probe timestamps every call of the model
// it wraps.

type ChatFuture<'t> = Pin<Box<dyn Future<Output = Result<ChatOutcome, ChatFailure>> + Send + 't>>;

// `ChatModel` is an `async_trait`; the probe's impl spells out the boxed future it expands to.

/// One timed model call.
struct Span {
    request_id: Option<String>,
    start: Instant,
    end: Instant,
    attempts: u32,
}

/// Wraps a tier and records when each call started and returned.
struct Probe {
    inner: Arc<dyn ChatModel>,
    spans: Mutex<Vec<Span>>,
}

impl Probe {
    fn new(inner: Arc<dyn ChatModel>) -> Arc<Probe> {
        Arc::new(Probe {
            inner,
            spans: Mutex::new(Vec::with_capacity(64)),
        })
    }

    fn take(&self) -> Vec<Span> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ChatModel for Probe {
    fn chat<'a, 'b, 'c, 't>(
        &'a self,
        request: &'b ChatRequest,
        ctx: &'c CallContext,
    ) -> ChatFuture<'t>
    where
        'a: 't,
        'b: 't,
        'c: 't,
        Self: 't,
    {
        Box::pin(async move {
            let start = Instant::now();
            let outcome = self.inner.chat(request, ctx).await;
            let end = Instant::now();
            let attempts = match &outcome {
                Ok(o) => o.attempts,
                Err(f) => f.attempts,
            };
            let span = Span {
                request_id: ctx.request_id.clone(),
                start,
                end,
                attempts,
            };
            self.spans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(span);
            outcome
        })
    }
    fn tier_name(&self) -> &str {
        self.inner.tier_name()
    }
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }
    fn price(&self) -> &Price {
        self.inner.price()
    }
    fn escalate_to(&self) -> Option<&str> {
        self.inner.escalate_to()
    }
}

// ---------------------------------------------------------------------------------------------
// The workload: two llm tools on the executor tier, a fixed 3-level plan and a 10-step chain.

fn gpu_price(cents_per_hour: i64, tokens_per_second: i64) -> Price {
    Price::GpuHour {
        usd_per_hour: Decimal::new(cents_per_hour, 2),
        tokens_per_second: Decimal::from(tokens_per_second),
    }
}

fn catalog() -> Result<Arc<Catalog>> {
    Ok(Arc::new(Catalog::new(vec![
        ToolSpec::one_arg_llm("lookup", "topic", "executor", 128),
        ToolSpec::one_arg_llm("summarize", "text", "executor", 128),
    ])?))
}

fn summarize_step(id: u32, deps: &[u32]) -> serde_json::Value {
    let text: Vec<String> = deps
        .iter()
        .map(|d| format!("{{step_{d}_result}}"))
        .collect();
    serde_json::json!({
        "step_id": id, "tool_name": "summarize",
        "args": {"text": format!("Combine:\n{}", text.join("\n---\n"))},
        "depends_on": deps,
    })
}

/// 10 steps in three dependency levels: 1–4 independent, 5–8 each need two of them, 9–10 two of those.
fn dag_plan() -> String {
    let mut steps: Vec<serde_json::Value> = (1..=4)
        .map(|id| serde_json::json!({"step_id": id, "tool_name": "lookup", "args": {"topic": format!("topic {id}")}, "depends_on": []}))
        .collect();
    for (id, a, b) in [
        (5, 1, 2),
        (6, 2, 3),
        (7, 3, 4),
        (8, 4, 1),
        (9, 5, 6),
        (10, 7, 8),
    ] {
        steps.push(summarize_step(id, &[a, b]));
    }
    serde_json::json!({ "steps": steps }).to_string()
}

/// 10 steps, each depending on the previous one: what a sequential loop would run.
fn chain_plan() -> String {
    let mut steps = vec![
        serde_json::json!({"step_id": 1, "tool_name": "lookup", "args": {"topic": "topic 1"}, "depends_on": []}),
    ];
    steps.extend((2..=10).map(|id| summarize_step(id, &[id - 1])));
    serde_json::json!({ "steps": steps }).to_string()
}

fn null_model(
    tier: &str,
    reply: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    price: Price,
) -> Arc<dyn ChatModel> {
    Arc::new(InstantModel::new(tier, price).with_reply(
        &reply,
        Usage {
            prompt_tokens,
            completion_tokens,
            cached_tokens: 0,
        },
    ))
}

fn null_executor_reply() -> String {
    "[simulated] A fixed executor answer of about one hundred and twenty tokens. ".repeat(8)
}

fn sim_tier(
    name: &str,
    sim: &SimServer,
    model: &str,
    price: Price,
    stream: bool,
) -> Result<Arc<dyn ChatModel>> {
    let mut config = TierConfig::new(name, model, vec![Endpoint::new(sim.base_url())], price);
    config.stream = stream;
    Ok(Arc::new(Tier::new(config, planex_llm::default_client()?)?))
}

/// An engine with probes on both tiers, its in-process workers, and the simulators it uses.
struct Bed {
    engine: Arc<Engine>,
    planner: Arc<Probe>,
    executor: Arc<Probe>,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
    sims: Vec<SimServer>,
}

impl Bed {
    fn start(
        planner: Arc<dyn ChatModel>,
        executor: Arc<dyn ChatModel>,
        sims: Vec<SimServer>,
    ) -> Result<Bed> {
        let (planner, executor) = (Probe::new(planner), Probe::new(executor));
        let mut models = Models::new();
        models.insert(planner.clone());
        models.insert(executor.clone());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let settings = EngineSettings {
            synthesis: false,
            ..EngineSettings::default()
        };
        let engine = Arc::new(Engine::new(store, catalog()?, models, settings)?);
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(32, "bench", shutdown.clone());
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
    async fn timed_task(&self, task: &str) -> Result<TaskTiming> {
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

    async fn stop(self) {
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
struct TaskTiming {
    /// `engine.run` called → final record returned.
    makespan: Duration,
    /// The planner call (first call start → last call end; one call unless re-planned).
    planning: Duration,
    /// Per step: last dependency's call returned (planner's, for roots) → own call started.
    overhead: BTreeMap<StepId, Duration>,
    /// Per step: its model call.
    call: BTreeMap<StepId, Duration>,
    /// Steps without dependencies.
    roots: Vec<StepId>,
    /// Last model call returned → final record returned.
    finish: Duration,
    /// Longest path through the DAG of measured call durations plus planning (an ideal engine).
    ideal: Duration,
    /// Model-call attempts beyond one per call (retries).
    retries: u32,
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

// ---------------------------------------------------------------------------------------------
// Statistics.

/// Nearest-rank percentiles of a sample, in microseconds.
#[derive(Clone, Copy)]
struct Summary {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |p: f64| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            sorted[index]
        };
        let mean = if n == 0 {
            f64::NAN
        } else {
            sorted.iter().sum::<f64>() / n as f64
        };
        Summary {
            n,
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
            mean,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"n": self.n, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max, "mean": self.mean})
    }
}

/// CPU time of this process, all threads (Linux `/proc/self/stat`, in USER_HZ = 100 ticks).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields after the command name start at field 3 (`state`); utime and stime are fields 14, 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Samples gathered over many tasks of one variant.
#[derive(Default)]
struct StepSamples {
    overhead: Vec<f64>,
    root_overhead: Vec<f64>,
    first_root_overhead: Vec<f64>,
    dependent_overhead: Vec<f64>,
    call: Vec<f64>,
    total: Vec<f64>,
    finish: Vec<f64>,
    per_step_wall: Vec<f64>,
    retries: u32,
}

impl StepSamples {
    fn add(&mut self, t: &TaskTiming) {
        for (id, overhead) in &t.overhead {
            let call = t.call.get(id).copied().unwrap_or_default();
            self.overhead.push(us(*overhead));
            if t.roots.contains(id) {
                self.root_overhead.push(us(*overhead));
            } else {
                self.dependent_overhead.push(us(*overhead));
            }
            self.call.push(us(call));
            self.total.push(us(*overhead + call));
        }
        let first_root = t.roots.iter().filter_map(|id| t.overhead.get(id)).min();
        if let Some(first) = first_root {
            self.first_root_overhead.push(us(*first));
        }
        self.finish.push(us(t.finish));
        self.per_step_wall
            .push(us(t.makespan) / t.overhead.len().max(1) as f64);
        self.retries += t.retries;
    }
}

fn row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        s.p50, s.p90, s.p99, s.max, s.mean
    )
}

fn ratio_row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<44} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4}",
        s.p50, s.p90, s.p99, s.max, s.mean
    )
}

fn header(unit: &str) -> String {
    format!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9}",
        format!("({unit})"),
        "p50",
        "p90",
        "p99",
        "max",
        "mean"
    )
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn check_count(name: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        bail!("--{name} must be between 1 and {max}, got {value}");
    }
    Ok(())
}

fn null_bed() -> Result<Bed> {
    let planner = null_model("planner", dag_plan(), 600, 400, gpu_price(454, 2500));
    let executor = null_model(
        "executor",
        null_executor_reply(),
        150,
        120,
        gpu_price(96, 6000),
    );
    Bed::start(planner, executor, Vec::new())
}

async fn http_bed(stream: bool) -> Result<Bed> {
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
    Bed::start(planner, executor, vec![sim])
}

// ---------------------------------------------------------------------------------------------
// planex bench overhead

async fn overhead(args: StepArgs) -> Result<ExitCode> {
    check_count("tasks", args.tasks, MAX_TASKS)?;
    let bed = null_bed()?;
    for _ in 0..args.warmup.min(MAX_TASKS) {
        bed.timed_task("benchmark task").await?;
    }
    let mut samples = StepSamples::default();
    let (started, cpu_before) = (Instant::now(), process_cpu());
    for _ in 0..args.tasks {
        samples.add(&bed.timed_task("benchmark task").await?);
    }
    let (elapsed, cpu_after) = (started.elapsed(), process_cpu());
    bed.stop().await;
    // Mean CPU per step over the timed loop: insensitive to descheduling by other processes.
    let cpu_per_step = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => {
            Some(us(after.saturating_sub(before)) / (args.tasks * STEPS) as f64)
        }
        _ => None,
    };

    let overhead = Summary::of(&samples.overhead);
    let pass = overhead.p99 < 50.0;
    if args.json {
        let report = serde_json::json!({
            "benchmark": "overhead", "tasks": args.tasks, "steps_per_task": STEPS, "unit": "us",
            "step_overhead": overhead.json(),
            "root_step_overhead": Summary::of(&samples.root_overhead).json(),
            "first_root_step_overhead": Summary::of(&samples.first_root_overhead).json(),
            "dependent_step_overhead": Summary::of(&samples.dependent_overhead).json(),
            "null_model_call": Summary::of(&samples.call).json(),
            "task_finish": Summary::of(&samples.finish).json(),
            "task_wall_per_step": Summary::of(&samples.per_step_wall).json(),
            "cpu_per_step_mean": cpu_per_step,
            "retries": samples.retries,
            "elapsed_s": elapsed.as_secs_f64(),
            "target": {"step_overhead_p99_us_below": 50.0, "pass": pass},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex bench overhead: {} tasks x {STEPS} steps (3 levels), in-process null model, one task at a time, {:.1} s",
            args.tasks,
            elapsed.as_secs_f64()
        );
        println!("{}", header("µs"));
        println!("{}", row("step overhead (all steps)", &overhead));
        println!(
            "{}",
            row(
                "  steps without dependencies",
                &Summary::of(&samples.root_overhead)
            )
        );
        println!(
            "{}",
            row(
                "    first of them dispatched (per task)",
                &Summary::of(&samples.first_root_overhead)
            )
        );
        println!(
            "{}",
            row(
                "  steps with dependencies",
                &Summary::of(&samples.dependent_overhead)
            )
        );
        println!(
            "{}",
            row("null model call (excluded)", &Summary::of(&samples.call))
        );
        println!(
            "{}",
            row(
                "task finish (last call -> final record)",
                &Summary::of(&samples.finish)
            )
        );
        println!(
            "{}",
            row(
                "task wall time / steps",
                &Summary::of(&samples.per_step_wall)
            )
        );
        if let Some(cpu) = cpu_per_step {
            println!("process CPU time per step (mean, all threads): {cpu:.1} µs");
        }
        println!(
            "target: step overhead p99 < 50 µs -> {} (p99 {:.1} µs)",
            verdict(pass),
            overhead.p99
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// planex bench http

async fn http(args: HttpArgs) -> Result<ExitCode> {
    let (stream, args) = (!args.no_stream, args.steps);
    check_count("tasks", args.tasks, MAX_TASKS)?;
    let null = null_bed()?;
    let http = http_bed(stream).await?;
    for _ in 0..args.warmup.min(MAX_TASKS) {
        null.timed_task("benchmark task").await?;
        http.timed_task("benchmark task").await?;
    }
    let (mut n, mut h) = (StepSamples::default(), StepSamples::default());
    let started = Instant::now();
    // Interleaved, so both variants see the same machine noise.
    for _ in 0..args.tasks {
        n.add(&null.timed_task("benchmark task").await?);
        h.add(&http.timed_task("benchmark task").await?);
    }
    let elapsed = started.elapsed();
    null.stop().await;
    http.stop().await;

    let null_overhead = Summary::of(&n.overhead);
    let total = Summary::of(&h.total);
    let pass = total.p99 < 500.0;
    let ratio = |a: f64, b: f64| a / b;
    let ratios = [
        ratio(total.p50, null_overhead.p50),
        ratio(total.p90, null_overhead.p90),
        ratio(total.p99, null_overhead.p99),
    ];
    if args.json {
        let report = serde_json::json!({
            "benchmark": "http", "tasks": args.tasks, "stream": stream, "steps_per_task": STEPS, "unit": "us",
            "http_step_total": total.json(),
            "http_step_overhead": Summary::of(&h.overhead).json(),
            "http_model_call": Summary::of(&h.call).json(),
            "http_task_wall_per_step": Summary::of(&h.per_step_wall).json(),
            "null_step_overhead": null_overhead.json(),
            "null_task_wall_per_step": Summary::of(&n.per_step_wall).json(),
            "ratio_http_total_to_null_overhead": {"p50": ratios[0], "p90": ratios[1], "p99": ratios[2]},
            "retries": h.retries,
            "elapsed_s": elapsed.as_secs_f64(),
            "target": {"http_step_total_p99_us_below": 500.0, "pass": pass},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex bench http: {} tasks x {STEPS} steps per variant, interleaved; executor = tier client -> simulator on 127.0.0.1 (ttft 0, instant tokens, {}), {:.1} s",
            args.tasks,
            if stream { "streamed" } else { "not streamed" },
            elapsed.as_secs_f64()
        );
        println!("{}", header("µs"));
        println!(
            "{}",
            row("http: step total (overhead + model call)", &total)
        );
        println!(
            "{}",
            row("http:   engine overhead", &Summary::of(&h.overhead))
        );
        println!(
            "{}",
            row(
                "http:   model call (HTTP + simulator)",
                &Summary::of(&h.call)
            )
        );
        println!(
            "{}",
            row(
                "http: task wall time / steps",
                &Summary::of(&h.per_step_wall)
            )
        );
        println!(
            "{}",
            row("null: step overhead (benchmark 1)", &null_overhead)
        );
        println!(
            "{}",
            row(
                "null: task wall time / steps",
                &Summary::of(&n.per_step_wall)
            )
        );
        println!(
            "ratio http step total / null step overhead: p50 {:.1}x, p90 {:.1}x, p99 {:.1}x; model-call retries: {}",
            ratios[0], ratios[1], ratios[2], h.retries
        );
        println!(
            "target: step total p99 < 500 µs -> {} (p99 {:.1} µs)",
            verdict(pass),
            total.p99
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// planex bench makespan

async fn makespan(args: MakespanArgs) -> Result<ExitCode> {
    check_count("runs", args.runs, MAX_RUNS)?;
    if args.sequential_runs > MAX_RUNS {
        bail!("--sequential-runs must be at most {MAX_RUNS}");
    }
    if args.step_ms == 0 || args.step_ms > 10_000 {
        bail!(
            "--step-ms must be between 1 and 10000, got {}",
            args.step_ms
        );
    }
    const DAG_TASK: &str = "makespan benchmark: 10 steps in three levels";
    const CHAIN_TASK: &str = "makespan benchmark: 10 steps in a chain";
    let mut workload = Workload::default();
    workload.insert(DAG_TASK, vec![dag_plan()]);
    workload.insert(CHAIN_TASK, vec![chain_plan()]);
    let planner_sim = SimServer::start(SimConfig {
        port: 0,
        model: "sim-planner".into(),
        ttft_ms: args.planner_ttft_ms,
        workload,
        ..SimConfig::default()
    })
    .await?;
    let executor_sim = SimServer::start(SimConfig {
        port: 0,
        model: "sim-executor".into(),
        ttft_ms: args.step_ms,
        tokens_per_second: 0.0,
        ..SimConfig::default()
    })
    .await?;
    let planner = sim_tier(
        "planner",
        &planner_sim,
        "sim-planner",
        gpu_price(454, 2500),
        !args.no_stream,
    )?;
    let executor = sim_tier(
        "executor",
        &executor_sim,
        "sim-executor",
        gpu_price(96, 6000),
        !args.no_stream,
    )?;
    let bed = Bed::start(planner, executor, vec![planner_sim, executor_sim])?;
    let step = Duration::from_millis(args.step_ms);
    let critical_path = step * LEVELS;

    // One untimed run warms connections and allocators.
    bed.timed_task(DAG_TASK).await?;
    let (mut makespans, mut plannings, mut ratios, mut ideal_ratios) =
        (vec![], vec![], vec![], vec![]);
    let (mut retries, mut calls) = (0, vec![]);
    for _ in 0..args.runs {
        let t = bed.timed_task(DAG_TASK).await?;
        calls.extend(t.call.values().map(|c| ms(*c)));
        makespans.push(ms(t.makespan));
        plannings.push(ms(t.planning));
        ratios.push(t.makespan.as_secs_f64() / (critical_path + t.planning).as_secs_f64());
        ideal_ratios.push(t.makespan.as_secs_f64() / t.ideal.as_secs_f64());
        retries += t.retries;
    }
    let mut chain = vec![];
    for _ in 0..args.sequential_runs {
        let t = bed.timed_task(CHAIN_TASK).await?;
        chain.push(ms(t.makespan));
        retries += t.retries;
    }
    bed.stop().await;

    let (makespan, planning) = (Summary::of(&makespans), Summary::of(&plannings));
    let (ratio, ideal_ratio) = (Summary::of(&ratios), Summary::of(&ideal_ratios));
    let calls = Summary::of(&calls);
    let sequential_computed = ms(step * STEPS as u32) + planning.p50;
    let chain = (!chain.is_empty()).then(|| Summary::of(&chain));
    let pass = ratio.p50 <= 1.02;
    if args.json {
        let report = serde_json::json!({
            "benchmark": "makespan", "runs": args.runs, "steps": STEPS, "levels": LEVELS,
            "step_ms": args.step_ms, "planner_ttft_ms": args.planner_ttft_ms, "synthesis": false, "stream": !args.no_stream,
            "makespan_ms": makespan.json(),
            "planning_ms": planning.json(),
            "step_model_call_ms": calls.json(),
            "critical_path_ms": ms(critical_path),
            "ratio_makespan_to_critical_path_plus_planning": ratio.json(),
            "ratio_makespan_to_measured_calls_critical_path": ideal_ratio.json(),
            "sequential_computed_ms": sequential_computed,
            "sequential_chain_ms": chain.map(|c| c.json()),
            "retries": retries,
            "target": {"ratio_p50_at_most": 1.02, "pass": pass, "ratio_p90_within": ratio.p90 <= 1.02},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex bench makespan: {} runs of a {STEPS}-step plan in {LEVELS} levels (4+4+2), {} ms per step (simulator ttft), planner ttft {} ms, synthesis off, {}",
            args.runs,
            args.step_ms,
            args.planner_ttft_ms,
            if args.no_stream {
                "not streamed"
            } else {
                "streamed"
            }
        );
        println!("{}", header("ms / ratio"));
        println!(
            "{}",
            row("makespan (submit -> final record), ms", &makespan)
        );
        println!("{}", row("planning (planner call), ms", &planning));
        println!(
            "{}",
            row("one step's model call (HTTP + simulator), ms", &calls)
        );
        println!(
            "{}",
            ratio_row("makespan / (critical path + planning)", &ratio)
        );
        println!(
            "{}",
            ratio_row("makespan / (measured calls' longest path)", &ideal_ratio)
        );
        if let Some(chain) = &chain {
            println!("{}", row("sequential: 10-step chain makespan, ms", chain));
        }
        println!(
            "critical path {:.0} ms ({LEVELS} x {} ms); sequential equivalent {:.0} ms ({STEPS} x {} ms + planning p50); speed-up vs sequential at p50: {:.2}x; retries: {retries}",
            ms(critical_path),
            args.step_ms,
            sequential_computed,
            args.step_ms,
            sequential_computed / makespan.p50
        );
        println!(
            "target: makespan <= 1.02 x (critical path + planning) -> {} (p50 {:.4}, p90 {:.4})",
            verdict(pass),
            ratio.p50,
            ratio.p90
        );
    }
    Ok(ExitCode::SUCCESS)
}
