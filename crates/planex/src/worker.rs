//! `planex worker --tier NAME`: one tier's worker process for a distributed deployment. It claims
//! steps of its tier from the shared (Redis) store, runs them on the tier's model servers and
//! records the outcomes; any number of these run on any number of machines.
//!
//! Key decision: graceful shutdown is the worker's own job, not the store's: on SIGTERM or Ctrl-C
//! it stops claiming, gives running steps `--drain-secs` to finish, and then *releases* every step
//! it still holds (tracked by a thin `Store` wrapper), so a rolling restart hands steps to the
//! other workers at once instead of after a lease expiry, and without counting a delivery.

use crate::runtime::{Runtime, apply_store_flag};
use anyhow::{Result, bail};
use async_trait::async_trait;
use planex_core::{CallRecord, Plan, TaskId};
use planex_engine::config::Settings;
use planex_engine::{WorkerSettings, run_worker};
use planex_store::{
    Completion, DeadLetter, EventStream, NewTask, QueueDepth, StepLease, StepOutcome, StepSpec,
    Store, StoreError, TaskRecord, TaskStatus, TaskSummary,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a worker of the tier must have held nothing and claimed nothing before a starting
/// worker removes it from the tier's consumer group as dead (far above any lease or idle wait).
const DEAD_WORKER_IDLE: Duration = Duration::from_secs(3600);

/// Arguments of `planex worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The tier whose steps this process runs (a name under [tiers]).
    #[arg(long)]
    tier: String,
    /// Steps run at once (default: [engine] worker_concurrency).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Config file; its [store] must be shared (backend = "redis").
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Store URL, overriding the config (redis://host:port).
    #[arg(long)]
    store: Option<String>,
    /// Lease length in seconds: a step held this long without renewal (its worker died) is
    /// redelivered.
    #[arg(long, default_value_t = 30.0)]
    lease_secs: f64,
    /// On shutdown, how long running steps may take to finish before they are released.
    #[arg(long, default_value_t = 30.0)]
    drain_secs: f64,
    /// Name shown in events and dead letters (default: HOST-PID-TIER).
    #[arg(long)]
    id: Option<String>,
    /// Serve Prometheus metrics of this worker (GET /metrics, GET /healthz) on HOST:PORT, e.g.
    /// 0.0.0.0:9464; port 0 picks a free port, shown on the readiness line. Off by default.
    #[arg(long)]
    metrics_addr: Option<String>,
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        bail!("--{flag} must be between 0 and 86400 seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

pub async fn run(args: WorkerArgs) -> Result<ExitCode> {
    let mut settings = Settings::load(args.config.as_deref())?;
    if let Some(flag) = &args.store {
        apply_store_flag(&mut settings, flag)?;
    }
    if settings.store.backend == "memory" {
        bail!(
            "planex worker needs a store shared with `planex serve`: set [store] backend = \"redis\" and url = \"redis://host:6379\" in the config, or pass --store redis://host:6379"
        );
    }
    if !settings.tiers.iter().any(|t| t.name == args.tier) {
        let known: Vec<&str> = settings.tiers.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "--tier {:?} is not a tier of the config (tiers: {}); pick one of them",
            args.tier,
            known.join(", ")
        );
    }
    let lease = seconds("lease-secs", args.lease_secs)?;
    let drain = seconds("drain-secs", args.drain_secs)?;
    let concurrency = args.concurrency.unwrap_or(settings.worker_concurrency);
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let runtime = Runtime::start_with(settings, false).await?;
    let worker_id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{}-{}", hostname(), std::process::id(), args.tier));
    let store = Arc::new(Tracking::new(runtime.engine.store().clone()));
    let mut worker = WorkerSettings::new(args.tier.clone(), worker_id.clone());
    worker.concurrency = concurrency;
    worker.lease = lease;
    worker.drain_timeout = drain;
    let shutdown = CancellationToken::new();
    // Bound before the worker starts, so a bad address fails before any step is claimed.
    let metrics = match &args.metrics_addr {
        Some(addr) => {
            let stop = shutdown.clone();
            let bound = planex_server::worker_metrics::spawn(
                addr,
                runtime.engine.store().clone(),
                args.tier.clone(),
                async move { stop.cancelled().await },
            )
            .await
            .map_err(anyhow::Error::msg)?;
            format!("; metrics on http://{bound}/metrics")
        }
        None => String::new(),
    };
    // Workers of this tier that died without leaving its consumer group (kill -9) are forgotten
    // once they have held nothing for an hour.
    match store
        .retire_idle_workers(&args.tier, DEAD_WORKER_IDLE)
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(tier = %args.tier, workers = n, "forgot idle workers that never retired")
        }
        Err(error) => {
            tracing::warn!(%error, "could not look for dead workers in the consumer group")
        }
    }
    let handle = tokio::spawn(run_worker(
        store.clone(),
        runtime.engine.executor().clone(),
        worker,
        shutdown.clone(),
    ));
    // This line is the readiness signal scripts and tests wait for.
    println!(
        "planex worker {worker_id} serving tier {} (concurrency {concurrency}{metrics})",
        args.tier
    );
    if runtime.simulated {
        eprintln!("planex worker: simulated tiers in this config produce synthetic output");
    }
    crate::shutdown_signal().await;
    eprintln!("planex worker {worker_id}: stopping; finishing running steps");
    shutdown.cancel();
    let _ = handle.await;
    let released = store.release_held().await;
    if let Err(error) = store.retire_worker(&args.tier, &worker_id).await {
        tracing::warn!(%error, "could not remove this worker from its tier's consumer group");
    }
    // On stdout, like the readiness line: scripts and tests read it.
    println!("planex worker {worker_id}: stopped ({released} unfinished steps released)");
    runtime.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// A `Store` that remembers the leases it handed out and not yet completed or released.
struct Tracking {
    inner: Arc<dyn Store>,
    held: Mutex<HashMap<String, StepLease>>,
}

impl Tracking {
    fn new(inner: Arc<dyn Store>) -> Self {
        Tracking {
            inner,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, StepLease>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Releases every lease still held; returns how many.
    async fn release_held(&self) -> usize {
        let leases: Vec<StepLease> = self.held().drain().map(|(_, l)| l).collect();
        for lease in &leases {
            if let Err(error) = self.inner.release(lease).await {
                tracing::warn!(%error, task = %lease.task_id, step = %lease.spec.step.step_id, "could not release a step; its lease will expire instead");
            }
        }
        leases.len()
    }
}

#[async_trait]
impl Store for Tracking {
    async fn create_task(&self, task: NewTask) -> Result<(), StoreError> {
        self.inner.create_task(task).await
    }

    async fn start_task(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        self.inner
            .start_task(task_id, plan, steps, planner_calls)
            .await
    }

    async fn finish_unplanned(
        &self,
        task_id: &TaskId,
        status: TaskStatus,
        reason: String,
        calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        self.inner
            .finish_unplanned(task_id, status, reason, calls)
            .await
    }

    async fn claim(
        &self,
        tier: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<StepLease>, StoreError> {
        let leases = self.inner.claim(tier, worker, max, lease, wait).await?;
        let mut held = self.held();
        for lease in &leases {
            held.insert(lease.token.clone(), lease.clone());
        }
        Ok(leases)
    }

    async fn extend_lease(&self, lease: &StepLease, by: Duration) -> Result<bool, StoreError> {
        self.inner.extend_lease(lease, by).await
    }

    async fn release(&self, lease: &StepLease) -> Result<(), StoreError> {
        self.held().remove(&lease.token);
        self.inner.release(lease).await
    }

    async fn complete(
        &self,
        lease: &StepLease,
        outcome: StepOutcome,
    ) -> Result<Completion, StoreError> {
        let completion = self.inner.complete(lease, outcome).await?;
        // A failed completion keeps the lease tracked: releasing it at shutdown hands the step
        // to another worker sooner than its lease expiry would.
        self.held().remove(&lease.token);
        Ok(completion)
    }

    async fn get_task(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        self.inner.get_task(task_id).await
    }

    async fn events(&self, task_id: &TaskId) -> Result<EventStream, StoreError> {
        self.inner.events(task_id).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }

    async fn queue_depth(&self, tier: &str) -> Result<QueueDepth, StoreError> {
        self.inner.queue_depth(tier).await
    }

    async fn retire_worker(&self, tier: &str, worker: &str) -> Result<(), StoreError> {
        self.inner.retire_worker(tier, worker).await
    }

    async fn retire_idle_workers(&self, tier: &str, idle: Duration) -> Result<usize, StoreError> {
        self.inner.retire_idle_workers(tier, idle).await
    }

    async fn task_summary(&self, task_id: &TaskId) -> Result<Option<TaskSummary>, StoreError> {
        self.inner.task_summary(task_id).await
    }
}
