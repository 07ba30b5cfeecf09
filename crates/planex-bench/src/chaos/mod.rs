//! `planex-bench chaos`: a bounded soak under faults, verified from the store afterwards.
//!
//! It starts a private `redis-server` (append-only, so a restart keeps every acknowledged write),
//! one in-process simulator with random faults (5xx, hangs past the tiers' timeout, malformed
//! JSON, answers cut off part-way) that keeps a ledger of every answer, `planex serve` and N `planex worker` processes per tier; submits M tasks over HTTP with
//! `Idempotency-Key`s (a submission cut off by a restart is retried and counted once); while they
//! are submitted (and for at least `--chaos-secs`) it kills a random worker with SIGKILL every few
//! seconds and starts a replacement, restarts Redis once and the API once; then waits for every accepted task and checks the invariants
//! (`verify.rs`). Times are reported, never asserted; any broken invariant makes the exit code 1.
//!
//! Key decision: the simulator runs in this process (its counters are read directly, it is not a
//! target of the faults), everything planex runs is a real process, so a kill is a real kill.

mod billing;
mod procs;
mod redelivery;
mod verify;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use planex_core::{Decimal, TaskId};
use planex_sim::{SimConfig, SimServer};
use planex_store::RedisStore;
use planex_testkit::redis::RedisServer;
use procs::{PlanexProc, Worker};
use redelivery::Redelivery;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use verify::Submitted;

/// `planex-bench chaos`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    /// Tasks to submit.
    #[arg(long, default_value_t = 200)]
    pub tasks: usize,
    /// Executor worker processes (one planner worker process more runs the planner tier).
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Seconds between two SIGKILLs of a random worker.
    #[arg(long, default_value_t = 3.0)]
    pub kill_every_secs: f64,
    /// Workers are killed for at least this long from the start, even when every task was
    /// submitted sooner (kills go on while the submissions last).
    #[arg(long, default_value_t = 30.0)]
    pub chaos_secs: f64,
    /// Fraction of model calls answered with a 5xx.
    #[arg(long, default_value_t = 0.2)]
    pub error_rate: f64,
    /// Fraction of model calls that hang past the tiers' timeout.
    #[arg(long, default_value_t = 0.05)]
    pub hang_rate: f64,
    /// Fraction of model answers whose content is malformed JSON.
    #[arg(long, default_value_t = 0.05)]
    pub malformed_rate: f64,
    /// Fraction of model answers cut off part-way (the connection breaks mid-answer).
    #[arg(long, default_value_t = 0.02)]
    pub truncate_rate: f64,
    /// The budget of each task, in USD (checked: no task costs more).
    #[arg(long, default_value = "0.002")]
    pub budget_usd: Decimal,
    /// Seed of the simulator's faults and of the choice of victims.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How long to wait for every accepted task to end, in seconds, once the submissions and
    /// the kills are over (at least `--chaos-secs` after the start).
    #[arg(long, default_value_t = 300)]
    pub deadline_secs: u64,
    /// The planex binary (default: the `planex` beside this executable).
    #[arg(long)]
    pub planex: Option<PathBuf>,
    /// Do not restart Redis during the run.
    #[arg(long)]
    pub no_redis_restart: bool,
    /// Do not restart the API during the run.
    #[arg(long)]
    pub no_api_restart: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the soak and prints its report; exit code 1 when an invariant broke.
