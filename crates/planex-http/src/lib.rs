//! planex-http: the one way planex serves HTTP. The API, the workers' metrics ports and the
//! simulator all listen through [`serve_router`], so each has the same limits on slow clients
//! (docs/ARCHITECTURE.md §7, "Listeners").
//!
//! Key decision: routers are served through hyper-util's connection builder with a timer, not
//! `axum::serve`: axum's own `serve` sets no timer, so hyper's header-read timeout never applied
//! and a client that never finished a request's head held its connection open for ever.

use axum::Router;
use std::future::Future;
use std::time::Duration;

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// A client that has not sent a request's whole head within this is disconnected.
    pub header_read_timeout: Duration,
    /// Set `TCP_NODELAY` on every connection (small server-sent-event writes go out at once
    /// instead of waiting for the client's delayed ACK, about 40 ms).
    pub nodelay: bool,
}

/// The header-read timeout of every planex listener unless configured: 30 s (hyper's default).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            nodelay: false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets open
/// connections finish (graceful). Errors of single connections are logged at debug level; a
/// failed accept (out of file descriptors and the like) is retried after 50 ms.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    options: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if options.nodelay {
                        // Best effort: a socket that refuses it still serves, only slower.
                        let _ = stream.set_nodelay(true);
                    }
                    let service = hyper_util::service::TowerToHyperService::new(app.clone());
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(error = %error, "a connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
