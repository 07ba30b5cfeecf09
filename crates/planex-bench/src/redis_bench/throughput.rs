//! `planex-bench redis throughput`: W worker processes, tasks submitted by this process, steps per second
//! and where the time goes (Redis commandstats, CPU seconds from /proc).

use super::args::{ModelKind, ThroughputArgs};
use super::plan::{STEPS_PER_TASK, submit};
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use planex_store::{RedisStore, RedisStoreOptions, TaskStatus, wait_for_status};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redis-side counters: command calls and microseconds, and the server's CPU seconds.
struct ServerStats {
    commands: HashMap<String, (u64, u64)>,
    cpu_secs: f64,
}

async fn server_stats(url: &str) -> Result<ServerStats> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
    let mut stats = ServerStats {
        commands: HashMap::new(),
        cpu_secs: 0.0,
    };
    for line in info.lines() {
        if let Some(rest) = line.strip_prefix("cmdstat_")
            && let Some((name, fields)) = rest.split_once(':')
        {
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            stats
                .commands
                .insert(name.to_owned(), (field("calls="), field("usec=")));
        }
        for key in ["used_cpu_sys:", "used_cpu_user:"] {
            if let Some(v) = line.strip_prefix(key) {
                stats.cpu_secs += v.trim().parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    Ok(stats)
}

/// CPU seconds (user + system) a process has used, from /proc (Linux).
fn process_cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name); 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// The benchmark's worker processes, killed when dropped: on success and on every error path,
/// so no worker outlives the benchmark.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_worker(
    args: &ThroughputArgs,
    url: &str,
    model: ModelKind,
    prefix: &str,
    model_url: Option<&str>,
) -> Result<Child> {
    let exe = std::env::current_exe().context("locating the planex-bench binary")?;
    let mut command = Command::new(exe);
    command
        .args(["redis", "worker", "--url", url, "--prefix", prefix])
        .args(["--concurrency", &args.concurrency.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = model_url {
        command.args(["--model-url", url]);
    }
    match model {
        ModelKind::Noop => {
            command.arg("--noop");
        }
        ModelKind::Bare | ModelKind::BareSim => {
            command.args(["--bare-total", &(args.tasks * STEPS_PER_TASK).to_string()]);
        }
        ModelKind::Null | ModelKind::Sim => {}
    }
    let mut child = command
        .spawn()
        .context("starting a benchmark worker process")?;
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the worker's readiness line")?;
    if line.trim() != "ready" {
        let _ = child.kill();
        bail!("the benchmark worker did not start (it said {line:?})");
    }
    Ok(child)
}

/// Runs `tasks` bench tasks as `clients` closed-loop clients: each submits a task, waits for its
/// final status (by its events) and submits the next; returns how many did not complete.
async fn submit_and_wait(store: &Arc<RedisStore>, tasks: usize, clients: usize) -> Result<usize> {
    let outcomes: Vec<Result<bool>> = futures::stream::iter(0..tasks)
        .map(|i| {
            let store = store.clone();
            async move {
                let id = submit(&*store, &format!("bench task {i}")).await?;
                let status = wait_for_status(&*store, &id, Duration::from_secs(300)).await?;
                Ok(status == Some(TaskStatus::Complete))
            }
        })
        .buffer_unordered(clients.max(1))
        .collect()
        .await;
    let mut incomplete = 0;
    for outcome in outcomes {
        if !outcome? {
            incomplete += 1;
        }
    }
    Ok(incomplete)
}

/// One measurement of `model` on the Redis at `url`, printed.
pub(super) async fn run(args: &ThroughputArgs, url: &str, model: ModelKind) -> Result<ExitCode> {
    let report = measure(args, url, model).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// One measurement of one variant on the Redis at `url`; its keys are deleted afterwards, so runs
/// can follow each other on one Redis.
pub(super) async fn measure(
    args: &ThroughputArgs,
    url: &str,
    model: ModelKind,
) -> Result<serde_json::Value> {
    let prefix = format!("bench{}", planex_store::now_ms());
    let options = RedisStoreOptions {
        prefix: prefix.clone(),
        ..RedisStoreOptions::default()
    };
    let store = Arc::new(RedisStore::connect_with(url, options).await?);
    let sim = match model {
        ModelKind::Noop | ModelKind::Null | ModelKind::Bare => None,
        ModelKind::Sim | ModelKind::BareSim => Some(
            planex_sim::SimServer::start(planex_sim::SimConfig {
                port: 0,
                model: "bench-model".into(),
                max_concurrency: 4096,
                output_tokens: 8,
                ..planex_sim::SimConfig::default()
            })
            .await?,
        ),
    };
    let model_url = sim.as_ref().map(|s| s.base_url());
    let bare = matches!(model, ModelKind::Bare | ModelKind::BareSim);
    if bare {
        super::bare::prepare(url, &prefix).await?;
    }
    let mut children = Workers(Vec::new());
    for _ in 0..args.workers {
        children.0.push(spawn_worker(
            args,
            url,
            model,
            &prefix,
            model_url.as_deref(),
        )?);
    }
    let before = server_stats(url).await?;
    let worker_cpu_before: f64 = children.0.iter().map(|c| process_cpu_secs(c.id())).sum();
    let own_cpu_before = process_cpu_secs(std::process::id());
    let started = Instant::now();
    let incomplete = if bare {
        super::bare::submit_and_wait(url, &prefix, args.tasks * STEPS_PER_TASK).await?;
        0
    } else {
        submit_and_wait(&store, args.tasks, args.clients.unwrap_or(args.tasks)).await?
    };
    let elapsed = started.elapsed();
    let after = server_stats(url).await?;
    let worker_cpu: f64 = children
        .0
        .iter()
        .map(|c| process_cpu_secs(c.id()))
        .sum::<f64>()
        - worker_cpu_before;
    let own_cpu = process_cpu_secs(std::process::id()) - own_cpu_before;
    drop(children);
    // Chat requests the simulator received (sim and bare-sim only).
    let model_calls = sim.as_ref().map(|s| s.stats().requests_total);
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    drop(store);
    forget(url, &prefix).await?;
    if incomplete > 0 {
        bail!("{incomplete} of {} tasks did not complete", args.tasks);
    }
    let steps = (args.tasks * STEPS_PER_TASK) as f64;
    let delta = |name: &str| {
        let (c1, u1) = after.commands.get(name).copied().unwrap_or_default();
        let (c0, u0) = before.commands.get(name).copied().unwrap_or_default();
        (c1.saturating_sub(c0) as f64, u1.saturating_sub(u0) as f64)
    };
    let (scripts, script_usec) = {
        let (a, b) = delta("evalsha");
        let (c, d) = delta("eval");
        (a + c, b + d)
    };
    let (blocking, _) = delta("xread");
    // Reads: the parent's task waits (EXISTS, SUBSCRIBE, LRANGE of the history, UNSUBSCRIBE),
    // `task_summary`/`get_task` pipelines (MULTI … EXEC, one round trip; the LRANGE inside is not
    // another one) and the plan staging pipelines (DEL, HSET, EXPIRE: one DEL each). EXISTS also
    // runs once per task inside the create script, so one per task is subtracted.
    let pipelines = delta("multi").0;
    let reads = (delta("exists").0 - args.tasks as f64).max(0.0)
        + delta("del").0
        + delta("subscribe").0
        + delta("unsubscribe").0
        + pipelines
        + (delta("lrange").0 - pipelines).max(0.0);
    let round_trips = if bare {
        // XREADGROUP calls, XACK+INCRBY pipelines, XADD pipelines of 500.
        delta("xreadgroup").0 + delta("xack").0 + (delta("xadd").0 / 500.0).ceil()
    } else {
        scripts + blocking + reads
    };
    let report = serde_json::json!({
        "workers": args.workers,
        "variant": model.name(),
        "model": match model {
            ModelKind::Noop => "none (no-op steps: store only)",
            ModelKind::Null => "null (engine executor, in-process model)",
            ModelKind::Sim => "zero-latency simulator over loopback HTTP",
            ModelKind::Bare => "none: a bare job queue (XADD, XREADGROUP, XACK), no planex",
            ModelKind::BareSim => {
                "a bare job queue, each job one call to the zero-latency simulator over loopback HTTP, no planex"
            }
        },
        "tasks": args.tasks,
        "steps": steps,
        "model_calls": model_calls,
        "concurrency_per_worker": args.concurrency,
        "clients": args.clients.unwrap_or(args.tasks),
        "elapsed_s": elapsed.as_secs_f64(),
        "steps_per_s": steps / elapsed.as_secs_f64(),
        "round_trips_per_step": round_trips / steps,
        "script_calls_per_step": scripts / steps,
        "blocking_reads_per_step": blocking / steps,
        "read_round_trips_per_step": reads / steps,
        "redis_script_us_per_step": script_usec / steps,
        "cpu_us_per_step": {
            "redis_server": (after.cpu_secs - before.cpu_secs) * 1e6 / steps,
            "worker_processes": worker_cpu * 1e6 / steps,
            "submitter_and_simulator": own_cpu * 1e6 / steps,
        },
    });
    Ok(report)
}

/// Deletes every key under PREFIX (the benchmark's own: tasks, streams, leases, bare queue).
async fn forget(url: &str, prefix: &str) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .context("listing the benchmark's keys to delete them")?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .context("deleting the benchmark's keys")?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The number at PATH in a report (0 where absent).
pub(super) fn number(report: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(report, |v, k| &v[*k])
        .as_f64()
        .unwrap_or(0.0)
}

fn print_report(report: &serde_json::Value) {
    let f = |path: &[&str]| number(report, path);
    println!(
        "Redis throughput: {} worker process(es), model {}, {} tasks x {STEPS_PER_TASK} steps",
        report["workers"], report["model"], report["tasks"]
    );
    println!(
        "  {:.0} steps/s ({:.2} s); {:.3} Redis round trips per step: {:.3} script calls, {:.3} blocking reads, {:.3} reads",
        f(&["steps_per_s"]),
        f(&["elapsed_s"]),
        f(&["round_trips_per_step"]),
        f(&["script_calls_per_step"]),
        f(&["blocking_reads_per_step"]),
        f(&["read_round_trips_per_step"])
    );
    println!(
        "  CPU per step: redis-server {:.1} µs (scripts {:.1} µs), workers {:.1} µs, submitter {:.1} µs",
        f(&["cpu_us_per_step", "redis_server"]),
        f(&["redis_script_us_per_step"]),
        f(&["cpu_us_per_step", "worker_processes"]),
        f(&["cpu_us_per_step", "submitter_and_simulator"])
    );
}