pub async fn run(args: ChaosArgs) -> Result<ExitCode> {
    if args.tasks == 0 || args.workers == 0 {
        bail!("--tasks and --workers must be at least 1");
    }
    let planex = procs::planex_binary(args.planex.clone())?;
    let dir = planex_testkit::temp_dir::fresh("planex-chaos")
        .context("cannot create the run's directory")?;
    let started = Instant::now();
    let mut redis = RedisServer::start_with(true).context("cannot start a private redis-server")?;
    let sim = SimServer::start(SimConfig {
        port: 0,
        ttft_ms: 20,
        max_concurrency: 512,
        error_rate: args.error_rate,
        hang_rate: args.hang_rate,
        malformed_rate: args.malformed_rate,
        truncate_rate: args.truncate_rate,
        record_calls: true,
        hang_ms: 600_000,
        seed: args.seed,
        ..SimConfig::default()
    })
    .await
    .context("cannot start the simulator")?;
    let store_url = format!("{}/0", redis.url());
    let config = dir.join("planex.toml");
    std::fs::write(&config, config_toml(&sim.base_url(), &store_url))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let bed = Bed {
        planex,
        dir: dir.clone(),
        config,
        api_port: free_port()?,
    };
    let mut api = Some(bed.serve("serve-0")?);
    let mut workers = vec![bed.worker("planner", "planner-0")?];
    for i in 0..args.workers {
        workers.push(bed.worker("executor", &format!("executor-{i}"))?);
    }
    let store = Arc::new(
        RedisStore::connect(&store_url)
            .await
            .context("cannot connect to the private redis-server")?,
    );

    let accepted = Arc::new(AtomicUsize::new(0));
    let submitting = tokio::spawn(submit_all(
        bed.api_url(),
        args.tasks,
        args.budget_usd,
        accepted.clone(),
    ));
    let mut rng = Lcg(args.seed.wrapping_mul(6_364_136_223_846_793_005) | 1);
    let mut kills: Vec<Redelivery> = Vec::new();
    let mut spawned = workers.len();
    let (mut redis_restarted, mut api_restarted) = (None, None);
    let kill_every = Duration::from_secs_f64(args.kill_every_secs.max(0.2));
    let mut next_kill = Instant::now() + kill_every;
    let chaos_until = started + Duration::from_secs_f64(args.chaos_secs.max(0.0));
    while !submitting.is_finished() || Instant::now() < chaos_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = accepted.load(Ordering::Relaxed);
        if !args.no_redis_restart && redis_restarted.is_none() && done >= args.tasks / 3 {
            let at = Instant::now();
            tokio::task::block_in_place(|| redis.restart())
                .context("cannot restart the redis-server")?;
            redis_restarted = Some(at.elapsed());
        }
        if !args.no_api_restart && api_restarted.is_none() && done >= 2 * args.tasks / 3 {
            let at = Instant::now();
            if let Some(mut old) = api.take() {
                old.kill9();
            }
            api = Some(bed.serve("serve-1")?);
            api_restarted = Some(at.elapsed());
        }
        if Instant::now() >= next_kill {
            next_kill += kill_every;
            let victim = rng.below(workers.len());
            let tier = workers[victim].tier.clone();
            let held = redelivery::held_by(&store, &workers[victim]).await;
            workers[victim].proc.kill9();
            let killed_at = Instant::now();
            kills.push(Redelivery::watch(
                store.clone(),
                workers[victim].proc.name.clone(),
                held,
                killed_at,
            ));
            workers[victim] = bed.worker(&tier, &format!("{tier}-{spawned}"))?;
            spawned += 1;
        }
    }
    let submitted = submitting.await.context("the submitting task panicked")??;
    let outcome = verify::check(
        &store,
        &submitted,
        args.budget_usd,
        Duration::from_secs(args.deadline_secs),
    )
    .await?;
    let mut redeliveries = Vec::new();
    for kill in kills {
        redeliveries.push(kill.finish().await);
    }
    let mut report = verify::Report {
        tasks: args.tasks,
        accepted: submitted.accepted.len(),
        refused: submitted.refused,
        submission_retries: submitted.retries,
        redis_restart_ms: redis_restarted.map(|d| d.as_millis() as u64),
        api_restart_ms: api_restarted.map(|d| d.as_millis() as u64),
        redeliveries,
        sim: sim.stats(),
        outcome,
        billing: billing::BillingCheck::default(),
        wall_secs: started.elapsed().as_secs_f64(),
        logs: dir.display().to_string(),
    };
    report.check_billing(&sim.state().calls());
    report.print(args.json);
    drop(workers);
    drop(api);
    sim.shutdown().await;
    Ok(if report.outcome.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What every process of the run is started from.
struct Bed {
    planex: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    api_port: u16,
}

impl Bed {
    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// `planex serve` on the run's fixed port (a restarted API answers where the old one did).
    fn serve(&self, name: &str) -> Result<PlanexProc> {
        let listen = format!("127.0.0.1:{}", self.api_port);
        let args = [
            "serve",
            "--config",
            path(&self.config)?,
            "--listen",
            &listen,
        ];
        Ok(PlanexProc::start(&self.planex, name, &args, &self.dir, "listening on")?.0)
    }

    fn worker(&self, tier: &str, id: &str) -> Result<Worker> {
        let args = [
            "worker",
            "--tier",
            tier,
            "--id",
            id,
            "--concurrency",
            "8",
            "--config",
            path(&self.config)?,
            "--lease-secs",
            "30",
            "--drain-secs",
            "5",
        ];
        let (proc, _) = PlanexProc::start(&self.planex, id, &args, &self.dir, "serving tier")?;
        Ok(Worker {
            tier: tier.to_owned(),
            proc,
        })
    }
}

fn path(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("the path {} is not UTF-8", p.display()))
}

