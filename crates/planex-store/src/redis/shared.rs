//! What every part of the Redis store shares ([`Core`]: the connection, the scripts, the key
//! layout and the options), how a command is retried over a reconnect ([`Retry`]), and how Redis
//! errors become store errors.

use super::keys::Keys;
use super::options::RedisStoreOptions;
use super::scripts::Scripts;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// What every part of the store shares: the multiplexed connection, the scripts and the layout.
pub(crate) struct Core {
    pub(super) conn: ConnectionManager,
    pub(super) scripts: Scripts,
    pub(super) keys: Keys,
    /// ARGV[1..4] of every script: prefix, finished-task TTL (s), dead-letter cap, delivery bound.
    pub(super) base_args: [String; 4],
    pub(super) options: RedisStoreOptions,
    /// The Redis URL with any password hidden, for messages.
    pub(super) target: String,
    /// Whether Redis is reachable, as the last commands found; logs outages (`outage.rs`).
    pub(super) outage: super::outage::Outage,
}

impl Core {
    pub(super) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A script invocation with the common arguments filled in.
    pub(super) fn invocation<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for arg in &self.base_args {
            invocation.arg(arg);
        }
        invocation
    }
}

/// True when the command certainly never reached the server (refused, or the write failed), so
/// even an operation that is not idempotent may be sent again.
fn never_sent(error: &redis::RedisError) -> bool {
    error.is_connection_refusal()
        || io_error_kind(error).is_some_and(|kind| {
            matches!(
                kind,
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::NotConnected
            )
        })
}

/// The kind of the I/O error behind a Redis error, if one is. The `redis` crate keeps it behind
/// an `Arc<dyn Error>`, and that `Arc` is what its `source()` hands out, so a plain downcast of
/// the source to `io::Error` never matches (the first write after a server restart, a broken
/// pipe, then looked like a command that may have arrived, and was not resent).
fn io_error_kind(error: &redis::RedisError) -> Option<std::io::ErrorKind> {
    use std::error::Error as _;
    let source = error.source()?;
    if let Some(io) = source.downcast_ref::<std::io::Error>() {
        return Some(io.kind());
    }
    source
        .downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

/// Whether an operation may simply be sent again after a connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, and writes whose repetition changes nothing (claim, extend, release).
    Idempotent,
    /// Creations and bookings: resent only when the first try certainly never arrived.
    OnlyIfUnsent,
}

impl Core {
    /// Runs `attempt`, retrying with backoff for `reconnect_for` while Redis is unreachable (the
    /// connection manager reconnects in the background; the first command after a server restart
    /// fails with a broken pipe).
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        mode: Retry,
        mut attempt: F,
    ) -> Result<T, redis::RedisError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let give_up = tokio::time::Instant::now() + self.options.reconnect_for;
        let mut backoff = Duration::from_millis(20);
        loop {
            let outcome = attempt().await;
            match &outcome {
                Ok(_) => self.outage.succeeded(&self.target),
                Err(e) if transient(e) => self.outage.failed(&self.target, e),
                // Redis answered (with an error of the command's own).
                Err(_) => self.outage.succeeded(&self.target),
            }
            match outcome {
                Err(e)
                    if transient(&e)
                        && (mode == Retry::Idempotent || never_sent(&e))
                        && tokio::time::Instant::now() + backoff < give_up =>
                {
                    tracing::debug!(error = %e, "redis unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }
}

impl Core {
    /// Runs a script invocation under [`Core::retry`].
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        mode: Retry,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, redis::RedisError> {
        self.retry(mode, || {
            let mut conn = self.conn();
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await
    }

    /// Runs a command under [`Core::retry`].
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        mode: Retry,
        cmd: &redis::Cmd,
    ) -> Result<T, redis::RedisError> {
        self.retry(mode, || {
            let mut conn = self.conn();
            async move { cmd.query_async(&mut conn).await }
        })
        .await
    }

    /// Runs a pipeline under [`Core::retry`].
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        mode: Retry,
        pipe: &redis::Pipeline,
    ) -> Result<T, redis::RedisError> {
        self.retry(mode, || {
            let mut conn = self.conn();
            async move { pipe.query_async(&mut conn).await }
        })
        .await
    }
}

/// True for errors a reconnect may cure (connection lost or refused, timeout, server loading).
pub(crate) fn transient(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading | redis::ServerErrorKind::TryAgain
            )
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> redis::RedisError {
        redis::RedisError::from(std::io::Error::new(kind, "test"))
    }

    #[test]
    fn a_failed_write_counts_as_never_sent_and_a_lost_reply_does_not() {
        assert!(never_sent(&io(std::io::ErrorKind::BrokenPipe)));
        assert!(never_sent(&io(std::io::ErrorKind::NotConnected)));
        assert!(never_sent(&io(std::io::ErrorKind::ConnectionRefused)));
        // The reply was lost: the command may have run.
        assert!(!never_sent(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(!never_sent(&io(std::io::ErrorKind::UnexpectedEof)));
        assert!(transient(&io(std::io::ErrorKind::BrokenPipe)));
    }
}
