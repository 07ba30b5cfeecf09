//! `complete`, batched: concurrent completions of one process are recorded by one script call.
//!
//! Key decisions: a background task takes whatever completions are waiting (up to
//! `complete_batch`) and sends them as one `complete.lua` call, with at most two calls in flight;
//! at low load a completion goes alone and at once, under load the batch grows by itself (group
//! commit), cutting round trips per step. A call that fails because Redis is unreachable is retried
//! with backoff for `reconnect_for`: re-running a completion is safe, since a step that is already
//! terminal is left as it is.

use super::errors::{corrupt, corrupt_by, unavailable, unavailable_because};
use super::shared::{Core, transient};
use crate::error::StoreError;
use crate::types::*;
use planex_core::StepId;
use planex_core::cause::SharedSource;
use redis::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

struct Job {
    args: Vec<String>,
    reply: oneshot::Sender<Result<Completion, StoreError>>,
}

/// The front of the batching task.
pub(super) struct Completer {
    jobs: mpsc::UnboundedSender<Job>,
}

fn encode(lease: &StepLease, outcome: StepOutcome) -> Result<Vec<String>, StoreError> {
    let encode_err = |e: serde_json::Error| corrupt_by("cannot encode the outcome of a step", e);
    let (kind, payload, attempts, calls, errors) = match outcome {
        StepOutcome::Succeeded {
            result,
            attempts,
            calls,
        } => (
            "ok",
            serde_json::to_string(&result).map_err(encode_err)?,
            attempts,
            calls,
            String::new(),
        ),
        StepOutcome::Failed {
            error,
            attempts,
            calls,
            attempt_errors,
        } => {
            // The array's items, without brackets: the script puts lost deliveries before them.
            let list = serde_json::to_string(&attempt_errors).map_err(encode_err)?;
            let items = list[1..list.len() - 1].to_owned();
            ("fail", error, attempts, calls, items)
        }
    };
    let mut args = vec![
        lease.token.clone(),
        kind.to_owned(),
        payload,
        attempts.to_string(),
        errors,
        calls.len().to_string(),
    ];
    for call in &calls {
        args.push(serde_json::to_string(call).map_err(encode_err)?);
    }
    Ok(args)
}

fn ids(csv: &str) -> Vec<StepId> {
    csv.split(',')
        .filter_map(|id| id.parse().ok())
        .map(StepId)
        .collect()
}

fn decode(lease_task: &str, item: Value) -> Result<Completion, StoreError> {
    let (code, status, ready, skipped): (String, String, String, String) =
        redis::from_redis_value(item).map_err(|e| corrupt_by("unexpected completion reply", e))?;
    match code.as_str() {
        "dup" => Ok(Completion::Duplicate),
        "ok" => Ok(Completion::Applied {
            newly_ready: ids(&ready),
            skipped: ids(&skipped),
            task_finished: if status.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_value(serde_json::Value::String(status.clone())).map_err(
                        |e| corrupt_by(format!("task finished with status {status:?}"), e),
                    )?,
                )
            },
        }),
        "nf" => Err(StoreError::TaskNotFound(lease_task.into())),
        other => Err(corrupt(format!(
            "completion of a step of task {lease_task} answered {other:?} (malformed lease token or missing step)"
        ))),
    }
}

impl Completer {
    /// Starts the batching task; it ends when the `Completer` is dropped.
    pub fn start(core: Arc<Core>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(core, rx));
        Completer { jobs }
    }

    pub async fn complete(
        &self,
        lease: &StepLease,
        outcome: StepOutcome,
    ) -> Result<Completion, StoreError> {
        let args = encode(lease, outcome)?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { args, reply })
            .map_err(|_| unavailable_because("the redis store is shutting down"))?;
        let item = answer.await.map_err(|e| StoreError::Unavailable {
            what: "the completion batch was dropped; retry the completion".into(),
            source: Some(SharedSource::new(e)),
        })??;
        Ok(item)
    }
}

async fn run(core: Arc<Core>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let in_flight = Arc::new(Semaphore::new(2));
    let max = core.options.complete_batch.max(1);
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let core = core.clone();
        tokio::spawn(async move {
            flush(&core, batch).await;
            drop(permit);
        });
    }
}

async fn flush(core: &Core, batch: Vec<Job>) {
    let give_up = Instant::now() + core.options.reconnect_for;
    let mut backoff = Duration::from_millis(50);
    let result = loop {
        let mut invocation = core.invocation(&core.scripts.complete);
        for job in &batch {
            invocation.arg(&job.args);
        }
        match invocation
            .invoke_async::<Vec<Value>>(&mut core.conn())
            .await
        {
            Err(e) if transient(&e) && Instant::now() + backoff < give_up => {
                tracing::warn!(error = %e, "redis unreachable while recording step outcomes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            other => break other,
        }
    };
    match result {
        Ok(items) if items.len() == batch.len() => {
            for (job, item) in batch.into_iter().zip(items) {
                let task = job
                    .args
                    .first()
                    .and_then(|t| t.splitn(4, ':').nth(3))
                    .unwrap_or("")
                    .to_owned();
                let _ = job.reply.send(decode(&task, item));
            }
        }
        Ok(items) => {
            let error = corrupt(format!(
                "the completion script answered {} items for {} outcomes",
                items.len(),
                batch.len()
            ));
            for job in batch {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
        Err(e) => {
            let error = unavailable("record step outcomes", e);
            for job in batch {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}
