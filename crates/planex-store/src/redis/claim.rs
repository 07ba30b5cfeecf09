//! `claim`: one script call leases up to `max` steps (expired leases first, then new stream
//! entries); when none came back, the caller blocks on a connection of its own until the tier's
//! stream grows or the tier's earliest lease expires, then tries again.
//!
//! Key decision: the blocking read is a plain `XREAD BLOCK … STREAMS px:ready:{tier} LAST_ID` with
//! the stream's last id as the claim script saw it, so an entry added between the script and the
//! read wakes the read at once (no lost wake-up), and the read itself consumes nothing: entries are
//! only ever taken by the script, atomically with their lease. A blocking command would stall every
//! other request pipelined on the shared multiplexed connection, hence the pool.

use super::errors::{corrupt, corrupt_by, unavailable, unavailable_because};
use super::shared::{Core, Retry};
use crate::error::StoreError;
use crate::types::*;
use planex_core::{StepId, TaskId};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Connections reserved for blocking reads, reused between claims.
pub(super) struct BlockingPool {
    client: redis::Client,
    idle: Mutex<Vec<MultiplexedConnection>>,
}

impl BlockingPool {
    pub fn new(client: redis::Client) -> Self {
        BlockingPool {
            client,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<MultiplexedConnection> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn put_back(&self, conn: MultiplexedConnection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < 64 {
            idle.push(conn);
        }
    }

    async fn open(&self) -> Result<MultiplexedConnection, StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| unavailable("open a blocking connection", e))
    }

    /// Blocks until `stream` has an entry after `after` or `block` passed. A pooled connection
    /// that turns out dead is replaced once.
    async fn wait_for_entry(
        &self,
        stream: &str,
        after: &str,
        block: Duration,
    ) -> Result<(), StoreError> {
        let block_ms = block.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("BLOCK")
            .arg(block_ms)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(stream)
            .arg(if after.is_empty() { "$" } else { after });
        let mut fresh = false;
        loop {
            let mut conn = match self.take_idle() {
                Some(conn) => conn,
                None => {
                    fresh = true;
                    self.open().await?
                }
            };
            // The server answers by `block`; the margin covers a connection that died silently.
            let read = tokio::time::timeout(
                block + Duration::from_secs(2),
                cmd.query_async::<Value>(&mut conn),
            )
            .await;
            match read {
                Ok(Ok(_)) => {
                    self.put_back(conn);
                    return Ok(());
                }
                Ok(Err(e)) if fresh => return Err(unavailable("wait for ready steps", e)),
                Err(_) if fresh => {
                    return Err(unavailable_because(
                        "redis did not answer a blocking read in time",
                    ));
                }
                // A pooled connection broken by a restart: drop it and retry on a fresh one.
                _ => fresh = true,
            }
        }
    }
}

/// One lease as the claim script returns it (the trace parent is '' when the task has none).
type RawLease = (String, String, String, String, u32, Vec<String>, u8, String);

fn decode_lease(raw: RawLease) -> Result<StepLease, StoreError> {
    let (token, task_id, task_text, spec, delivery, deps, resumed, trace_parent) = raw;
    let spec: StepSpec = serde_json::from_str(&spec)
        .map_err(|e| corrupt_by(format!("step spec of task {task_id}"), e))?;
    let mut dep_results = BTreeMap::new();
    for pair in deps.chunks(2) {
        if let [id, result] = pair {
            let id: u32 = id
                .parse()
                .map_err(|e| corrupt_by(format!("dependency id {id:?}"), e))?;
            let value = serde_json::from_str(result)
                .map_err(|e| corrupt_by(format!("result of step {id}"), e))?;
            dep_results.insert(StepId(id), value);
        }
    }
    Ok(StepLease {
        task_id: TaskId(task_id),
        task_text,
        spec,
        dep_results,
        token,
        delivery,
        resumed: resumed == 1,
        trace_parent: (!trace_parent.is_empty()).then_some(trace_parent),
    })
}

struct ClaimReply {
    server_now: i64,
    next_deadline: i64,
    last_id: String,
    leases: Vec<StepLease>,
}

fn decode_reply(value: Value) -> Result<ClaimReply, StoreError> {
    let bad = |what: &str| corrupt(format!("unexpected claim reply: {what}"));
    let Value::Array(items) = value else {
        return Err(bad("not an array"));
    };
    let mut items = items.into_iter();
    let mut int = |what: &str| match items.next() {
        Some(Value::Int(n)) => Ok(n),
        _ => Err(bad(what)),
    };
    let server_now = int("server time")?;
    let next_deadline = int("next deadline")?;
    let last_id = match items.next() {
        Some(v) => redis::from_redis_value::<String>(v).map_err(|_| bad("last id"))?,
        None => return Err(bad("last id")),
    };
    let leases = items
        .map(|v| {
            redis::from_redis_value::<RawLease>(v)
                .map_err(|e| corrupt_by("unexpected claim reply: a lease", e))
                .and_then(decode_lease)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClaimReply {
        server_now,
        next_deadline,
        last_id,
        leases,
    })
}

pub(super) async fn claim(
    core: &Core,
    pool: &BlockingPool,
    tier: &str,
    worker: &str,
    max: usize,
    lease: Duration,
    wait: Duration,
) -> Result<Vec<StepLease>, StoreError> {
    let give_up = Instant::now() + wait;
    let stream = core.keys.ready(tier);
    loop {
        let mut invocation = core.invocation(&core.scripts.claim);
        invocation
            .arg(tier)
            .arg(worker)
            .arg(max.max(1))
            .arg(lease.as_millis().max(1) as u64);
        let value: Value = core
            .invoke(Retry::Idempotent, &invocation)
            .await
            .map_err(|e| unavailable("claim steps", e))?;
        let reply = decode_reply(value)?;
        if !reply.leases.is_empty() {
            return Ok(reply.leases);
        }
        let now = Instant::now();
        if now >= give_up {
            return Ok(Vec::new());
        }
        let mut block = give_up - now;
        if reply.next_deadline >= 0 {
            let until_expiry = (reply.next_deadline - reply.server_now).max(0) as u64;
            block = block.min(Duration::from_millis(until_expiry + 1));
        }
        pool.wait_for_entry(&stream, &reply.last_id, block).await?;
    }
}
