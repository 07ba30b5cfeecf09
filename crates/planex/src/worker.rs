//! `planex worker --tier NAME`: one tier's worker process for a distributed deployment. It claims
//! steps of its tier from the shared (Redis) store, runs them on the tier's model servers and
//! records the outcomes; any number of these run on any number of machines.
//!
//! Key decision: graceful shutdown is the engine worker's own job (`planex_engine::run_worker`), as
//! for in-process workers: on SIGTERM or Ctrl-C it stops claiming, gives running steps
//! `--drain-secs` to finish, and then *releases* every step it still holds, so a rolling restart
//! hands steps to the other workers at once instead of after a lease expiry, and without counting
//! a delivery.

use anyhow::{Result, bail};
use planex_app::{App, Config, StoreSettings, Workers};
use planex_engine::{WorkerSettings, run_worker};
use std::path::PathBuf;
use std::process::ExitCode;
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
    let mut settings = Config::load(args.config.as_deref())?;
    if let Some(flag) = &args.store {
        settings.store = StoreSettings::from_flag(flag)?;
    }
    if !settings.store.is_shared() {
        bail!(
            "planex worker needs a store shared with `planex serve`: set [store] backend = \"redis\" and url = \"redis://host:6379\" in the config, or pass --store redis://host:6379"
        );
    }
    // Model tiers, and the tiers MCP tools run on (no model: `tools` by default).
    let is_tier = settings.tiers.iter().any(|t| t.name == args.tier)
        || settings.mcp_servers.iter().any(|s| s.tier == args.tier);
    if !is_tier {
        let mut known: Vec<&str> = settings.tiers.iter().map(|t| t.name.as_str()).collect();
        known.extend(settings.mcp_servers.iter().map(|s| s.tier.as_str()));
        known.dedup();
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
    let app = App::from_config(settings, Workers::None).await?;
    let worker_id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{}-{}", hostname(), std::process::id(), args.tier));
    let store = app.engine().store().clone();
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
                app.engine().store().clone(),
                args.tier.clone(),
                async move { stop.cancelled().await },
            )
            .await?;
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
            tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "could not look for dead workers in the consumer group")
        }
    }
    let handle = tokio::spawn(run_worker(
        store.clone(),
        app.engine().executor().clone(),
        worker,
        shutdown.clone(),
    ));
    // This line is the readiness signal scripts and tests wait for.
    println!(
        "planex worker {worker_id} serving tier {} (concurrency {concurrency}{metrics})",
        args.tier
    );
    if app.is_simulated() {
        eprintln!("planex worker: simulated tiers in this config produce synthetic output");
    }
    planex_app::shutdown_signal().await;
    eprintln!("planex worker {worker_id}: stopping; finishing running steps");
    shutdown.cancel();
    let released = match handle.await {
        Ok(exit) => exit.released,
        Err(error) => {
            tracing::error!(%error, "the worker task ended abnormally; held steps will be redelivered when their leases expire");
            0
        }
    };
    // Bounded like the hand-back: with the store down, exit anyway (the next worker of the tier
    // forgets this one once it is idle, `retire_idle_workers`).
    match tokio::time::timeout(
        planex_engine::HANDBACK_MIN,
        store.retire_worker(&args.tier, &worker_id),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "could not remove this worker from its tier's consumer group")
        }
        Err(_) => {
            tracing::warn!(
                "the store did not answer in time: this worker stays in its tier's consumer group until an idle sweep forgets it"
            )
        }
    }
    // On stdout, like the readiness line: scripts and tests read it.
    println!("planex worker {worker_id}: stopped ({released} unfinished steps released)");
    app.stop().await;
    Ok(ExitCode::SUCCESS)
}
