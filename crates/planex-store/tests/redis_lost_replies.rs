//! A Redis reply lost on the wire (the server ran the command, then the connection died before
//! the answer arrived) is the one failure a client cannot tell from a command that never ran.
//! These tests put a loopback proxy between the store and a private `redis-server` that drops
//! the connection instead of passing on the reply to one chosen command, and check that the
//! store's retry of that command is applied once: streamed-plan calls carry their own id
//! (`lua/streamed.lua`), so a resent `add` adds nothing twice and a resent `close` records its
//! calls once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use planex_core::Stage;
use planex_store::{EventKind, RedisStore, RedisStoreOptions, Store, TaskStatus, wait_for_status};
use planex_testkit::redis::RedisServer;
use planex_testkit::store::{call_record, planning_task, step_spec, succeeded};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to Redis that, once armed, lets the next command containing `trigger` through to
/// the server and then closes the connection as soon as the server's reply to it arrives,
/// without passing the reply on. Every other byte is relayed unchanged.
struct ReplyDropper {
    url: String,
    armed: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
}

impl ReplyDropper {
    async fn start(server: &RedisServer, trigger: &'static [u8]) -> ReplyDropper {
        let upstream = server.url().trim_start_matches("redis://").to_owned();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (armed_in, dropped_in) = (armed.clone(), dropped.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(
                    client,
                    server,
                    trigger,
                    armed_in.clone(),
                    dropped_in.clone(),
                ));
            }
        });
        ReplyDropper {
            url,
            armed,
            dropped,
        }
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Relays one client connection; see [`ReplyDropper`].
async fn relay(
    client: TcpStream,
    server: TcpStream,
    trigger: &'static [u8],
    armed: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (fired_tx, mut fired_rx) = tokio::sync::watch::channel(false);
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let hit = chunk.windows(trigger.len()).any(|w| w == trigger)
                && armed
                    .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
            if hit {
                let _ = fired_tx.send(true);
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // The test sends one command at a time, so the first reply after the trigger went
            // through is the trigger's: swallow it and end the connection.
            if *fired_rx.borrow_and_update() {
                dropped.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection (both halves drop here).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

async fn store_through(proxy: &ReplyDropper) -> RedisStore {
    RedisStore::connect_with(&proxy.url, RedisStoreOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_add_of_streamed_steps_whose_reply_was_lost_adds_them_once() {
    let server = RedisServer::start().expect("start a private redis-server");
    let proxy = ReplyDropper::start(&server, b"add|").await;
    let store = store_through(&proxy).await;
    let task = planning_task(&store, "lost-add").await;
    store.open_plan(&task).await.unwrap();
    proxy.arm();
    store
        .add_steps(&task, vec![step_spec(1, &[], "x")])
        .await
        .expect("the resent add is answered as applied, not as a duplicate step");
    assert_eq!(proxy.dropped(), 1, "the proxy dropped the add's reply");
    store
        .add_steps(&task, vec![step_spec(2, &[1], "x")])
        .await
        .unwrap();
    // Step 1 was enqueued once: one claim gets it, and nothing else is ready.
    let wait = Duration::from_millis(200);
    let claimed = store
        .claim("x", "w", 8, Duration::from_secs(30), wait)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    store.complete(&claimed[0], succeeded("one")).await.unwrap();
    let second = store
        .claim("x", "w", 8, Duration::from_secs(30), wait)
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "step 2 is ready once: {second:?}");
    store.complete(&second[0], succeeded("two")).await.unwrap();
    store.close_plan(&task, None, vec![], None).await.unwrap();
    let status = wait_for_status(&store, &task, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, Some(TaskStatus::Complete));
    // The finished task's whole history.
    let history: Vec<_> = futures::StreamExt::collect(store.events(&task).await.unwrap()).await;
    let planned: Vec<_> = history
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::StepPlanned { step_id, .. } => Some(step_id.0),
            _ => None,
        })
        .collect();
    assert_eq!(planned, [1, 2], "each step planned once: {history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_close_whose_reply_was_lost_records_the_planners_calls_once() {
    let server = RedisServer::start().expect("start a private redis-server");
    let proxy = ReplyDropper::start(&server, b"close|").await;
    let store = store_through(&proxy).await;
    let task = planning_task(&store, "lost-close").await;
    store.open_plan(&task).await.unwrap();
    store
        .add_steps(&task, vec![step_spec(1, &[], "x")])
        .await
        .unwrap();
    let claimed = store
        .claim("x", "w", 1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    store.complete(&claimed[0], succeeded("one")).await.unwrap();
    proxy.arm();
    let planner_call = call_record(Stage::Plan, 120);
    store
        .close_plan(&task, None, vec![planner_call], None)
        .await
        .expect("the resent close is answered as applied");
    assert_eq!(proxy.dropped(), 1, "the proxy dropped the close's reply");
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Complete);
    let planner_calls = record
        .calls
        .iter()
        .filter(|call| call.stage == Stage::Plan)
        .count();
    assert_eq!(
        planner_calls, 1,
        "the planner's call is billed once: {record:?}"
    );
}
