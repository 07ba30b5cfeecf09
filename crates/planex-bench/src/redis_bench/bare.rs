//! The yardstick for `planex-bench redis throughput`: a bare job queue on the same Redis, with the same
//! worker processes, doing what published job-queue benchmarks measure (push a no-op job, take it,
//! acknowledge it) and nothing planex does per step (no task state, no dependencies, no leases,
//! no events). Measured in the same run as planex, it turns the absolute figure of a noisy shared
//! machine into a ratio.
//!
//! Key decisions: jobs go on one Redis stream with a consumer group (the structure planex's
//! ready queues use); the parent pushes them in pipelines of 500 `XADD`s; each worker takes up
//! to `--concurrency` jobs per `XREADGROUP COUNT … BLOCK` and acknowledges them with one `XACK`
//! pipelined with an `INCRBY` of a done counter; the worker that brings the counter to the total
//! pushes onto a list the parent waits on with `BLPOP` (no polling). With a model (`--model
//! bare-sim`) each job first makes one chat call like the bench plan's echo step, all jobs of a
//! read concurrently.

use anyhow::{Context, Result, bail};
use planex_llm::{CallContext, ChatMessage, ChatModel, ChatRequest};
use redis::Value;
use std::process::ExitCode;
use std::sync::Arc;

const GROUP: &str = "bare";

struct BareKeys {
    jobs: String,
    done: String,
    finished: String,
}

fn keys(prefix: &str) -> BareKeys {
    BareKeys {
        jobs: format!("{prefix}:bare:jobs"),
        done: format!("{prefix}:bare:done"),
        finished: format!("{prefix}:bare:finished"),
    }
}

/// Creates the stream and its group before any worker reads it.
pub(super) async fn prepare(url: &str, prefix: &str) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys = keys(prefix);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&keys.jobs)
        .arg(GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .context("creating the bare queue's consumer group")?;
    Ok(())
}

/// Pushes `total` no-op jobs and waits until the workers have acknowledged them all.
pub(super) async fn submit_and_wait(url: &str, prefix: &str, total: usize) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys = keys(prefix);
    let mut left = total;
    while left > 0 {
        let n = left.min(500);
        let mut pipe = redis::pipe();
        for _ in 0..n {
            pipe.cmd("XADD")
                .arg(&keys.jobs)
                .arg("*")
                .arg("j")
                .arg("noop")
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
        left -= n;
    }
    // A connection of its own (a blocking read would stall the multiplexed one), without the
    // client's default response timeout, which is shorter than the wait.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut blocking = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let done: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(&keys.finished)
        .arg(300)
        .query_async(&mut blocking)
        .await?;
    if done.is_none() {
        bail!("the bare-queue workers did not finish {total} jobs within 300 s");
    }
    Ok(())
}

/// One bare-queue worker process: takes, runs (one call to MODEL per job, when given),
/// acknowledges and counts jobs until stopped.
pub(super) async fn worker(
    url: &str,
    prefix: &str,
    total: usize,
    count: usize,
    model: Option<Arc<dyn ChatModel>>,
) -> Result<ExitCode> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys = keys(prefix);
    let name = format!("bare-{}", std::process::id());
    println!("ready");
    let stop = planex_app::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&name)
            .arg("COUNT")
            .arg(count.max(1))
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(&keys.jobs)
            .arg(">");
        let read = tokio::select! {
            read = cmd.query_async::<Value>(&mut conn) => read?,
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
        };
        let ids = entry_ids(read);
        if ids.is_empty() {
            continue;
        }
        if let Some(model) = &model {
            run_jobs(&**model, ids.len()).await?;
        }
        let (_, done): (i64, i64) = redis::pipe()
            .cmd("XACK")
            .arg(&keys.jobs)
            .arg(GROUP)
            .arg(&ids)
            .cmd("INCRBY")
            .arg(&keys.done)
            .arg(ids.len())
            .query_async(&mut conn)
            .await?;
        let before = done - ids.len() as i64;
        if before < total as i64 && done >= total as i64 {
            let _: () = redis::cmd("RPUSH")
                .arg(&keys.finished)
                .arg(1)
                .query_async(&mut conn)
                .await?;
        }
    }
}

/// Makes N concurrent chat calls shaped like the bench plan's echo step.
async fn run_jobs(model: &dyn ChatModel, n: usize) -> Result<()> {
    let request = ChatRequest::new(vec![ChatMessage::user("Echo: input 1")]).with_max_tokens(16);
    let ctx = CallContext::default();
    let calls = (0..n).map(|_| model.chat(&request, &ctx));
    for outcome in futures::future::join_all(calls).await {
        outcome.map_err(|e| anyhow::anyhow!("a bare-sim job's model call failed: {e}"))?;
    }
    Ok(())
}

/// The entry ids of an `XREADGROUP` reply (`[[stream, [[id, fields], …]]]`, or nil).
fn entry_ids(reply: Value) -> Vec<String> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for stream in streams {
        let Value::Array(parts) = stream else {
            continue;
        };
        let Some(Value::Array(entries)) = parts.into_iter().nth(1) else {
            continue;
        };
        for entry in entries {
            if let Value::Array(fields) = entry
                && let Some(id) = fields.into_iter().next()
                && let Ok(id) = redis::from_redis_value::<String>(id)
            {
                ids.push(id);
            }
        }
    }
    ids
}
