//! The Redis store: the same `Store` semantics as the memory backend, shared by many API replicas
//! and worker processes on many machines (DESIGN.md §6, docs/ARCHITECTURE.md).
//!
//! Key decisions:
//! - Every state change is one Lua script (`lua/*.lua`), so each is atomic on the server and costs
//!   one round trip; the completion script stores the result, drops the leases (one ZREM and one
//!   XACK per batch; acknowledged entries are trimmed by the claim script, not deleted one by
//!   one), decrements dependents, XADDs the newly ready ones, appends and publishes events and
//!   finishes the task.
//! - Ready steps are per-tier streams read by one consumer group with `XREADGROUP COUNT` (inside
//!   the claim script); leases are a per-tier sorted set of deadlines, so each claim may ask for
//!   its own lease length and expired leases are found in O(log n) and redelivered with `XCLAIM`,
//!   counting deliveries; past the bound a step is dead-lettered as poison.
//! - A claim that finds nothing blocks with `XREAD BLOCK` on a connection of its own (a pool of
//!   them), never on the shared multiplexed connection; it wakes on the next entry or the next
//!   lease deadline, so nothing polls.
//! - Completions are batched: concurrent `complete` calls of one process go to the server as one
//!   script call (see `complete.rs`), and retried over a reconnect, which is safe because a
//!   completion of a terminal step is a no-op.

mod claim;
mod codec;
mod complete;
mod errors;
mod events;
mod keys;
mod ledger;
mod ops;
mod scripts;

use crate::types::*;
use crate::{EventStream, Store};
use async_trait::async_trait;
pub(crate) use errors::{corrupt, corrupt_by, failed, unavailable, unavailable_because};
use keys::Keys;
use planex_core::cause::SharedSource;
use planex_core::{CallRecord, Plan, TaskId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use scripts::Scripts;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Settings of the Redis store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStoreOptions {
    /// Prefix of every key (`px` gives `px:task:{ID}`); distinct prefixes isolate deployments
    /// sharing one Redis.
    pub prefix: String,
    /// A step handed out this many times without completing is a poison step: it goes to the
    /// dead-letter stream instead of another worker.
    pub max_deliveries: u32,
    /// How long a finished task's keys are kept (`None`: forever).
    pub finished_task_ttl: Option<Duration>,
    /// Approximate cap on the dead-letter stream's length (`XADD MAXLEN ~`).
    pub dead_letter_cap: usize,
    /// How long one command may take before it counts as failed.
    pub response_timeout: Duration,
    /// Most outcomes recorded by one completion script call.
    pub complete_batch: usize,
    /// How long a completion keeps retrying while Redis is unreachable (a restart) before it
    /// gives up and leaves the step to lease expiry.
    pub reconnect_for: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        RedisStoreOptions {
            prefix: "px".into(),
            max_deliveries: 5,
            finished_task_ttl: Some(Duration::from_secs(7 * 24 * 3600)),
            dead_letter_cap: 10_000,
            response_timeout: Duration::from_secs(10),
            complete_batch: 64,
            reconnect_for: Duration::from_secs(30),
        }
    }
}

/// What every part of the store shares: the multiplexed connection, the scripts and the layout.
pub(crate) struct Core {
    conn: ConnectionManager,
    scripts: Scripts,
    keys: Keys,
    /// ARGV[1..4] of every script: prefix, finished-task TTL (s), dead-letter cap, delivery bound.
    base_args: [String; 4],
    options: RedisStoreOptions,
}

impl Core {
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A script invocation with the common arguments filled in.
    fn invocation<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for arg in &self.base_args {
            invocation.arg(arg);
        }
        invocation
    }
}

/// True when the command certainly never reached the server (refused, or the write failed), so
/// even an operation that is not idempotent may be sent again.
fn never_sent(error: &redis::RedisError) -> bool {
    use std::error::Error as _;
    error.is_connection_refusal()
        || error
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::NotConnected
                )
            })
}