/// A port free on 127.0.0.1 now (bound, then released).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The run's configuration: both tiers on the simulator with a short timeout (a hang is cut off
/// and retried), three retries, the Redis store, and two LLM tools.
fn config_toml(sim: &str, store_url: &str) -> String {
    planex_testkit::cluster_config::ClusterConfig {
        sim_url: sim,
        store_url,
        timeout_secs: 3,
        max_retries: 3,
        max_backoff_ms: 200,
        engine: "# Tasks a killed API replica was planning are failed by orphan recovery after this plus a lease.\nplanning_deadline_secs = 20\n",
        tables: "\n# An idempotency claim cut off by the API's kill lapses after this plus a minute.\n[budget]\nadmission_wait_secs = 10\n",
    }
    .toml()
}

/// Submits `tasks` tasks, 8 at a time, each retried with its `Idempotency-Key` until answered.
async fn submit_all(
    api: String,
    tasks: usize,
    budget: Decimal,
    accepted: Arc<AtomicUsize>,
) -> Result<Submitted> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let answers: Vec<Result<(Option<TaskId>, usize)>> = futures::stream::iter(0..tasks)
        .map(|i| submit_one(&http, &api, i, budget, &accepted))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut submitted = Submitted {
        accepted: Vec::new(),
        refused: 0,
        retries: 0,
    };
    for answer in answers {
        let (id, retries) = answer?;
        submitted.retries += retries;
        match id {
            Some(id) => submitted.accepted.push(id),
            None => submitted.refused += 1,
        }
    }
    Ok(submitted)
}

async fn submit_one(
    http: &reqwest::Client,
    api: &str,
    i: usize,
    budget: Decimal,
    accepted: &AtomicUsize,
) -> Result<(Option<TaskId>, usize)> {
    let body = serde_json::json!({
        "task": format!("Chaos question {i}: compare the history of topic {i} with topic {}", i + 1),
        "budget_usd": budget.to_string(),
    });
    let give_up = Instant::now() + Duration::from_secs(300);
    let mut retries = 0;
    loop {
        let answer = http
            .post(format!("{api}/v1/tasks"))
            .header("idempotency-key", format!("chaos-{i}"))
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().as_u16() == 202 => {
                let json: serde_json::Value = response.json().await?;
                let id = json["task_id"]
                    .as_str()
                    .context("a 202 without a task_id")?;
                accepted.fetch_add(1, Ordering::Relaxed);
                return Ok((Some(TaskId(id.to_owned())), retries));
            }
            // 409: the first try with this key is still being accepted, or was cut off before
            // its task was recorded (its claim lapses): ask again.
            Ok(response)
                if response.status().is_client_error() && response.status().as_u16() != 409 =>
            {
                return Ok((None, retries));
            }
            Ok(response) if Instant::now() < give_up => {
                retries += 1;
                // A 409's Retry-After is 2 s; a 5xx is retried sooner.
                let pause = if response.status().as_u16() == 409 {
                    2000
                } else {
                    200
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(_) if Instant::now() < give_up => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(response) => bail!("task {i}: the API still answers {}", response.status()),
            Err(error) => bail!("task {i}: the API is still unreachable: {error}"),
        }
    }
}

/// A small deterministic generator for choosing victims (no cryptographic use).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}
