//! One worker process of `planex-bench redis throughput` (the hidden `redis worker` subcommand):
//! the engine's real worker loop and executor against the parent's Redis, a no-op claimer
//! (`--noop`), or the bare job queue (`--bare-total`).

use super::args::WorkerArgs;
use super::bare;
use super::plan::TIER;
use anyhow::{Context, Result};
use planex_app::Config as Settings;
use planex_engine::{Engine, EngineSettings, Models, WorkerSettings, run_worker};
use planex_llm::{InstantModel, TierSet};
use planex_store::{RedisStore, RedisStoreOptions, Store};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The config of the bench tier (one tier, one `echo` tool) with its model at `endpoint`.
fn bench_config(endpoint: &str) -> String {
    format!(
        r#"
[engine]
planner_tier = "{TIER}"
synthesis = false
[tiers.{TIER}]
model = "bench-model"
endpoints = ["{endpoint}"]
usd_per_hour = 1
tokens_per_second = 1000
stream = false
max_concurrency = 4096
retry = {{ max_retries = 0, initial_backoff_ms = 1, max_backoff_ms = 1 }}
[[tools]]
name = "echo"
description = "Repeat the text"
tier = "{TIER}"
input_schema = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}
kind = {{ type = "llm", prompt = "Echo: {{text}}", max_tokens = 16 }}
"#
    )
}

/// Runs one worker process until SIGTERM: the engine's worker loop, a no-op claimer, or the bare
/// job queue, as `args` says; prints `ready` once it is.
pub(crate) async fn run(args: WorkerArgs) -> Result<ExitCode> {
    if let Some(total) = args.bare_total {
        let model = match &args.model_url {
            Some(url) => Some(bench_models(url)?.get(TIER)?.clone()),
            None => None,
        };
        return bare::worker(&args.url, &args.prefix, total, args.concurrency, model).await;
    }
    // The bare queue above uses no planex store.
    let options = RedisStoreOptions {
        prefix: args.prefix.clone(),
        ..RedisStoreOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect_with(&args.url, options).await?);
    if args.noop {
        return noop_worker(store, args.concurrency).await;
    }
    let endpoint = args
        .model_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:9/v1".into());
    let settings = Settings::from_toml(&bench_config(&endpoint))?;
    let catalog = Arc::new(settings.catalog()?);
    let mut models = Models::new();
    match &args.model_url {
        None => {
            let price = settings
                .tiers
                .first()
                .context("the bench config has one tier")?
                .price
                .clone();
            models.insert(Arc::new(InstantModel::new(TIER, price)));
        }
        Some(url) => models = bench_models(url)?,
    }
    let engine_settings = EngineSettings {
        planner_tier: TIER.into(),
        synthesis: false,
        ..EngineSettings::default()
    };
    let engine = Engine::new(store.clone(), catalog, models, engine_settings)?;
    let mut settings = WorkerSettings::new(TIER, format!("bench-{}", std::process::id()));
    settings.concurrency = args.concurrency.max(1);
    settings.idle_wait = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run_worker(
        store,
        engine.executor().clone(),
        settings,
        shutdown.clone(),
    ));
    println!("ready");
    planex_app::shutdown_signal().await;
    shutdown.cancel();
    let _ = handle.await;
    Ok(ExitCode::SUCCESS)
}

/// The bench tier's model behind the simulator at `endpoint`, as the engine builds it.
fn bench_models(endpoint: &str) -> Result<Models> {
    let settings = Settings::from_toml(&bench_config(endpoint))?;
    let client = planex_llm::default_client()?;
    Ok(Models::from_tier_set(&TierSet::from_configs(
        settings.tiers,
        &client,
    )?))
}

/// Claims up to `concurrency` steps at a time and completes each at once, concurrently.
async fn noop_worker(store: Arc<dyn Store>, concurrency: usize) -> Result<ExitCode> {
    let worker = format!("noop-{}", std::process::id());
    println!("ready");
    let stop = planex_app::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let claimed = tokio::select! {
            claimed = store.claim(TIER, &worker, concurrency.max(1), Duration::from_secs(30), Duration::from_secs(1)) => claimed?,
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
        };
        let completions = claimed.into_iter().map(|lease| {
            let store = store.clone();
            async move {
                let outcome = planex_store::StepOutcome::Succeeded {
                    result: serde_json::json!("ok"),
                    attempts: 1,
                    calls: Vec::new(),
                };
                store.complete(&lease, outcome).await
            }
        });
        for completion in futures::future::join_all(completions).await {
            completion?;
        }
    }
}
