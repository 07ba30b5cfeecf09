//! The Redis store: the same `Store` semantics as the memory backend, shared by many API replicas
//! and worker processes on many machines (docs/ARCHITECTURE.md §6, docs/ARCHITECTURE.md).
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

mod changes;
mod claim;
mod codec;
mod complete;
mod dead_letters;
mod drift;
mod errors;
mod events;
mod heartbeat;
mod keys;
mod ledger;
mod listing;
mod ops;
mod options;
mod outage;
mod scripts;
mod shared;
mod streamed;
mod submissions;

pub use options::RedisStoreOptions;

use crate::dead_letters::{DeadLetter, DeadLetterPage, DeadLetterQuery, LetterId};
use crate::error::StoreError;
use crate::types::*;
use crate::{EventStream, Store, Submission, TaskChangeStream, TaskPage, TaskQuery, WorkerTtft};
use async_trait::async_trait;
use errors::{unavailable, unavailable_because};
use keys::Keys;
use options::url_options;
use planex_core::cause::SharedSource;
use planex_core::{CallRecord, Plan, StepId, TaskId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use scripts::Scripts;
use shared::Core;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

/// What Redis's `maxmemory-policy` `policy` risks for planex, as a warning to show; `None` for
/// `noeviction` (what planex needs: a full Redis then refuses writes, which planex reports,
/// instead of silently dropping keys) and for unknown policies.
pub fn eviction_risk(policy: &str) -> Option<String> {
    if policy.starts_with("allkeys-") {
        Some(format!(
            "Redis maxmemory-policy is {policy}: when Redis reaches maxmemory it evicts ANY key, including ready queues, leases, running tasks and the budget ledger (tasks lost, budgets wrong). Set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf) and size maxmemory as docs/ARCHITECTURE.md §6 says"
        ))
    } else if policy.starts_with("volatile-") {
        Some(format!(
            "Redis maxmemory-policy is {policy}: when Redis reaches maxmemory it evicts keys that have a TTL before they expire: finished tasks, but also idempotency keys, worker heartbeats and cached plans. Set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)"
        ))
    } else {
        None
    }
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
    /// Redis's `maxmemory-policy`, when the server lets clients read it (`CONFIG GET`; managed
    /// services may refuse: `None`). planex needs `noeviction`: see [`eviction_risk`].
    pub async fn eviction_policy(&self) -> Option<String> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        let reply: Result<Vec<String>, _> = self.core.query(shared::Retry::Idempotent, &cmd).await;
        reply.ok().and_then(|pair| pair.into_iter().nth(1))
    }

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
            target: shown.clone(),
            outage: outage::Outage::default(),
        });
        let stop = CancellationToken::new();
        Ok(RedisStore {
            claims: claim::BlockingPool::new(client.clone()),
            completer: complete::Completer::start(core.clone()),
            events: events::EventHub::new(client, stop.clone()),
            ledger: scripts::ledger_script(),
            core,
            _stop: stop.drop_guard(),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &RedisStoreOptions {
        &self.core.options
    }

    /// The steps worker `worker` of tier `tier` has claimed and not finished: its pending
    /// entries in the tier's ready stream. For tools that follow what a worker held (the chaos
    /// soak measures how soon a killed worker's steps are claimed again).
    pub async fn steps_held_by(
        &self,
        tier: &str,
        worker: &str,
    ) -> Result<Vec<(TaskId, StepId)>, StoreError> {
        heartbeat::steps_held_by(&self.core, tier, worker).await
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_task(&self, task: NewTask) -> Result<(), StoreError> {
        ops::create_task(&self.core, task).await
    }

    async fn start_task_reusing(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        reused: std::collections::BTreeMap<StepId, serde_json::Value>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        ops::start_task(&self.core, task_id, plan, steps, reused, planner_calls).await
    }

    async fn open_plan(&self, task_id: &TaskId) -> Result<(), StoreError> {
        streamed::open_plan(&self.core, task_id).await
    }

    async fn add_steps(&self, task_id: &TaskId, steps: Vec<StepSpec>) -> Result<(), StoreError> {
        streamed::add_steps(&self.core, task_id, steps).await
    }

    async fn supersede_steps(
        &self,
        task_id: &TaskId,
        round: u32,
        steps: &[StepId],
        reason: &str,
    ) -> Result<(), StoreError> {
        streamed::supersede_steps(&self.core, task_id, round, steps, reason).await
    }

    async fn close_plan(
        &self,
        task_id: &TaskId,
        plan: Option<&Plan>,
        calls: Vec<CallRecord>,
        cut_short: Option<String>,
    ) -> Result<(), StoreError> {
        streamed::close_plan(&self.core, task_id, plan, calls, cut_short).await
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

    async fn cancel_task(&self, task_id: &TaskId) -> Result<(), StoreError> {
        ops::cancel_task(&self.core, task_id).await
    }

    async fn planning_tasks(
        &self,
        created_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        ops::planning_tasks(&self.core, created_by_ms, limit).await
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

    async fn publish_transient(&self, task_id: &TaskId, kind: EventKind) -> Result<(), StoreError> {
        events::publish_transient(&self.core, task_id, &kind).await
    }

    async fn task_changes(&self) -> Result<TaskChangeStream, StoreError> {
        changes::task_changes(&self.core, &self.events).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        listing::list_tasks(&self.core, query).await
    }

    async fn get_task(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        ops::get_task(&self.core, task_id).await
    }

    async fn task_summary(&self, task_id: &TaskId) -> Result<Option<TaskSummary>, StoreError> {
        ops::task_summary(&self.core, task_id).await
    }

    async fn remember_submission(
        &self,
        tenant: &str,
        key_digest: &str,
        submission: &Submission,
        ttl: Duration,
    ) -> Result<Option<Submission>, StoreError> {
        submissions::remember(&self.core, tenant, key_digest, submission, ttl).await
    }

    async fn confirm_submission(
        &self,
        tenant: &str,
        key_digest: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        submissions::confirm(&self.core, tenant, key_digest, ttl).await
    }

    async fn forget_submission(&self, tenant: &str, key_digest: &str) -> Result<(), StoreError> {
        submissions::forget(&self.core, tenant, key_digest).await
    }

    async fn events(&self, task_id: &TaskId) -> Result<EventStream, StoreError> {
        events::events(&self.core, &self.events, task_id).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        dead_letters::recent(&self.core, limit).await
    }

    async fn dead_letter_page(
        &self,
        query: &DeadLetterQuery,
    ) -> Result<DeadLetterPage, StoreError> {
        dead_letters::page(&self.core, query).await
    }

    async fn dead_letter(&self, id: LetterId) -> Result<Option<DeadLetter>, StoreError> {
        dead_letters::one(&self.core, id).await
    }

    async fn purge_dead_letter(&self, id: LetterId) -> Result<bool, StoreError> {
        dead_letters::purge(&self.core, id).await
    }

    async fn queue_depth(&self, tier: &str) -> Result<QueueDepth, StoreError> {
        ops::queue_depth(&self.core, tier).await
    }

    async fn retire_worker(&self, tier: &str, worker: &str) -> Result<(), StoreError> {
        // A worker still holding steps keeps its heartbeat entry: once it lapses, the reaper
        // hands those steps on.
        if ops::retire_worker(&self.core, tier, worker).await? {
            heartbeat::forget(&self.core, tier, worker).await?;
        }
        Ok(())
    }

    async fn heartbeat(&self, tier: &str, worker: &str, ttl: Duration) -> Result<(), StoreError> {
        heartbeat::heartbeat(&self.core, tier, worker, ttl).await
    }

    async fn reap_dead_workers(&self, tier: &str) -> Result<usize, StoreError> {
        heartbeat::reap_dead_workers(&self.core, tier).await
    }

    async fn live_workers(&self, tier: &str) -> Result<usize, StoreError> {
        heartbeat::live_workers(&self.core, tier).await
    }

    async fn report_ttft(
        &self,
        tier: &str,
        report: &WorkerTtft,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        heartbeat::report_ttft(&self.core, tier, report, ttl).await
    }

    async fn tier_ttft(&self, tier: &str) -> Result<Vec<WorkerTtft>, StoreError> {
        heartbeat::tier_ttft(&self.core, tier).await
    }

    async fn retire_idle_workers(&self, tier: &str, idle: Duration) -> Result<usize, StoreError> {
        ops::retire_idle_workers(&self.core, tier, idle).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    #[test]
    fn only_evicting_policies_are_risks() {
        assert!(super::eviction_risk("noeviction").is_none());
        let all = super::eviction_risk("allkeys-lru").unwrap_or_default();
        assert!(
            all.contains("budget ledger") && all.contains("noeviction"),
            "{all}"
        );
        let ttl = super::eviction_risk("volatile-ttl").unwrap_or_default();
        assert!(ttl.contains("idempotency keys"), "{ttl}");
    }

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
}
