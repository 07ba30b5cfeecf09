//! `planex serve`: the HTTP API (and, with `--with-workers`, the workers) in this process, started
//! through `planex_app::App`.
//!
//! Key decision: a memory store is private to this process, so serving it without workers would
//! leave every task waiting: workers are then turned on, and the start-up notice says so, as it
//! says when auth is off or tiers are simulated. SIGTERM or Ctrl-C stops accepting, ends event
//! streams, finishes open requests, then drains the workers.

use anyhow::Result;
use planex_app::{App, Config, StoreSettings, Workers};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// Runs the API until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(flag) = &args.store {
        config.store = StoreSettings::from_flag(flag)?;
    }
    if let Some(listen) = args.listen {
        config.service.server.listen = listen;
    }
    let mut workers = args.with_workers;
    if !config.store.is_shared() && !workers {
        eprintln!(
            "planex serve: the memory store is private to this process, so workers run in it too (as with --with-workers)"
        );
        workers = true;
    }
    let metrics = match planex_server::metrics::install_recorder() {
        Ok(handle) => Some(handle),
        Err(error) => {
            eprintln!("planex serve: warning: {error:#}");
            None
        }
    };
    let listener = planex_app::bind(config.service.server.listen).await?;
    let addr = listener.local_addr()?;
    let workers = if workers {
        Workers::EveryTier
    } else {
        Workers::None
    };
    let app = App::from_config(config, workers).await?;
    if !app.config().service.server.auth {
        eprintln!(
            "planex serve: auth is DISABLED: every caller is tenant \"anonymous\"; add [[api_keys]] to require keys"
        );
    }
    if app.is_simulated() {
        let simulated: Vec<&str> = app.config().simulated.keys().map(String::as_str).collect();
        eprintln!(
            "planex serve: tiers {} are SIMULATED by the built-in simulator: their output is synthetic",
            simulated.join(", ")
        );
    }
    // This line is the readiness signal scripts and tests wait for: the port is bound.
    println!(
        "planex serve listening on http://{addr} (workers: {})",
        if app.runs_workers() {
            "in process"
        } else {
            "none"
        }
    );
    let shutdown = async {
        planex_app::shutdown_signal().await;
        eprintln!(
            "planex serve: shutting down: finishing the planning of accepted tasks and draining workers"
        );
    };
    app.serve(listener, metrics, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