/// Whether an operation may simply be sent again after a connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, and writes whose repetition changes nothing (claim, extend, release).
    Idempotent,
    /// Creations and bookings: resent only when the first try certainly never arrived.
    OnlyIfUnsent,
}

impl Core {
    /// Runs `attempt`, retrying with backoff for `reconnect_for` while Redis is unreachable (the
    /// connection manager reconnects in the background; the first command after a server restart
    /// fails with a broken pipe).
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        mode: Retry,
        mut attempt: F,
    ) -> Result<T, redis::RedisError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let give_up = tokio::time::Instant::now() + self.options.reconnect_for;
        let mut backoff = Duration::from_millis(20);
        loop {
            match attempt().await {
                Err(e)
                    if transient(&e)
                        && (mode == Retry::Idempotent || never_sent(&e))
                        && tokio::time::Instant::now() + backoff < give_up =>
                {
                    tracing::debug!(error = %e, "redis unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }
}

impl Core {
    /// Runs a script invocation under [`Core::retry`].
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        mode: Retry,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, redis::RedisError> {
        self.retry(mode, || {
            let mut conn = self.conn();
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await
    }

    /// Runs a command under [`Core::retry`].
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        mode: Retry,
        cmd: &redis::Cmd,
    ) -> Result<T, redis::RedisError> {
        self.retry(mode, || {
            let mut conn = self.conn();
            async move { cmd.query_async(&mut conn).await }
        })
        .await
    }

    /// Runs a pipeline under [`Core::retry`].
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        mode: Retry,
        pipe: &redis::Pipeline,
    ) -> Result<T, redis::RedisError> {
        self.retry(mode, || {
            let mut conn = self.conn();
            async move { pipe.query_async(&mut conn).await }
        })
        .await
    }
}

/// Takes planex's own query parameters off a Redis URL and applies them to `options`:
/// `prefix=NAME`, `max_deliveries=N`, `task_ttl_secs=N` (0: keep finished tasks forever). Other
/// parameters stay for the redis client.
fn url_options(
    url: &str,
    mut options: RedisStoreOptions,
) -> Result<(String, RedisStoreOptions), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), options));
    };
    let bad = |param: &str| {
        unavailable_because(format!(
            "invalid store URL parameter {param:?}: use prefix=NAME, max_deliveries=N (at least 1) or task_ttl_secs=N"
        ))
    };
    let mut rest = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "prefix" => options.prefix = value.to_owned(),
            "max_deliveries" => {
                options.max_deliveries = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad(param))?;
            }
            "task_ttl_secs" => {
                let secs: u64 = value.parse().map_err(|_| bad(param))?;
                options.finished_task_ttl = (secs > 0).then(|| Duration::from_secs(secs));
            }
            _ => rest.push(param),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, options))
}

/// `url` with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// True for errors a reconnect may cure (connection lost or refused, timeout, server loading).
pub(crate) fn transient(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading | redis::ServerErrorKind::TryAgain
            )
        )
}

