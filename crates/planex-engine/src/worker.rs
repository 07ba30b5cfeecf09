//! Per-tier workers: claim ready steps from the store, run them, report outcomes.
//!
//! Key decisions: a worker claims only as many steps as it has free concurrency slots, so a busy
//! worker never hoards steps another could run; each running step's lease is renewed at a third of its
//! length, so a long step is not redelivered while its worker is alive; on shutdown a worker stops
//! claiming, lets running steps finish for `drain_timeout`, and then releases every step it still
//! holds (those it had to abort, and those whose outcome it could not record), so a rolling restart
//! hands them to other workers at once instead of after a lease expiry, without counting a delivery;
//! each worker beats (`Store::heartbeat`, one key per worker) and reaps the workers whose heartbeat
//! lapsed, so the steps of a worker killed with -9 are redelivered within seconds, not a lease.

use crate::Executor;
use crate::held::HeldLeases;
use planex_llm::CallContext;
use planex_store::{Completion, StepLease, Store, TaskStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings of one tier's worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The tier whose ready queue it serves.
    pub tier: String,
    /// A name unique to this worker (shown in events and dead letters).
    pub worker_id: String,
    /// Steps run at once.
    pub concurrency: usize,
    /// Lease length; renewed while the step runs.
    pub lease: Duration,
    /// How long one claim waits for work before checking for shutdown again.
    pub idle_wait: Duration,
    /// On shutdown, how long running steps may take to finish before they are released.
    pub drain_timeout: Duration,
    /// How often the worker says it is alive (`Store::heartbeat`, lapsing after
    /// [`HEARTBEAT_LAPSES_AFTER`] beats) and, every few beats, hands the steps of workers whose
    /// heartbeat lapsed to the next claim (`Store::reap_dead_workers`).
    pub heartbeat: Duration,
}

/// The least time a stopping worker gives itself to hand back the steps it holds, even when the
/// drain took all of `drain_timeout`.
pub const HANDBACK_MIN: Duration = Duration::from_secs(1);

/// A worker's heartbeat lapses after this many missed beats.
pub const HEARTBEAT_LAPSES_AFTER: u32 = 5;

/// Every this many beats a worker reaps its tier's dead workers (about once a lapse).
const REAP_EVERY: u32 = 5;

impl WorkerSettings {
    /// The default lease length.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
    /// The default heartbeat interval: a killed worker's steps are redelivered within about
    /// 5 to 6 s (the heartbeat lapsing, then the next reap), not the 30 s lease.
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

