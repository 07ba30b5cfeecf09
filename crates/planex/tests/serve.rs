//! `planex serve` as a process: start-up notices, a task over HTTP, graceful SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim_process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One HTTP/1.1 request with `Connection: close`; returns the status line and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_runs_tasks_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_planex"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("PLANEX_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = sim_process::first_line(&mut child, "planex serve");
    let addr = planex_testkit::process::first_url(&line)
        .and_then(|url| url.strip_prefix("http://"))
        .unwrap()
        .to_owned();
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/tasks?wait=true",
        r#"{"task": "Compare two GPU clouds", "max_subtasks": 3}"#,
    );
    assert!(status.contains(" 200 "), "{status}: {body}");
    assert!(body.contains("\"status\":\"complete\""), "{body}");
    let (status, body) = http(&addr, "GET", "/metrics", "");
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("http_requests_total{"), "{body}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = exited
        .recv_timeout(Duration::from_secs(60))
        .expect("planex serve exits after SIGTERM")
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("auth is DISABLED"), "{stderr}");
    assert!(stderr.contains("SIMULATED"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}
