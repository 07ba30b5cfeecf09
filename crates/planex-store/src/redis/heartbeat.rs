//! Worker heartbeats on Redis: one key per worker with a TTL (`P:hb:{TIER}:WORKER`), the set of a
//! tier's beating workers (`P:workers:{TIER}`), and the reaper (`lua/reap.lua`) that expires the
//! leases of workers whose key lapsed.

use super::errors::unavailable;
use super::shared::{Core, Retry};
use crate::error::StoreError;
use crate::workers::WorkerTtft;
use planex_core::{StepId, TaskId};
use std::time::Duration;

/// `Store::heartbeat`: one `SET PX` and one `SADD`, pipelined.
pub(super) async fn heartbeat(
    core: &Core,
    tier: &str,
    worker: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(core.keys.heartbeat(tier, worker))
        .arg(1)
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .cmd("SADD")
        .arg(core.keys.workers(tier))
        .arg(worker)
        .ignore();
    core.query_pipe::<()>(Retry::Idempotent, &pipe)
        .await
        .map_err(|e| unavailable("send a worker heartbeat", e))
}

/// `Store::live_workers`: the members of the tier's worker set whose heartbeat key still exists
/// (one `SMEMBERS`, then one `EXISTS` over their keys, which share the tier's hash tag).
pub(super) async fn live_workers(core: &Core, tier: &str) -> Result<usize, StoreError> {
    let mut members = redis::cmd("SMEMBERS");
    members.arg(core.keys.workers(tier));
    let workers: Vec<String> = core
        .query(Retry::Idempotent, &members)
        .await
        .map_err(|e| unavailable("list a tier's workers", e))?;
    if workers.is_empty() {
        return Ok(0);
    }
    let mut exists = redis::cmd("EXISTS");
    for worker in &workers {
        exists.arg(core.keys.heartbeat(tier, worker));
    }
    let live: u64 = core
        .query(Retry::Idempotent, &exists)
        .await
        .map_err(|e| unavailable("read workers' heartbeats", e))?;
    Ok(usize::try_from(live).unwrap_or(usize::MAX))
}

/// `Store::report_ttft`: one `SET PX` of `P95_MICROS:SAMPLES` and one `SADD` to the tier's
/// reporters, pipelined (a worker reports on tiers it escalated to, whose worker set it is not in).
pub(super) async fn report_ttft(
    core: &Core,
    tier: &str,
    report: &WorkerTtft,
    ttl: Duration,
) -> Result<(), StoreError> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let micros = u64::try_from(report.p95.as_micros()).unwrap_or(u64::MAX);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(core.keys.ttft(tier, &report.worker))
        .arg(format!("{micros}:{}", report.samples))
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .cmd("SADD")
        .arg(core.keys.ttft_reporters(tier))
        .arg(&report.worker)
        .ignore();
    core.query_pipe::<()>(Retry::Idempotent, &pipe)
        .await
        .map_err(|e| unavailable("report a worker's TTFT", e))
}

/// `Store::tier_ttft`: the tier's reporters, then one `MGET` of their reports (same hash tag);
/// reporters whose report lapsed leave the set. A report that does not parse is skipped (it is
/// replaced at the worker's next beat).
pub(super) async fn tier_ttft(core: &Core, tier: &str) -> Result<Vec<WorkerTtft>, StoreError> {
    let mut members = redis::cmd("SMEMBERS");
    members.arg(core.keys.ttft_reporters(tier));
    let workers: Vec<String> = core
        .query(Retry::Idempotent, &members)
        .await
        .map_err(|e| unavailable("list a tier's workers", e))?;
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let mut get = redis::cmd("MGET");
    for worker in &workers {
        get.arg(core.keys.ttft(tier, worker));
    }
    let reports: Vec<Option<String>> = core
        .query(Retry::Idempotent, &get)
        .await
        .map_err(|e| unavailable("read workers' TTFT reports", e))?;
    let lapsed: Vec<&String> = workers
        .iter()
        .zip(&reports)
        .filter(|(_, report)| report.is_none())
        .map(|(worker, _)| worker)
        .collect();
    if !lapsed.is_empty() {
        let mut forget = redis::cmd("SREM");
        forget.arg(core.keys.ttft_reporters(tier)).arg(lapsed);
        core.query::<()>(Retry::Idempotent, &forget)
            .await
            .map_err(|e| unavailable("forget lapsed TTFT reports", e))?;
    }
    Ok(workers
        .into_iter()
        .zip(reports)
        .filter_map(|(worker, report)| {
            let (micros, samples) = report?
                .split_once(':')
                .map(|(m, s)| (m.to_owned(), s.to_owned()))?;
            Some(WorkerTtft {
                worker,
                p95: Duration::from_micros(micros.parse().ok()?),
                samples: samples.parse().ok()?,
            })
        })
        .collect())
}

