//! Slow clients cannot hold the API's connections: a request head not sent within the server's
//! `header_read_timeout` gets the connection closed, over a real loopback socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Options;
use common::served::Served;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let served = Served::start(Options {
        header_read_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    let mut slow = tokio::net::TcpStream::connect(served.addr()).await.unwrap();
    // A request line and one header, then nothing: the head never ends.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: planex\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "the server must close a connection whose head does not arrive"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "nothing, or a 408, is sent back: {answer}"
    );
    // Other clients are served as usual.
    assert_eq!(served.get("/healthz").await["status"], "ok");
    served.stop().await;
}
