//! `planex-bench execute-overhead`: the latency `POST /v1/execute` adds over calling the model
//! server directly.
//!
//! An open-loop load generator (requests are *scheduled* at a fixed rate and each latency is
//! measured from its scheduled time, so a stall is not hidden by coordinated omission) sends the
//! same step straight to the simulator's `/v1/chat/completions` (the request body the tier client
//! would send, streamed) and through planex's `/v1/execute` (auth off, budget guard and metrics on,
//! as `planex serve` runs), alternating tick by tick so both see the same machine conditions. Everything is on 127.0.0.1; the run is bounded by
//! `--secs` and at most 512 requests in flight.
//!
//!     cargo run --release -p planex-bench -- execute-overhead --rate 1000 --secs 10
//!
//! planex is started as `planex serve` starts it, through `planex_app::App` (memory store and
//! ledger, no workers: `/v1/execute` runs the step in the request), with the two tiers given as
//! tier clients of the simulator.

use anyhow::{Context, Result, anyhow, bail};
use planex_app::config::ServiceSettings;
use planex_app::{App, Backend, Config, DEFAULT_CONFIG, Workers};
use planex_core::{Decimal, LlmTool, Price, ToolKind, ToolSpec};
use planex_engine::{BudgetSettings, CacheSettings, EngineSettings, Models};
use planex_llm::{Endpoint, Tier, TierConfig};
use planex_server::ServerSettings;
use planex_sim::{SimConfig, SimServer};
use planex_store::{MemoryLedger, MemoryPlanCache, MemoryStore};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const MAX_IN_FLIGHT: usize = 512;

