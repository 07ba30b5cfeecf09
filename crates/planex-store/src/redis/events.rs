//! Task events over Redis: each task's history is a list (`px:task:{ID}:events`), and every new
//! event is also published on `px:events:{ID}` as `SEQ|JSON` (the events of one script call go
//! as one message, one JSON per line, numbered from SEQ). Transient events (`Store::publish_transient`)
//! are published as `0|JSON` and kept nowhere: a watcher passes them on as they come.
//!
//! Key decisions: one pub/sub connection per store carries every subscription of the process (a
//! hub task dispatches messages to the watchers of each channel), so an API replica with many
//! SSE clients holds one connection, not one per client. A watcher never trusts pub/sub alone:
//! events carry their sequence number, and on a gap, or after the hub reconnected (a Redis
//! restart), the watcher reads the missed events from the history list, so no event is lost or
//! repeated. The hub subscribes *before* a watcher reads the history, closing the race between
//! the two. Subscriptions and unsubscriptions queue up and go as one command per batch (the
//! first caller to queue one spawns the sender), so a thousand watchers arriving or leaving at
//! once cost a few round trips, not a thousand sequential ones.

use super::codec;
use super::errors::unavailable;
use super::shared::{Core, Retry};
use crate::EventStream;
use crate::error::StoreError;
use crate::types::*;
use futures::StreamExt;
use planex_core::TaskId;
use redis::aio::PubSubSink;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The seq a transient event is published with (`Store::publish_transient`): history events
/// count from 1, so older watchers, which drop events at or below what they have seen, skip it.
const TRANSIENT_SEQ: u64 = 0;

/// `Store::publish_transient`: one `PUBLISH` of `0|JSON` on the task's channel (nothing is stored).
pub(super) async fn publish_transient(
    core: &Core,
    task_id: &TaskId,
    kind: &EventKind,
) -> Result<(), StoreError> {
    let mut json = serde_json::to_value(kind)
        .map_err(|e| super::errors::corrupt(format!("a transient event cannot be encoded: {e}")))?;
    if let Some(fields) = json.as_object_mut() {
        fields.insert("at_ms".into(), now_ms().into());
    }
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(core.keys.channel(task_id))
        .arg(format!("{TRANSIENT_SEQ}|{json}"));
    let _: i64 = core
        .query(Retry::Idempotent, &cmd)
        .await
        .map_err(|e| unavailable("publish a task event", e))?;
    Ok(())
}

pub(super) enum Signal {
    /// A published event: its seq and JSON.
    Event(u64, String),
    /// A transient event (published with seq 0, not in the history): its JSON.
    Transient(String),
    /// The subscription was (re)established: read what may have been missed.
    Resync,
}

type Watchers = HashMap<String, HashMap<u64, mpsc::UnboundedSender<Signal>>>;

/// Channels waiting to be subscribed (each with the watcher waiting for it) or unsubscribed.
#[derive(Default)]
struct Queued {
    subscribe: Vec<(String, oneshot::Sender<bool>)>,
    unsubscribe: Vec<String>,
}

/// The process's pub/sub connection and the watchers of each channel.
pub(super) struct EventHub {
    client: redis::Client,
    /// The live connection's subscribe side; the async lock orders (un)subscriptions with
    /// reconnects.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    watchers: Mutex<Watchers>,
    queued: Mutex<Queued>,
    next_id: AtomicU64,
    started: std::sync::Once,
    stop: CancellationToken,
}

impl EventHub {
    pub fn new(client: redis::Client, stop: CancellationToken) -> Arc<Self> {
        Arc::new(EventHub {
            client,
            sink: tokio::sync::Mutex::new(None),
            watchers: Mutex::new(HashMap::new()),
            queued: Mutex::new(Queued::default()),
            next_id: AtomicU64::new(1),
            started: std::sync::Once::new(),
            stop,
        })
    }

    /// Resolves when the store shuts down (the hub stops; no signal comes any more).
    pub(super) fn stopped(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stop.clone().cancelled_owned()
    }

    fn watchers(&self) -> MutexGuard<'_, Watchers> {
        self.watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn queued(&self) -> MutexGuard<'_, Queued> {
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ensure_started(self: &Arc<Self>) {
        self.started.call_once(|| {
            tokio::spawn(self.clone().run());
        });
    }

