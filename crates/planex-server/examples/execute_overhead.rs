//! Benchmark: the latency `POST /v1/execute` adds over calling the model server directly.
//!
//! An open-loop load generator (requests are *scheduled* at a fixed rate and each latency is
//! measured from its scheduled time, so a stall is not hidden by coordinated omission) sends the
//! same step straight to the simulator's `/v1/chat/completions` (the request body the tier client
//! would send, streamed) and through planex's `/v1/execute` (auth off, budget guard and metrics on,
//! as `planex serve` runs), alternating tick by tick so both see the same machine conditions. Everything is on 127.0.0.1; the run is bounded by
//! `--secs` and at most 512 requests in flight.
//!
//!     cargo run --release -p planex-server --example execute_overhead -- --rate 1000 --secs 10
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use planex_core::{Catalog, Decimal, LlmTool, Price, ToolKind, ToolSpec};
use planex_engine::{BudgetGuard, BudgetSettings, Engine, EngineSettings, Models};
use planex_llm::{Endpoint, Tier, TierConfig};
use planex_server::ServerSettings;
use planex_sim::{SimConfig, SimServer};
use planex_store::{MemoryLedger, MemoryStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const MAX_IN_FLIGHT: usize = 512;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    latencies: Vec<Duration>,
    errors: u64,
    dropped: u64,
}

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
) -> [Run; 2] {
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
        let (which, latency, ok) = handle.await.unwrap();
        if ok {
            runs[which].latencies.push(latency);
        } else {
            runs[which].errors += 1;
        }
    }
    for run in &mut runs {
        run.latencies.sort();
    }
    runs
}

#[tokio::main]
async fn main() {
    let rate = arg("--rate", 1000);
    let secs = arg("--secs", 10);
    let sim = SimServer::start(SimConfig {
        port: 0,
        model: "sim-executor".into(),
        max_concurrency: 1024,
        output_tokens: 32,
        ..SimConfig::default()
    })
    .await
    .unwrap();
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
        models.insert(Arc::new(Tier::new(config, client.clone()).unwrap()));
    }
    let tool = ToolSpec {
        name: "summarize".into(),
        description: "Summarize a text".into(),
        input_schema: serde_json::json!({"type": "object", "properties": {"text": {"type": "string", "minLength": 1}}, "required": ["text"], "additionalProperties": false}),
        output_schema: None,
        tier: "executor".into(),
        kind: ToolKind::Llm(LlmTool {
            system: None,
            prompt: "Summarize in at most five sentences:\n\n{text}".into(),
            max_tokens: 32,
        }),
    };
    let engine = Engine::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(Catalog::new(vec![tool]).unwrap()),
        models,
        EngineSettings::default(),
    )
    .budget(Arc::new(BudgetGuard::new(
        Arc::new(MemoryLedger::new()),
        BudgetSettings::default(),
    )))
    .build()
    .unwrap();
    let metrics = planex_server::metrics::install_recorder().ok();
    let state = planex_server::AppState::new(
        Arc::new(engine),
        ServerSettings::default(),
        Vec::new(),
        metrics,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(planex_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let text = "GPU clouds rent H200 nodes by the hour; L40S nodes cost a fifth as much.";
    // What the executor tier sends for this step (system prompt, rendered prompt, streaming).
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
    let (base, through) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let load_client = reqwest::Client::builder()
                .pool_max_idle_per_host(MAX_IN_FLIGHT)
                .build()
                .unwrap();
            let targets = [(direct_url.as_str(), direct), (via_url.as_str(), via)];
            // Warm up connections and code paths on both sides.
            load(&load_client, targets, rate, 1).await;
            let [base, through] = load(&load_client, targets, rate, secs).await;
            (base, through)
        })
    })
    .join()
    .unwrap();
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
    sim.shutdown().await;
}
