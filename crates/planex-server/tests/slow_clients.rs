//! Slow clients cannot hold the API's connections: a request head not sent within the server's
//! `header_read_timeout` gets the connection closed, over a real loopback socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Options;
use common::served::Served;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let served = Served::start(Options {
        header_read_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    planex_testkit::slow_client::assert_unfinished_head_is_disconnected(
        served.addr(),
        Duration::from_secs(30),
    )
    .await;
    // Other clients are served as usual.
    assert_eq!(served.get("/healthz").await["status"], "ok");
    served.stop().await;
}
