//! A client that never finishes a request's head, for checking that a listener disconnects it
//! (the header-read timeout every planex listener has, `planex_http::serve_router`).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connects to `addr` (`HOST:PORT`), sends a request line and one header and then nothing, and
/// asserts that the server closes the connection within `within`, sending nothing or a 408.
/// Panics with the reason otherwise.
#[allow(clippy::panic, clippy::expect_used)] // A test helper: panics with the reason.
pub async fn assert_unfinished_head_is_disconnected(addr: &str, within: Duration) {
    let mut slow = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: planex\r\n")
        .await
        .expect("the request line is written");
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(within, slow.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "{addr} must close a connection whose request head does not arrive within {within:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "nothing, or a 408, is sent back: {answer}"
    );
}