/// Arguments of `planex-bench execute-overhead`.
#[derive(clap::Args)]
pub(crate) struct ExecuteOverheadArgs {
    /// Requests per second to each target (direct and via /v1/execute).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of timed load (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

/// The outcome of one target's requests.
struct Run {
    latencies: Vec<Duration>,
    errors: u64,
    dropped: u64,
}

/// The `p` quantile of `sorted`, in milliseconds (NaN when empty).
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Sends `rate` requests per second to each target for `secs` seconds, alternating between the
/// targets tick by tick so both see the same machine conditions.
async fn load(
    client: &reqwest::Client,
    targets: [(&str, &'static str); 2],
    rate: u64,
    secs: u64,
) -> Result<[Run; 2]> {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let interval = Duration::from_secs_f64(1.0 / (2 * rate) as f64);
    let total = 2 * rate * secs;
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    let mut dropped = [0u64; 2];
    for i in 0..total {
        let which = (i % 2) as usize;
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            dropped[which] += 1;
            continue;
        };
        let (url, body) = targets[which];
        let (client, url) = (client.clone(), url.to_owned());
        handles.push(tokio::spawn(async move {
            let result = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = match result {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            };
            drop(permit);
            (which, scheduled.elapsed(), ok)
        }));
    }
    let mut runs = [0, 1].map(|w| Run {
        latencies: Vec::with_capacity(handles.len() / 2),
        errors: 0,
        dropped: dropped[w],
    });
    for handle in handles {
        let (which, latency, ok) = handle.await.context("a load request task failed")?;
        if ok {
            runs[which].latencies.push(latency);
        } else {
            runs[which].errors += 1;
        }
    }
    for run in &mut runs {
        run.latencies.sort();
    }
    Ok(runs)
}

/// The one tool both targets run: `summarize` on the executor tier.
fn summarize_tool() -> ToolSpec {
    ToolSpec {
        name: "summarize".into(),
        description: "Summarize a text".into(),
        input_schema: serde_json::json!({"type": "object", "properties": {"text": {"type": "string", "minLength": 1}}, "required": ["text"], "additionalProperties": false}),
        output_schema: None,
        tier: "executor".into(),
        kind: ToolKind::Llm(LlmTool::new(
            "Summarize in at most five sentences:\n\n{text}",
            32,
        )),
    }
}

/// planex over `models` as `planex serve` runs it: default engine and server settings (auth off),
/// the budget guard on, no plan cache, a memory store and ledger, no workers.
async fn start_planex(models: Models) -> Result<App> {
    let mut config = Config::from_toml(DEFAULT_CONFIG)?;
    config.tools = vec![summarize_tool()];
    config.engine = EngineSettings::default();
    config.service = ServiceSettings {
        server: ServerSettings::default(),
        budget: BudgetSettings::default(),
        cache: CacheSettings {
            enabled: false,
            ..CacheSettings::default()
        },
    };
    let backend = Backend {
        store: Arc::new(MemoryStore::new()),
        ledger: Arc::new(MemoryLedger::new()),
        plan_cache: Arc::new(MemoryPlanCache::new(0)),
        drift: Arc::new(planex_store::MemoryDriftStore::new()),
    };
    Ok(App::builder(config)
        .models(models)
        .backend(backend)
        .workers(Workers::None)
        .start()
        .await?)
}

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: ExecuteOverheadArgs) -> Result<ExitCode> {
    let (rate, secs) = (args.rate, args.secs);
    if !(1..=100_000).contains(&rate) || !(1..=3_600).contains(&secs) {
        bail!("--rate must be between 1 and 100000 and --secs between 1 and 3600");
    }
    let sim = SimServer::start(SimConfig {
        port: 0,
        model: "sim-executor".into(),
        max_concurrency: 1024,
        output_tokens: 32,
        ..SimConfig::default()
    })
    .await?;
    let price = Price::GpuHour {
        usd_per_hour: Decimal::new(96, 2),
        tokens_per_second: Decimal::from(6000),
    };
    let client = reqwest::Client::new();
    let mut models = Models::new();
    for name in ["planner", "executor"] {
        let mut config = TierConfig::new(
            name,
            "sim-executor",
            vec![Endpoint::new(sim.base_url())],
            price.clone(),
        );
        config.max_concurrency = 1024;
        models.insert(Arc::new(Tier::new(config, client.clone())?));
    }
    let app = start_planex(models).await?;
    let metrics = planex_server::metrics::install_recorder().ok();
    let state = app.http_state(metrics);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(planex_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let text = "GPU clouds rent H200 nodes by the hour; L40S nodes cost a fifth as much.";
    // What the executor tier sends for this step (system prompt, rendered prompt, streaming).
    // Both bodies are leaked once, so every request task can send them without a copy.
    let direct: &'static str = Box::leak(
        serde_json::json!({
            "model": "sim-executor",
            "messages": [
                {"role": "system", "content": "You execute one step of a larger plan. Do exactly what the step asks, using only the given input. Be concise."},
                {"role": "user", "content": format!("Summarize in at most five sentences:\n\n{text}")},
            ],
            "max_tokens": 32,
            "stream": true,
            "stream_options": {"include_usage": true},
        })
        .to_string()
        .into_boxed_str(),
    );
    let via: &'static str = Box::leak(
        serde_json::json!({"tool_name": "summarize", "args": {"text": text}})
            .to_string()
            .into_boxed_str(),
    );
    let direct_url = format!("{}/chat/completions", sim.base_url());
    let via_url = format!("http://{addr}/v1/execute");
    // The load generator runs on its own single-threaded runtime, so the servers' tasks cannot
    // delay its schedule.
    let started = Instant::now();
    let (base, through) = std::thread::spawn(move || -> Result<(Run, Run)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let load_client = reqwest::Client::builder()
                .pool_max_idle_per_host(MAX_IN_FLIGHT)
                .build()?;
            let targets = [(direct_url.as_str(), direct), (via_url.as_str(), via)];
            // Warm up connections and code paths on both sides.
            load(&load_client, targets, rate, 1).await?;
            let [base, through] = load(&load_client, targets, rate, secs).await?;
            Ok((base, through))
        })
    })
    .join()
    .map_err(|_| anyhow!("the load generator thread panicked"))??;
    println!(
        "rate {rate}/s to each target, interleaved, for {secs} s ({:.1} s wall); in-flight cap {MAX_IN_FLIGHT}",
        started.elapsed().as_secs_f64()
    );
    println!("                         ok  errors dropped   p50 ms   p90 ms   p99 ms");
    for (name, run) in [
        ("direct to simulator", &base),
        ("via /v1/execute", &through),
    ] {
        println!(
            "{name:<20} {:>7} {:>7} {:>7} {:>8.3} {:>8.3} {:>8.3}",
            run.latencies.len(),
            run.errors,
            run.dropped,
            pct(&run.latencies, 0.5),
            pct(&run.latencies, 0.9),
            pct(&run.latencies, 0.99)
        );
    }
    println!(
        "added by planex       {:>32.3} {:>8.3} {:>8.3}",
        pct(&through.latencies, 0.5) - pct(&base.latencies, 0.5),
        pct(&through.latencies, 0.9) - pct(&base.latencies, 0.9),
        pct(&through.latencies, 0.99) - pct(&base.latencies, 0.99)
    );
    let _ = stop.send(());
    let _ = server.await;
    app.stop().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
