//! A private `redis-server` for tests: started on a free loopback port in its own temporary
//! directory, never the shared instance on 6379.
//!
//! Key decision: the server runs under a tiny `sh` supervisor whose standard input is a pipe from
//! the test process; when the test process exits for any reason (including a panic or a kill),
//! the pipe closes and the supervisor stops the server, so no test leaves a `redis-server` behind,
//! and no unsafe code (`PR_SET_PDEATHSIG`) is needed. Readiness is read from the server's own log
//! line, not polled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const SUPERVISOR: &str = r#"redis-server "$@" & pid=$!
trap 'kill $pid 2>/dev/null' EXIT
cat >/dev/null
kill -TERM $pid 2>/dev/null
wait $pid"#;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running private `redis-server`.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    appendonly: bool,
    child: Option<(Child, ChildStdin)>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

impl RedisServer {
    /// Starts a server without persistence (`--save '' --appendonly no`).
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts a server; with `appendonly`, every write goes to an append-only file in the
    /// server's directory, so `restart` keeps the data.
    pub fn start_with(appendonly: bool) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "planex-redis-{}-{port}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the redis test directory");
        let mut server = RedisServer {
            port,
            dir,
            appendonly,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("redis-supervisor")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server (install it: apt-get install redis-server)");
        let stdin = child.stdin.take().expect("supervisor stdin");
        let stdout = child.stdout.take().expect("redis-server stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("redis-server did not become ready within 20 s (is redis-server installed?)");
        self.child = Some((child, stdin));
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The consumer names of the `workers` group of a stream, sorted (`XINFO CONSUMERS`).
    pub async fn consumers(&self, stream: &str) -> Vec<String> {
        let client = redis::Client::open(self.url()).expect("a redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server");
        let consumers: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg("workers")
            .query_async(&mut conn)
            .await
            .expect("XINFO CONSUMERS");
        let mut names: Vec<String> = consumers
            .into_iter()
            .filter_map(|fields| fields.into_iter().nth(1))
            .filter_map(|name| redis::from_redis_value::<String>(name).ok())
            .collect();
        names.sort();
        names
    }

    /// Its working directory (the append-only file lives here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server gracefully (SIGTERM: with `appendonly` everything written is on disk).
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Stops the server and starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