    /// Defaults for a tier: 32 concurrent steps, 30 s leases.
    pub fn new(tier: impl Into<String>, worker_id: impl Into<String>) -> Self {
        WorkerSettings {
            tier: tier.into(),
            worker_id: worker_id.into(),
            concurrency: 32,
            lease: Self::DEFAULT_LEASE,
            idle_wait: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            heartbeat: Self::DEFAULT_HEARTBEAT,
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Beats for the worker until dropped (aborted), reaping dead workers every [`REAP_EVERY`] beats;
/// the first beat was sent before the worker's first claim. Each beat also reports the rolling
/// TTFT of every tier this process has called (its own, and tiers it escalated to), for
/// `/v1/scaling` of API replicas that make no calls to those tiers.
fn spawn_heartbeat(
    store: Arc<dyn Store>,
    settings: &WorkerSettings,
    models: crate::Models,
) -> tokio::task::JoinHandle<()> {
    let (tier, worker, every) = (
        settings.tier.clone(),
        settings.worker_id.clone(),
        settings.heartbeat.max(Duration::from_millis(10)),
    );
    tokio::spawn(async move {
        let mut beats: u32 = 0;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            if let Err(error) = store
                .heartbeat(&tier, &worker, every * HEARTBEAT_LAPSES_AFTER)
                .await
            {
                tracing::warn!(%tier, error = %planex_core::cause::ErrorChain(&error), "heartbeat failed; retrying at the next beat");
            }
            for called in models.names() {
                let model = models.get(&called).ok().map(|m| m.as_ref());
                let Some(report) = ttft_report(model, &worker) else {
                    continue;
                };
                if let Err(error) = store
                    .report_ttft(&called, &report, every * HEARTBEAT_LAPSES_AFTER)
                    .await
                {
                    // Debug only: a lost store is logged by the store's outage tracker and by
                    // the heartbeat above; this would repeat it once a second per tier.
                    tracing::debug!(tier = %called, error = %planex_core::cause::ErrorChain(&error), "could not report a tier's TTFT; retrying at the next beat");
                }
            }
            beats = beats.wrapping_add(1);
            if beats.is_multiple_of(REAP_EVERY) {
                match store.reap_dead_workers(&tier).await {
                    Ok(0) => {}
                    Ok(reaped) => {
                        tracing::info!(%tier, reaped, "redelivering the steps of workers whose heartbeat lapsed")
                    }
                    Err(error) => {
                        tracing::warn!(%tier, error = %planex_core::cause::ErrorChain(&error), "could not reap dead workers")
                    }
                }
            }
        }
    })
}

/// The TTFT report of `worker` from `model`'s rolling window, when it has samples.
fn ttft_report(
    model: Option<&dyn planex_llm::ChatModel>,
    worker: &str,
) -> Option<planex_store::WorkerTtft> {
    let ttft = model?.status()?.ttft;
    Some(planex_store::WorkerTtft {
        worker: worker.to_owned(),
        p95: ttft.p95?,
        samples: ttft.samples,
    })
}

/// In-process workers, one per tier with work ([`crate::Engine::spawn_worker_pool`]).
#[derive(Debug, Clone)]
pub struct WorkerPool {
    /// Steps each tier's worker runs at once.
    pub concurrency: usize,
    /// Workers are named `{name_prefix}-{tier}`.
    pub name_prefix: String,
    /// On shutdown, how long running steps may take to finish before they are released.
    pub drain_timeout: Duration,
}

impl Default for WorkerPool {
    fn default() -> Self {
        let defaults = WorkerSettings::new("", "");
        WorkerPool {
            concurrency: defaults.concurrency,
            name_prefix: "local".into(),
            drain_timeout: defaults.drain_timeout,
        }
    }
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerExit {
    /// Steps it still held when it stopped and released back to their ready queue.
    pub released: usize,
}

/// Runs a worker until `shutdown` is cancelled, then drains: running steps get `drain_timeout` to
/// finish, and every step still held after that is released.
pub async fn run_worker(
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) -> WorkerExit {
    let held = Arc::new(HeldLeases::default());
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut running: JoinSet<()> = JoinSet::new();
    // Alive before the first claim, so no reaper takes this worker for a dead one.
    let lapse = settings.heartbeat * HEARTBEAT_LAPSES_AFTER;
    if let Err(error) = store
        .heartbeat(&settings.tier, &settings.worker_id, lapse)
        .await
    {
        tracing::warn!(tier = %settings.tier, error = %planex_core::cause::ErrorChain(&error), "first heartbeat failed; retrying");
    }
    // Aborted when this function returns or its future is dropped: a stopped worker stops beating.
    let _beating = AbortOnDrop(spawn_heartbeat(
        store.clone(),
        &settings,
        executor.models.clone(),
    ));
    loop {
        // Wait for at least one free slot before asking for work.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            _ = shutdown.cancelled() => break,
        };
        let free = 1 + slots.available_permits();
        let claimed = tokio::select! {
            claimed = store.claim(&settings.tier, &settings.worker_id, free, settings.lease, settings.idle_wait) => claimed,
            _ = shutdown.cancelled() => break,
        };
        while running.try_join_next().is_some() {}
        let leases = match claimed {
            Ok(leases) => leases,
            Err(error) => {
                tracing::warn!(tier = %settings.tier, error = %planex_core::cause::ErrorChain(&error), "claim failed; retrying");
                drop(first);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
        };
        let mut first = Some(first);
        for lease in leases {
            held.hold(&lease);
            // `free` slots were counted with this loop as their only taker, so each try succeeds.
            let permit = match first.take() {
                Some(p) => p,
                None => match slots.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        held.release(store.as_ref(), &lease).await;
                        continue;
                    }
                },
            };
            let (store, executor, lease_len) = (store.clone(), executor.clone(), settings.lease);
            let held = held.clone();
            running.spawn(async move {
                if run_one(store, executor, &lease, lease_len).await {
                    held.forget(&lease);
                }
                drop(permit);
            });
        }
    }
    // Drain: running steps get `drain_timeout` to finish; whatever is left is aborted and released,
    // so another worker takes it at once. Handing steps back is bounded too (what is left of the
    // drain time, at least HANDBACK_MIN): with the store down, the worker still exits in time and
    // the leases it could not give back expire instead.
    let deadline = tokio::time::Instant::now() + settings.drain_timeout;
    let drained = tokio::time::timeout_at(deadline, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(tier = %settings.tier, left = running.len(), "drain timeout: aborting running steps");
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
    let handback = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(HANDBACK_MIN);
    let held_now = held.len();
    let released = match tokio::time::timeout(handback, held.release_all(store.as_ref())).await {
        Ok(released) => released,
        Err(_) => {
            tracing::warn!(tier = %settings.tier, held = held_now, "could not hand back the steps still held in time (is the store reachable?); their leases expire and they are redelivered");
            0
        }
    };
    if released > 0 {
        tracing::info!(tier = %settings.tier, released, "released unfinished steps on shutdown");
    }
    WorkerExit { released }
}

/// Runs one step, renewing its lease while it runs, and records its outcome; returns whether the
/// outcome was recorded (otherwise the worker still holds the lease).
async fn run_one(
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    lease: &StepLease,
    lease_len: Duration,
) -> bool {
    let started = Instant::now();
    let (deltas, answer_stream) = crate::answer_stream::start(&store, lease).unzip();
    let outcome = {
        let ctx = CallContext {
            request_id: Some(format!("{}-{}", lease.task_id, lease.spec.step.step_id)),
            deltas,
        };
        let run = executor.run(lease, &ctx);
        tokio::pin!(run);
        // The first renewal is due a third of a lease from now; `interval` would tick at once and
        // a `tick().await` to skip it costs a timer round (about 1 ms) before every step starts.
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + lease_len / 3, lease_len / 3);
        loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = renew.tick() => {
                    if let Ok(false) = store.extend_lease(lease, lease_len).await {
                        tracing::warn!(task = %lease.task_id, step = %lease.spec.step.step_id, "lease lost while running; the result may be a duplicate");
                    }
                }
            }
        }
    };
    // The sink went with the call's context: publish its last deltas before the completion.
    if let Some(answer_stream) = answer_stream {
        answer_stream.flushed().await;
    }
    let tier = lease.spec.tier.clone();
    let tool = lease.spec.step.tool_name.clone();
    metrics::histogram!("step_duration_seconds", "tier" => tier, "tool" => tool.clone())
        .record(started.elapsed().as_secs_f64());
    let (attempts, failed) = match &outcome {
        planex_store::StepOutcome::Succeeded { attempts, .. } => (*attempts, false),
        planex_store::StepOutcome::Failed { attempts, .. } => (*attempts, true),
    };
    metrics::counter!("step_retries_total").increment(u64::from(attempts.saturating_sub(1)));
    if failed {
        metrics::counter!("dlq_total", "tool" => tool).increment(1);
    }
    match store.complete(lease, outcome).await {
        Ok(Completion::Applied {
            task_finished: Some(status),
            ..
        }) => {
            record_task_metrics(&*store, lease, status).await;
            true
        }
        Ok(_) => true,
        Err(error) => {
            tracing::error!(task = %lease.task_id, step = %lease.spec.step.step_id, error = %planex_core::cause::ErrorChain(&error), "could not record a step outcome; the lease will expire and the step will be redelivered");
            false
        }
    }
}

async fn record_task_metrics(store: &dyn Store, lease: &StepLease, status: TaskStatus) {
    if let Ok(Some(task)) = store.task_summary(&lease.task_id).await {
        let cost: f64 = task.cost.total.cost_usd.try_into().unwrap_or(0.0);
        metrics::histogram!("task_cost_usd").record(cost);
        metrics::histogram!("subtasks_per_task").record(task.steps as f64);
        tracing::info!(task = %lease.task_id, %status, "task finished");
    }
}
