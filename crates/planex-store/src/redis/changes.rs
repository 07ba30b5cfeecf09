//! Task status changes over Redis (`Store::task_changes`): the scripts publish each change on
//! `px:task_changes` as `0|{"task_id":…,"tenant":…,"status":…}` (create.lua, start.lua,
//! streamed.lua, cancel.lua, finish_unplanned.lua and common.lua's `finish_if_done`), and the
//! store's one pub/sub connection (events.rs) carries them to every reader of the process.
//!
//! Key decisions: pub/sub keeps nothing, so wherever changes may have been missed (the
//! subscription (re)established, a reader too slow to keep up) the reader gets
//! `TaskChange::Resync` and reloads its list. A forwarder drains the subscription into a bounded
//! queue per reader, so a stalled reader (an SSE client that stopped reading) costs a fixed
//! amount of memory, not every change of every tenant since it stalled.

use super::events::{EventHub, Signal};
use super::shared::Core;
use crate::changes::{TaskChange, TaskChangeStream};
use crate::error::StoreError;
use crate::types::TaskStatus;
use futures::StreamExt;
use planex_core::TaskId;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Changes queued for one reader before it is told to resync instead.
const READER_BACKLOG: usize = 1_024;

/// How long `task_changes` waits for the subscription when the connection is coming up (past it,
/// the stream begins with `Resync`).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

/// One published change, as the scripts write it.
#[derive(Deserialize)]
struct Published {
    task_id: String,
    /// Empty for a task created without a tenant.
    tenant: String,
    status: TaskStatus,
}

/// Decodes a published change; `None` for a payload no script writes.
fn decode(json: &str) -> Option<TaskChange> {
    let change: Published = serde_json::from_str(json).ok()?;
    Some(TaskChange::Status {
        task_id: TaskId(change.task_id),
        tenant: (!change.tenant.is_empty()).then_some(change.tenant),
        status: change.status,
    })
}

/// `Store::task_changes`.
pub(super) async fn task_changes(
    core: &Core,
    hub: &Arc<EventHub>,
) -> Result<TaskChangeStream, StoreError> {
    let mut registration = hub.watch_with(&core.keys.task_changes(), true).await;
    let (out, reader) = mpsc::channel(READER_BACKLOG);
    // With the connection still coming up, the subscription is live at its first resync: wait
    // for it (a while), so that changes made after this returns reach the reader.
    if !registration.confirmed {
        match tokio::time::timeout(SUBSCRIBE_WAIT, registration.signals.recv()).await {
            Ok(Some(Signal::Resync)) => {}
            // Anything else (nothing yet, an event): the reader starts by reloading. The queue
            // is empty, so this cannot fail.
            _ => {
                let _ = out.try_send(TaskChange::Resync);
            }
        }
    }
    let stopped = hub.stopped();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        // Set when a change was dropped (the reader's queue was full): a Resync is owed, sent as
        // soon as the queue has room, even if no change follows.
        let mut missed = false;
        loop {
            let signal = tokio::select! {
                signal = registration.signals.recv() => signal,
                permit = out.reserve(), if missed => match permit {
                    Ok(permit) => {
                        permit.send(TaskChange::Resync);
                        missed = false;
                        continue;
                    }
                    Err(_) => return,
                },
                _ = out.closed() => return,
                // The store shut down: the stream ends.
                _ = &mut stopped => return,
            };
            let change = match signal {
                None => return,
                Some(Signal::Resync) => TaskChange::Resync,
                Some(Signal::Transient(json) | Signal::Event(_, json)) => match decode(&json) {
                    Some(change) => change,
                    None => {
                        tracing::warn!(payload = %json, "undecodable task change; ignored");
                        continue;
                    }
                },
            };
            if missed {
                // Still owed: this change is covered by the Resync to come.
                continue;
            }
            match out.try_send(change) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => missed = true,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(reader).boxed())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn published_changes_decode_and_an_empty_tenant_is_none() {
        assert_eq!(
            decode(r#"{"task_id":"t1","tenant":"acme","status":"running"}"#),
            Some(TaskChange::Status {
                task_id: TaskId("t1".into()),
                tenant: Some("acme".into()),
                status: TaskStatus::Running,
            })
        );
        assert_eq!(
            decode(r#"{"task_id":"t2","tenant":"","status":"complete"}"#),
            Some(TaskChange::Status {
                task_id: TaskId("t2".into()),
                tenant: None,
                status: TaskStatus::Complete,
            })
        );
        assert_eq!(decode("not json"), None);
        assert_eq!(
            decode(r#"{"task_id":"t3","tenant":"","status":"lost"}"#),
            None
        );
    }
}
