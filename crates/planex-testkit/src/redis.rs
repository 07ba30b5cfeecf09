//! A private `redis-server` for tests and benchmarks: started on a free loopback port in its own
//! temporary directory, never the shared instance on 6379.
//!
//! Key decision: the server runs under a tiny `sh` supervisor whose standard input is a pipe from
//! this process; when this process exits for any reason (including a panic or a kill), the pipe
//! closes and the supervisor stops the server, so nothing leaves a `redis-server` behind, and no
//! unsafe code (`PR_SET_PDEATHSIG`) is needed. Dropping a [`RedisServer`] stops it the same way.
//! Readiness is read from the server's own log line, not polled.

use crate::process::{LineWaitError, OutputLines};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

const SUPERVISOR: &str = r#"redis-server "$@" & pid=$!
trap 'kill $pid 2>/dev/null' EXIT
cat >/dev/null
kill -TERM $pid 2>/dev/null
wait $pid"#;

/// How long a starting server may take to report that it accepts connections.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Why a private `redis-server` could not be started or queried.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    /// No free loopback port could be found.
    #[error("cannot find a free loopback port: {0}")]
    Port(#[source] std::io::Error),
    /// The server's working directory could not be created.
    #[error("cannot create the redis-server directory: {0}")]
    Dir(#[source] std::io::Error),
    /// The supervisor (`sh`) could not be spawned.
    #[error("cannot start redis-server (install it: apt-get install redis-server): {0}")]
    Spawn(#[source] std::io::Error),
    /// The server never reported that it accepts connections.
    #[error("redis-server did not become ready (is redis-server installed?): {0}")]
    NotReady(#[source] LineWaitError),
    /// A command against the running server failed.
    #[error("redis command failed: {0}")]
    Command(#[from] ::redis::RedisError),
    /// The server could not be killed.
    #[error("cannot kill redis-server: {0}")]
    Kill(String),
}

/// A running private `redis-server`; dropping it stops the server and removes its directory.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    appendonly: bool,
    child: Option<Running>,
}

/// The supervisor and the pipe whose closing stops it. Dropping it stops the server gracefully
/// and waits for it.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
}

fn free_port() -> Result<u16, RedisServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(RedisServerError::Port)?;
    Ok(listener
        .local_addr()
        .map_err(RedisServerError::Port)?
        .port())
}

impl RedisServer {
    /// Starts a server without persistence (`--save '' --appendonly no`).
    pub fn start() -> Result<RedisServer, RedisServerError> {
        Self::start_with(false)
    }

    /// Starts a server; with `appendonly`, every write goes to an append-only file in the
    /// server's directory, so [`RedisServer::restart`] keeps the data.
    pub fn start_with(appendonly: bool) -> Result<RedisServer, RedisServerError> {
        let port = free_port()?;
        let dir = crate::temp_dir::fresh(&format!("planex-redis-{port}"))
            .map_err(RedisServerError::Dir)?;
        let mut server = RedisServer {
            port,
            dir,
            appendonly,
            child: None,
        };
        // On failure the server is dropped here, which removes its directory.
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<(), RedisServerError> {
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
            .map_err(RedisServerError::Spawn)?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            // Asked for with `Stdio::piped()` above, so this does not happen; closing the
            // supervisor's stdin stops it.
            drop(stdin);
            let _ = child.wait();
            return Err(RedisServerError::Spawn(std::io::Error::other(
                "the supervisor has no stdout pipe",
            )));
        };
        // Held from here on, so that an early return closes the pipe and stops the supervisor.
        let running = Running { child, stdin };
        // The reader keeps draining the server's log after this wait, so it never blocks on it.
        OutputLines::read(stdout)
            .wait_for("Ready to accept connections", READY_WITHIN)
            .map_err(RedisServerError::NotReady)?;
        self.child = Some(running);
        Ok(())
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
    pub async fn consumers(&self, stream: &str) -> Result<Vec<String>, RedisServerError> {
        let client = ::redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let consumers: Vec<Vec<::redis::Value>> = ::redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg("workers")
            .query_async(&mut conn)
            .await?;
        let mut names: Vec<String> = consumers
            .into_iter()
            .filter_map(|fields| fields.into_iter().nth(1))
            .filter_map(|name| ::redis::from_redis_value::<String>(name).ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Its working directory (the append-only file lives here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server gracefully (SIGTERM: with `appendonly` everything written is on disk) and
    /// waits for it to exit. Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        drop(self.child.take());
    }

    /// Stops the server and starts it again on the same port and directory.
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.stop();
        self.launch()
    }

    /// Kills the server with SIGKILL (no shutdown: it keeps only what its append-only file had,
    /// which with `appendfsync always` is every acknowledged write), then starts it again on the
    /// same port and directory, as a crashed host's Redis comes back.
    pub fn kill9_and_restart(&mut self) -> Result<(), RedisServerError> {
        let mut conn = ::redis::Client::open(self.url())?.get_connection()?;
        let info: String = ::redis::cmd("INFO").arg("server").query(&mut conn)?;
        drop(conn);
        let pid = info
            .lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .map(str::trim)
            .ok_or_else(|| RedisServerError::Kill("INFO server names no process_id".into()))?
            .to_owned();
        let killed = Command::new("kill")
            .args(["-9", &pid])
            .status()
            .map_err(|e| RedisServerError::Kill(format!("kill -9 {pid}: {e}")))?;
        if !killed.success() {
            return Err(RedisServerError::Kill(format!("kill -9 {pid}: {killed}")));
        }
        // The supervisor's `wait` returns at once for a dead server.
        self.stop();
        self.launch()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Running {
    /// Closes the supervisor's stdin, which makes it send SIGTERM to the server and wait for it,
    /// then waits for the supervisor (never SIGKILL: that would leave the server behind).
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(url: &str) -> ::redis::RedisResult<String> {
        let mut conn = ::redis::Client::open(url)?.get_connection()?;
        ::redis::cmd("PING").query(&mut conn)
    }

    #[test]
    fn serves_on_its_own_port_keeps_appended_data_over_a_restart_and_stops_when_dropped() {
        let mut server = RedisServer::start_with(true).unwrap();
        let url = server.url();
        assert_eq!(ping(&url).unwrap(), "PONG");
        let mut conn = ::redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let _: () = ::redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query(&mut conn)
            .unwrap();
        server.restart().unwrap();
        let mut conn = ::redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let kept: String = ::redis::cmd("GET").arg("k").query(&mut conn).unwrap();
        assert_eq!(kept, "v");
        let dir = server.dir().to_owned();
        drop(server);
        assert!(ping(&url).is_err(), "a dropped server no longer answers");
        assert!(!dir.exists(), "its directory is removed");
    }
}
