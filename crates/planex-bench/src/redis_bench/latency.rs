//! `planex-bench redis latency`: what one dependency edge costs in the store, Redis against memory.
//!
//! Each iteration submits a two-step chain (step 1 on tier `lat-a`, step 2 on tier `lat-b`); this
//! task claims step 1 and completes it, while a second task sits blocked in `claim("lat-b")`. The
//! edge latency is the time from the `complete(step 1)` call to the blocked claimer holding step 2:
//! the completion round trip, the enqueue, the wake-up and the claim, i.e. exactly what the store
//! adds to every edge of a plan's critical path.

use super::args::LatencyArgs;
use super::plan::EMPTY_PLAN;
use super::server::BenchRedis;
use anyhow::{Context, Result, bail};
use planex_core::{Stage, Step, StepId, TaskId};
use planex_store::{
    MemoryStore, NewTask, RedisStore, RedisStoreOptions, StepLease, StepOutcome, StepSpec, Store,
};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const LONG: Duration = Duration::from_secs(30);

struct Samples {
    edge: Vec<Duration>,
    complete: Vec<Duration>,
}

fn spec(id: u32, deps: &[u32], tier: &str) -> StepSpec {
    StepSpec {
        step: Step {
            step_id: StepId(id),
            tool_name: "echo".into(),
            args: serde_json::Map::new(),
            depends_on: deps.iter().map(|d| StepId(*d)).collect(),
        },
        tier: tier.into(),
        stage: Stage::Step,
        tolerate_failed_deps: false,
    }
}

fn ok() -> StepOutcome {
    StepOutcome::Succeeded {
        result: serde_json::json!("ok"),
        attempts: 1,
        calls: Vec::new(),
    }
}

async fn measure(store: Arc<dyn Store>, args: &LatencyArgs) -> Result<Samples> {
    let (tx, mut rx) = mpsc::channel::<(Instant, StepLease)>(1);
    let claimer = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                let mut got = store
                    .claim("lat-b", "w2", 1, LONG, Duration::from_secs(10))
                    .await?;
                if let Some(lease) = got.pop()
                    && tx.send((Instant::now(), lease)).await.is_err()
                {
                    return Ok::<(), planex_store::StoreError>(());
                }
            }
        })
    };
    let mut samples = Samples {
        edge: Vec::with_capacity(args.iterations),
        complete: Vec::with_capacity(args.iterations),
    };
    for i in 0..args.warmup + args.iterations {
        let task_id = TaskId::new_random();
        store
            .create_task(NewTask {
                task_id: task_id.clone(),
                task: "latency".into(),
                tenant: None,
                cost_center: None,
                task_type: None,
                end_user: None,
                retry_of: None,
                trace_parent: None,
            })
            .await?;
        let steps = vec![spec(1, &[], "lat-a"), spec(2, &[1], "lat-b")];
        store
            .start_task(&task_id, &EMPTY_PLAN, steps, Vec::new())
            .await?;
        let first = store
            .claim("lat-a", "w1", 1, LONG, Duration::from_secs(5))
            .await?
            .pop()
            .context("step 1 was not claimable")?;
        let t0 = Instant::now();
        store.complete(&first, ok()).await?;
        let completed = Instant::now();
        let (claimed, second) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("the blocked claimer never got step 2")?
            .context("the claimer stopped")?;
        store.complete(&second, ok()).await?;
        if i >= args.warmup {
            samples.edge.push(claimed - t0);
            samples.complete.push(completed - t0);
        }
    }
    claimer.abort();
    Ok(samples)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}

fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort_unstable();
    serde_json::json!({
        "p50_us": percentile(&samples, 0.50),
        "p90_us": percentile(&samples, 0.90),
        "p99_us": percentile(&samples, 0.99),
        "max_us": percentile(&samples, 1.0),
    })
}

pub(crate) async fn run(args: LatencyArgs) -> Result<ExitCode> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let options = RedisStoreOptions {
        prefix: format!("lat{}", planex_store::now_ms()),
        ..RedisStoreOptions::default()
    };
    let server = BenchRedis::open(args.url.as_deref()).await?;
    let redis: Arc<dyn Store> = Arc::new(RedisStore::connect_with(server.url(), options).await?);
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let memory = measure(memory, &args).await?;
    let redis = measure(redis, &args).await?;
    let report = serde_json::json!({
        "iterations": args.iterations,
        "memory": { "edge": summary(memory.edge), "complete": summary(memory.complete) },
        "redis": { "edge": summary(redis.edge), "complete": summary(redis.complete) },
    });
    let edge = |store: &str, q: &str| report[store]["edge"][q].as_f64().unwrap_or(0.0);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Dependency edge (complete step 1 -> a blocked claimer holds step 2), {} edges per store:",
            args.iterations
        );
        println!("  store       p50 µs    p90 µs    p99 µs    max µs");
        for store in ["memory", "redis"] {
            println!(
                "  {store:<8} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
                edge(store, "p50_us"),
                edge(store, "p90_us"),
                edge(store, "p99_us"),
                edge(store, "max_us")
            );
        }
        println!(
            "  added by Redis at p99: {:.0} µs (target < 2000 µs)",
            edge("redis", "p99_us") - edge("memory", "p99_us")
        );
    }
    Ok(ExitCode::SUCCESS)
}