    /// Keeps one pub/sub connection up, resubscribing every channel after a reconnect.
    async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        while !self.stop.is_cancelled() {
            let connected = match self.client.get_async_pubsub().await {
                Ok(pubsub) => {
                    let (mut sink, stream) = pubsub.split();
                    let mut slot = self.sink.lock().await;
                    let channels: Vec<String> = self.watchers().keys().cloned().collect();
                    let subscribed = channels.is_empty()
                        || matches!(
                            tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(&channels))
                                .await,
                            Ok(Ok(()))
                        );
                    if subscribed {
                        *slot = Some(sink);
                        Some(stream)
                    } else {
                        None
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "event subscription connection failed; retrying");
                    None
                }
            };
            let Some(mut stream) = connected else {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            };
            backoff = Duration::from_millis(50);
            self.broadcast_resync();
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => self.dispatch(&message),
                        None => break,
                    },
                    _ = self.stop.cancelled() => return,
                }
            }
            *self.sink.lock().await = None;
            tracing::warn!("event subscription connection lost; reconnecting");
        }
    }

    fn broadcast_resync(&self) {
        for watchers in self.watchers().values() {
            for tx in watchers.values() {
                let _ = tx.send(Signal::Resync);
            }
        }
    }

    fn dispatch(&self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
            return;
        };
        let Some((seq, bundle)) = codec::published_event(payload) else {
            return;
        };
        if let Some(watchers) = self.watchers().get(channel) {
            if seq == TRANSIENT_SEQ {
                for tx in watchers.values() {
                    let _ = tx.send(Signal::Transient(bundle.to_owned()));
                }
                return;
            }
            // One message carries the events of one script call, one JSON per line.
            for (i, json) in bundle.split('\n').enumerate() {
                for tx in watchers.values() {
                    let _ = tx.send(Signal::Event(seq + i as u64, json.to_owned()));
                }
            }
        }
    }

    /// Registers a watcher of `channel`, subscribing when it is the first; returns once the
    /// subscription is confirmed (or the connection is down: the hub then resubscribes and
    /// tells the watcher to resync when it is back; `Registration::confirmed` says which).
    pub(super) async fn watch(self: &Arc<Self>, channel: &str) -> Registration {
        self.watch_with(channel, false).await
    }

    /// As [`EventHub::watch`]; with `confirm_each`, a watcher that is not the channel's first
    /// also waits for a subscription confirmed after it registered (one more `SUBSCRIBE` of the
    /// channel, batched with others), since the first watcher's may still be in flight: a reader
    /// with no history to fall back on (task changes) must not return before it is live.
    pub(super) async fn watch_with(
        self: &Arc<Self>,
        channel: &str,
        confirm_each: bool,
    ) -> Registration {
        self.ensure_started();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let first = {
            let mut watchers = self.watchers();
            let entry = watchers.entry(channel.to_owned()).or_default();
            entry.insert(id, tx);
            entry.len() == 1
        };
        let mut registration = Registration {
            hub: self.clone(),
            channel: channel.to_owned(),
            id,
            signals: rx,
            confirmed: true,
        };
        if first || confirm_each {
            let (done, subscribed) = oneshot::channel();
            let sender = {
                let mut queued = self.queued();
                queued.subscribe.push((channel.to_owned(), done));
                queued.subscribe.len() == 1
            };
            if sender {
                // A task of its own, so a caller that gives up waiting cannot strand the queue.
                tokio::spawn(self.clone().send_subscribes());
            }
            // An error only means the sender task was dropped with the runtime.
            registration.confirmed = subscribed.await.unwrap_or(false);
        }
        registration
    }

    /// Subscribes every queued channel that is still watched, with one command.
    async fn send_subscribes(self: Arc<Self>) {
        let sink = self.sink.lock().await;
        let batch = std::mem::take(&mut self.queued().subscribe);
        let channels: Vec<String> = {
            let watchers = self.watchers();
            batch
                .iter()
                .map(|(channel, _)| channel)
                .filter(|channel| watchers.contains_key(*channel))
                .cloned()
                .collect()
        };
        let mut confirmed = channels.is_empty();
        if !channels.is_empty()
            && let Some(sink) = sink.as_ref()
        {
            // On failure the connection is broken: the hub reconnects, subscribes every channel
            // and tells each watcher to resync, so nothing is lost.
            let mut sink = sink.clone();
            match tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(&channels)).await {
                Ok(Ok(())) => confirmed = true,
                Ok(Err(error)) => tracing::debug!(%error, "SUBSCRIBE failed; watchers resync"),
                Err(_) => tracing::debug!("SUBSCRIBE timed out; watchers resync"),
            }
        }
        drop(sink);
        for (_, done) in batch {
            let _ = done.send(confirmed);
        }
    }

    /// Queues `channel` for unsubscribing (it has no watcher left).
    fn unwatch(self: &Arc<Self>, channel: String, runtime: &tokio::runtime::Handle) {
        let sender = {
            let mut queued = self.queued();
            queued.unsubscribe.push(channel);
            queued.unsubscribe.len() == 1
        };
        if sender {
            runtime.spawn(self.clone().send_unsubscribes());
        }
    }

    /// Unsubscribes every queued channel that has not been watched again meanwhile, with one
    /// command.
    async fn send_unsubscribes(self: Arc<Self>) {
        let sink = self.sink.lock().await;
        let queued = std::mem::take(&mut self.queued().unsubscribe);
        let channels: Vec<String> = {
            let watchers = self.watchers();
            queued
                .into_iter()
                .filter(|channel| !watchers.contains_key(channel))
                .collect()
        };
        if !channels.is_empty()
            && let Some(sink) = sink.as_ref()
        {
            let mut sink = sink.clone();
            match tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.unsubscribe(&channels)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "UNSUBSCRIBE failed"),
                Err(_) => tracing::debug!("UNSUBSCRIBE timed out"),
            }
        }
    }
}

