//! `planex serve`: the HTTP API (and, with `--with-workers`, the workers) in this process.
//!
//! Key decisions: serve is store-agnostic: the store comes from `runtime.rs` (memory or any
//! backend it knows), and the budget ledger and plan cache are attached in [`attach_service`], the
//! one place a shared backend's ledger and cache plug in. A memory store is private to this
//! process, so serving it without workers would leave every task waiting: workers are then turned
//! on, and the start-up notice says so, as it says when auth is off or tiers are simulated.
//! SIGTERM or Ctrl-C stops accepting, ends event streams, finishes open requests, then drains the
//! workers.

use crate::runtime::{Runtime, apply_store_flag};
use anyhow::{Context, Result};
use planex_engine::config::Settings;
use planex_engine::{BudgetGuard, Engine, PlanCacheLayer};
use planex_server::AppState;
use planex_store::{MemoryLedger, MemoryPlanCache, PlanCache, SpendLedger};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `planex serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Config file (default: the embedded config, with simulated tiers).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides `[server] listen`, default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Also run workers for every tier in this process.
    #[arg(long)]
    with_workers: bool,
    /// Store: `memory` or a Redis URL (overrides `[store]`).
    #[arg(long)]
    store: Option<String>,
}

/// Adds the budget guard and the plan cache to an engine being wired (before its workers start,
/// so the executor re-checks budgets before escalations). A shared backend (Redis) brings its own
/// ledger and cache, common to every process; otherwise they are in memory, per process.
pub fn attach_service(
    engine: Engine,
    settings: &Settings,
    shared: Option<crate::runtime::SharedService>,
) -> Engine {
    let service = &settings.service;
    let (ledger, plan_cache): (Arc<dyn SpendLedger>, Arc<dyn PlanCache>) = match shared {
        Some(shared) => (shared.ledger, shared.plan_cache),
        None => (
            Arc::new(MemoryLedger::new()),
            Arc::new(MemoryPlanCache::new(service.cache.max_entries)),
        ),
    };
    let guard = BudgetGuard::new(ledger, service.budget.clone());
    let cache = PlanCacheLayer::new(plan_cache, service.cache.clone());
    engine.with_budget(Arc::new(guard)).with_plan_cache(cache)
}

/// How often a replica looks for reservations and planning tasks a stopped replica left behind.
const RECOVERY_EVERY: Duration = Duration::from_secs(60);
/// How long a task may stay in `planning`, or a reservation stay without a task, before recovery
/// treats its replica as gone: far longer than any planner or single-step call.
const RECOVERY_GRACE: Duration = Duration::from_secs(15 * 60);

/// Settles what replicas that died mid-task left behind (`planex_engine::OrphanRecovery`), once a
/// minute, on every replica (passes are safe to run concurrently).
async fn recover_orphans(engine: Arc<Engine>) {
    let mut recovery = planex_engine::OrphanRecovery::new(RECOVERY_GRACE);
    let mut every = tokio::time::interval(RECOVERY_EVERY);
    loop {
        every.tick().await;
        match recovery.pass(&engine).await {
            Ok(report) if report != planex_engine::Recovery::default() => {
                tracing::info!(?report, "recovered what a stopped replica left behind");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "orphan recovery pass failed; retrying in a minute")
            }
        }
    }
}

/// Runs the API until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    let mut settings = Settings::load(args.config.as_deref())?;
    if let Some(flag) = &args.store {
        apply_store_flag(&mut settings, flag)?;
    }
    let mut server = settings.service.server.clone();
    if let Some(listen) = args.listen {
        server.listen = listen;
    }
    let mut workers = args.with_workers;
    if settings.store.backend == "memory" && !workers {
        eprintln!(
            "planex serve: the memory store is private to this process, so workers run in it too (as with --with-workers)"
        );
        workers = true;
    }
    let planner_endpoints = settings
        .tiers
        .iter()
        .find(|t| t.name == settings.engine.planner_tier)
        .map(|t| t.endpoints.clone())
        .unwrap_or_default();
    let simulated: Vec<String> = settings.simulated.keys().cloned().collect();
    let metrics = match planex_server::metrics::install_recorder() {
        Ok(handle) => Some(handle),
        Err(error) => {
            eprintln!("planex serve: warning: {error}");
            None
        }
    };
    let listener = tokio::net::TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("binding {} ([server] listen or --listen)", server.listen))?;
    let addr = listener.local_addr()?;
    let runtime = Runtime::start_with(settings, workers).await?;
    if !server.auth {
        eprintln!(
            "planex serve: auth is DISABLED: every caller is tenant \"anonymous\"; add [[api_keys]] to require keys"
        );
    }
    if !simulated.is_empty() {
        eprintln!(
            "planex serve: tiers {} are SIMULATED by the built-in simulator: their output is synthetic",
            simulated.join(", ")
        );
    }
    let state = AppState::new(runtime.engine.clone(), server, planner_endpoints, metrics);
    // This line is the readiness signal scripts and tests wait for: the port is bound.
    println!(
        "planex serve listening on http://{addr} (workers: {})",
        if workers { "in process" } else { "none" }
    );
    let recovery = tokio::spawn(recover_orphans(runtime.engine.clone()));
    let served = planex_server::serve(listener, state, crate::shutdown_signal()).await;
    recovery.abort();
    eprintln!("planex serve: shutting down: draining workers");
    runtime.stop().await;
    served.context("serving the API")?;
    Ok(ExitCode::SUCCESS)
}
