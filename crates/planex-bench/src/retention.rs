//! `planex-bench retention`: a bounded load of 10-step tasks (in-process null models, so tasks
//! finish as fast as the store allows) on the memory store with a byte cap, or on a private Redis
//! with a short task TTL, sampling the process's RSS and what the store keeps every few seconds:
//! memory must go flat once the cap (or the TTL) is reached (docs/BENCHMARKS.md, retention).

use crate::bed::null_bed_on;
use anyhow::{Context, Result, bail};
use planex_engine::TaskRequest;
use planex_store::{MemoryStore, MemoryStoreOptions, RedisStore, RedisStoreOptions, Store};
use planex_testkit::redis::RedisServer;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `planex-bench retention …`.
#[derive(clap::Args)]
pub(crate) struct RetentionArgs {
    /// `memory` (byte cap) or `redis` (a private redis-server; finished tasks expire).
    #[arg(long, default_value = "memory")]
    store: String,
    /// How long the load runs (at most 600 s).
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Memory store: the finished tasks' byte cap, in MiB.
    #[arg(long, default_value_t = 16)]
    cap_mib: usize,
    /// Redis: how long finished tasks are kept, in seconds.
    #[arg(long, default_value_t = 20)]
    ttl_secs: u64,
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    every: u64,
}

/// The store under load, and its concrete handle for reading what it keeps.
type Stores = (
    Arc<dyn Store>,
    Option<Arc<MemoryStore>>,
    Option<Arc<RedisStore>>,
);

/// What one sample saw.
struct Sample {
    at: Duration,
    tasks: u64,
    rss: u64,
    kept: String,
}

/// Runs the load and prints the samples and the per-task sizes.
pub(crate) async fn run(args: RetentionArgs) -> Result<ExitCode> {
    if !(1..=600).contains(&args.secs) || args.concurrency == 0 || args.every == 0 {
        bail!("--secs must be 1 to 600, --concurrency and --every at least 1");
    }
    let mut redis_server = None;
    let (store, memory, redis): Stores = match args.store.as_str() {
        "memory" => {
            let memory = Arc::new(MemoryStore::with_options(MemoryStoreOptions {
                finished_task_ttl: None,
                max_finished_bytes: args.cap_mib * 1024 * 1024,
                ..MemoryStoreOptions::default()
            }));
            (memory.clone(), Some(memory), None)
        }
        "redis" => {
            let server = RedisServer::start().context("cannot start a private redis-server")?;
            let store = Arc::new(
                RedisStore::connect_with(
                    &server.url(),
                    RedisStoreOptions {
                        finished_task_ttl: Some(Duration::from_secs(args.ttl_secs.max(1))),
                        ..RedisStoreOptions::default()
                    },
                )
                .await?,
            );
            redis_server = Some(server);
            (store.clone(), None, Some(store))
        }
        other => bail!("--store {other:?}: use memory or redis"),
    };
    let bed = null_bed_on(store).await?;
    let engine = bed.engine().clone();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (engine, done) = (engine.clone(), done.clone());
        load.spawn(async move {
            while Instant::now() < deadline {
                // (The bed's probes keep every call's span until the sampler drops them.)
                let request = TaskRequest {
                    task: "benchmark task".into(),
                    synthesis: Some(false),
                    ..TaskRequest::default()
                };
                engine.run(request, Duration::from_secs(60)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    let client = match &redis_server {
        Some(server) => Some(
            redis::Client::open(server.url())?
                .get_multiplexed_async_connection()
                .await?,
        ),
        None => None,
    };
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(args.every));
    loop {
        ticks.tick().await;
        bed.discard_spans();
        let kept = match (&memory, &client) {
            (Some(memory), _) => {
                let (tasks, bytes) = memory.retained_finished();
                format!(
                    "{tasks} finished tasks kept, {:.1} MiB accounted",
                    mib(bytes as u64)
                )
            }
            (_, Some(conn)) => {
                let mut conn = conn.clone();
                let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
                let info: String = redis::cmd("INFO")
                    .arg("memory")
                    .query_async(&mut conn)
                    .await?;
                format!(
                    "{keys} keys, used_memory {:.1} MiB",
                    mib(info_field(&info, "used_memory"))
                )
            }
            _ => String::new(),
        };
        samples.push(Sample {
            at: started.elapsed(),
            tasks: done.load(Ordering::Relaxed),
            rss: rss_bytes(),
            kept,
        });
        if Instant::now() >= deadline {
            break;
        }
    }
    while let Some(outcome) = load.join_next().await {
        outcome??;
    }
    println!(
        "planex-bench retention: {} store, {} s, {} tasks in flight, 10-step tasks, null models",
        args.store, args.secs, args.concurrency
    );
    println!("{:>6}  {:>8}  {:>8}  kept", "t (s)", "tasks", "RSS MiB");
    for s in &samples {
        println!(
            "{:>6.0}  {:>8}  {:>8.1}  {}",
            s.at.as_secs_f64(),
            s.tasks,
            mib(s.rss),
            s.kept
        );
    }
    if let Some(memory) = &memory {
        let (tasks, bytes) = memory.retained_finished();
        if let Some(per_task) = bytes.checked_div(tasks) {
            println!("bytes per finished task (the store's accounting): {per_task}");
        }
    }
    if let (Some(redis), Some(conn)) = (&redis, &client) {
        let mut conn = conn.clone();
        println!("{}", redis_task_bytes(redis, &mut conn).await?);
    }
    bed.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The Redis memory of the most recent finished task, per key (`MEMORY USAGE`).
async fn redis_task_bytes(
    redis: &RedisStore,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<String> {
    let page = redis
        .list_tasks(&planex_store::TaskQuery {
            tenant: None,
            status: None,
            after: None,
            limit: 1,
        })
        .await?;
    let Some(task) = page.tasks.first() else {
        return Ok("no finished task left to measure".into());
    };
    let pattern = format!("px:task:{{{}}}*", task.task_id);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(conn).await?;
    let mut parts = Vec::new();
    let mut total = 0;
    for key in keys {
        let bytes: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query_async(conn)
            .await?;
        total += bytes;
        parts.push(format!("{key}: {bytes}"));
    }
    Ok(format!(
        "Redis bytes of one finished task: {total} ({})",
        parts.join(", ")
    ))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// This process's resident set size (`/proc/self/statm`, 4 KiB pages); 0 where unreadable.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// A numeric field of `INFO` output.
fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