/// `Store::reap_dead_workers`.
pub(super) async fn reap_dead_workers(core: &Core, tier: &str) -> Result<usize, StoreError> {
    let mut invocation = core.invocation(&core.scripts.reap);
    invocation.arg(tier);
    let reaped: i64 = core
        .invoke(Retry::Idempotent, &invocation)
        .await
        .map_err(|e| unavailable("redeliver the steps of dead workers", e))?;
    Ok(usize::try_from(reaped).unwrap_or(0))
}

/// Forgets a worker that stopped cleanly: its heartbeat and its place in the tier's set.
pub(super) async fn forget(core: &Core, tier: &str, worker: &str) -> Result<(), StoreError> {
    let mut pipe = redis::pipe();
    pipe.cmd("DEL")
        .arg(core.keys.heartbeat(tier, worker))
        .arg(core.keys.ttft(tier, worker))
        .ignore()
        .cmd("SREM")
        .arg(core.keys.ttft_reporters(tier))
        .arg(worker)
        .ignore()
        .cmd("SREM")
        .arg(core.keys.workers(tier))
        .arg(worker)
        .ignore();
    core.query_pipe::<()>(Retry::Idempotent, &pipe)
        .await
        .map_err(|e| unavailable("forget a worker's heartbeat", e))
}

/// The consumer group every tier's ready stream is read by (`lua/common.lua`'s `GROUP`).
const GROUP: &str = "workers";

/// `RedisStore::steps_held_by`: the worker's pending entries in its tier's ready stream, each read
/// for its task (`t`) and step (`s`).
pub(super) async fn steps_held_by(
    core: &Core,
    tier: &str,
    worker: &str,
) -> Result<Vec<(TaskId, StepId)>, StoreError> {
    let stream = core.keys.ready(tier);
    let mut pending = redis::cmd("XPENDING");
    pending
        .arg(&stream)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(HELD_LIMIT)
        .arg(worker);
    let pending: Vec<(String, String, u64, u64)> = core
        .query(Retry::Idempotent, &pending)
        .await
        .map_err(|e| unavailable("list the steps a worker holds", e))?;
    let mut held = Vec::with_capacity(pending.len());
    for (entry, ..) in pending {
        let mut range = redis::cmd("XRANGE");
        range.arg(&stream).arg(&entry).arg(&entry);
        let found: Vec<(String, Vec<String>)> = core
            .query(Retry::Idempotent, &range)
            .await
            .map_err(|e| unavailable("read a held step's entry", e))?;
        for (_, fields) in found {
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|pair| pair.first().is_some_and(|f| f == name))
                    .and_then(|pair| pair.get(1).cloned())
            };
            if let (Some(task), Some(step)) = (field("t"), field("s").and_then(|s| s.parse().ok()))
            {
                held.push((TaskId(task), StepId(step)));
            }
        }
    }
    Ok(held)
}

/// The most held steps [`steps_held_by`] lists (a worker holds at most its concurrency).
const HELD_LIMIT: usize = 10_000;