/// A watcher's place in the hub; dropping it unregisters (and unsubscribes the last watcher).
pub(super) struct Registration {
    hub: Arc<EventHub>,
    channel: String,
    id: u64,
    pub(super) signals: mpsc::UnboundedReceiver<Signal>,
    /// Whether the channel was subscribed when `watch` returned (false: the connection was down
    /// or coming up, and a `Signal::Resync` follows once it is subscribed). A later watcher
    /// registered without `confirm_each` is taken as subscribed.
    pub(super) confirmed: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let now_empty = {
            let mut watchers = self.hub.watchers();
            let empty = watchers.get_mut(&self.channel).is_some_and(|w| {
                w.remove(&self.id);
                w.is_empty()
            });
            if empty {
                watchers.remove(&self.channel);
            }
            empty
        };
        if now_empty && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.hub
                .unwatch(std::mem::take(&mut self.channel), &runtime);
        }
    }
}

/// Reads events from list position `from` (0-based) on.
async fn read_history(
    core: &Core,
    task_id: &TaskId,
    from: u64,
) -> Result<Vec<TaskEvent>, StoreError> {
    let mut cmd = redis::cmd("LRANGE");
    cmd.arg(core.keys.events(task_id)).arg(from).arg(-1);
    let items: Vec<String> = core
        .query(Retry::Idempotent, &cmd)
        .await
        .map_err(|e| unavailable("read task events", e))?;
    items
        .iter()
        .enumerate()
        .map(|(i, json)| codec::event(from + i as u64 + 1, json))
        .collect()
}

fn is_end(event: &TaskEvent) -> bool {
    matches!(event.kind, EventKind::TaskCompleted { .. })
}

/// `Store::events`: history, then live events, ending after `TaskCompleted`.
pub(super) async fn events(
    core: &Arc<Core>,
    hub: &Arc<EventHub>,
    task_id: &TaskId,
) -> Result<EventStream, StoreError> {
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(core.keys.task(task_id));
    let exists: bool = core
        .query(Retry::Idempotent, &cmd)
        .await
        .map_err(|e| unavailable("read task", e))?;
    if !exists {
        return Err(StoreError::TaskNotFound(task_id.clone()));
    }
    let registration = hub.watch(&core.keys.channel(task_id)).await;
    let history = read_history(core, task_id, 0).await?;
    // A finished task's history is all there is, even when events follow its end (a step of a
    // cancelled task skipped later, a running step's late completion).
    if history.iter().any(is_end) {
        return Ok(futures::stream::iter(history).boxed());
    }
    let (out, live) = mpsc::unbounded_channel();
    let last = history.len() as u64;
    tokio::spawn(follow(
        core.clone(),
        task_id.clone(),
        registration,
        out,
        last,
    ));
    let live = tokio_stream::wrappers::UnboundedReceiverStream::new(live);
    Ok(futures::stream::iter(history).chain(live).boxed())
}

/// Forwards live events in order, filling gaps from the history, until the task completes or
/// the reader goes away.
async fn follow(
    core: Arc<Core>,
    task_id: TaskId,
    mut registration: Registration,
    out: mpsc::UnboundedSender<TaskEvent>,
    mut last: u64,
) {
    loop {
        let signal = tokio::select! {
            signal = registration.signals.recv() => signal,
            _ = out.closed() => return,
        };
        let fresh = match signal {
            None => return,
            Some(Signal::Transient(json)) => match codec::event(TRANSIENT_SEQ, &json) {
                Ok(event) => vec![event],
                Err(error) => {
                    tracing::warn!(error = %planex_core::cause::ErrorChain(&error), task = %task_id, "undecodable transient task event");
                    continue;
                }
            },
            Some(Signal::Event(seq, _)) if seq <= last => continue,
            Some(Signal::Event(seq, json)) if seq == last + 1 => match codec::event(seq, &json) {
                Ok(event) => vec![event],
                Err(error) => {
                    tracing::warn!(error = %planex_core::cause::ErrorChain(&error), task = %task_id, "undecodable task event");
                    continue;
                }
            },
            Some(_) => match catch_up(&core, &task_id, last, &out).await {
                Some(events) => events,
                None => return,
            },
        };
        for event in fresh {
            if event.seq != TRANSIENT_SEQ {
                last = event.seq;
            }
            let end = is_end(&event);
            if out.send(event).is_err() || end {
                return;
            }
        }
    }
}

/// Reads the history after `last`, retrying while Redis is unreachable; `None` when the reader
/// went away meanwhile.
async fn catch_up(
    core: &Core,
    task_id: &TaskId,
    last: u64,
    out: &mpsc::UnboundedSender<TaskEvent>,
) -> Option<Vec<TaskEvent>> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match read_history(core, task_id, last).await {
            Ok(events) => return Some(events),
            Err(error) => {
                tracing::debug!(error = %planex_core::cause::ErrorChain(&error), task = %task_id, "catching up on events; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = out.closed() => return None,
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