/// The Redis-backed `Store`. Cheap to share behind an `Arc`; background tasks (completion
/// batching, event subscriptions) stop when it is dropped.
pub struct RedisStore {
    core: Arc<Core>,
    claims: claim::BlockingPool,
    completer: complete::Completer,
    events: Arc<events::EventHub>,
    ledger: redis::Script,
    _stop: DropGuard,
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`) with default options.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        Self::connect_with(url, RedisStoreOptions::default()).await
    }

    /// Connects to `url` with `options`, checking that the server answers. The URL may carry
    /// `?prefix=NAME&max_deliveries=N&task_ttl_secs=N`, which override `options`.
    pub async fn connect_with(
        url: &str,
        options: RedisStoreOptions,
    ) -> Result<RedisStore, StoreError> {
        let (url, options) = url_options(url, options)?;
        let url = url.as_str();
        let shown = redact(url);
        let client = redis::Client::open(url).map_err(|e| StoreError::Unavailable {
            what: format!(
                "invalid redis URL {shown:?}; use redis://[user:password@]host:port[/db]"
            ),
            source: Some(SharedSource::new(e)),
        })?;
        if options.prefix.is_empty() || options.prefix.contains(['{', '}']) {
            return Err(unavailable_because(format!(
                "invalid key prefix {:?}: use a non-empty prefix without braces, e.g. \"px\"",
                options.prefix
            )));
        }
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let mut conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| unavailable(&format!("connect to {shown}"), e))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&format!("PING {shown}"), e))?;
        let scripts = Scripts::new();
        scripts
            .preload(&mut conn)
            .await
            .map_err(|e| unavailable(&format!("load the store's scripts into {shown}"), e))?;
        let ttl = options.finished_task_ttl.map_or(0, |t| t.as_secs().max(1));
        let core = Arc::new(Core {
            conn,
            scripts,
            keys: Keys::new(&options.prefix),
            base_args: [
                options.prefix.clone(),
                ttl.to_string(),
                options.dead_letter_cap.max(1).to_string(),
                options.max_deliveries.max(1).to_string(),
            ],
            options,
        });
        let stop = CancellationToken::new();
        Ok(RedisStore {
            claims: claim::BlockingPool::new(client.clone()),
            completer: complete::Completer::start(core.clone()),
            events: events::EventHub::new(client, stop.clone()),
            ledger: ledger::ledger_script(),
            core,
            _stop: stop.drop_guard(),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &RedisStoreOptions {
        &self.core.options
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_task(&self, task: NewTask) -> Result<(), StoreError> {
        ops::create_task(&self.core, task).await
    }

    async fn start_task(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        ops::start_task(&self.core, task_id, plan, steps, planner_calls).await
    }

    async fn finish_unplanned(
        &self,
        task_id: &TaskId,
        status: TaskStatus,
        reason: String,
        calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        ops::finish_unplanned(&self.core, task_id, status, reason, calls).await
    }

    async fn claim(
        &self,
        tier: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<StepLease>, StoreError> {
        claim::claim(&self.core, &self.claims, tier, worker, max, lease, wait).await
    }

    async fn extend_lease(&self, lease: &StepLease, by: Duration) -> Result<bool, StoreError> {
        ops::extend_lease(&self.core, lease, by).await
    }

    async fn release(&self, lease: &StepLease) -> Result<(), StoreError> {
        ops::release(&self.core, lease).await
    }

    async fn complete(
        &self,
        lease: &StepLease,
        outcome: StepOutcome,
    ) -> Result<Completion, StoreError> {
        self.completer.complete(lease, outcome).await
    }

    async fn get_task(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        ops::get_task(&self.core, task_id).await
    }

    async fn task_summary(&self, task_id: &TaskId) -> Result<Option<TaskSummary>, StoreError> {
        ops::task_summary(&self.core, task_id).await
    }

    async fn events(&self, task_id: &TaskId) -> Result<EventStream, StoreError> {
        events::events(&self.core, &self.events, task_id).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        ops::dead_letters(&self.core, limit).await
    }

    async fn queue_depth(&self, tier: &str) -> Result<QueueDepth, StoreError> {
        ops::queue_depth(&self.core, tier).await
    }

    async fn retire_worker(&self, tier: &str, worker: &str) -> Result<(), StoreError> {
        ops::retire_worker(&self.core, tier, worker).await
    }

    async fn retire_idle_workers(&self, tier: &str, idle: Duration) -> Result<usize, StoreError> {
        ops::retire_idle_workers(&self.core, tier, idle).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact("redis://user:secret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn url_parameters_set_store_options_and_the_rest_stays() {
        let (url, options) = super::url_options(
            "redis://h:1/0?prefix=blue&max_deliveries=3&task_ttl_secs=0&protocol=resp3",
            super::RedisStoreOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url, "redis://h:1/0?protocol=resp3");
        assert_eq!(options.prefix, "blue");
        assert_eq!(options.max_deliveries, 3);
        assert_eq!(options.finished_task_ttl, None);
        assert!(
            super::url_options(
                "redis://h?max_deliveries=0",
                super::RedisStoreOptions::default()
            )
            .is_err()
        );
    }
}
