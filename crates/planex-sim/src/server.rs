//! The HTTP server: the axum router, [`SimServer`] (start on any port, stats, graceful
//! shutdown) and [`run_forever`] for the CLI.
//!
//! Served through `planex_http::serve_router`, like the API: a client that does not send a
//! request's head within `--header-read-timeout-secs` (30 s) is disconnected.
//!
//! Key decision: shutdown first cancels every simulated wait (TTFT, pacing, hangs) and then
//! shuts the listener down gracefully, so stopping never waits for a `--hang-ms` request; a dropped
//! server also stops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::chat;
use crate::config::SimConfig;
use crate::error::SimError;
use crate::rejection;
use crate::search;
use crate::state::{SimState, SimStats};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The simulator's routes over `state` (embeddable in tests or another server). Every error
/// answer, framework rejections included, is an OpenAI-shaped JSON body (`rejection.rs`).
pub fn router(state: SimState) -> Router {
    let body_limit = state.config().max_body_bytes;
    let routes = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/health", get(health))
        .route("/sim/stats", get(stats))
        .route("/sim/calls", get(calls))
        .route("/sim/reset", post(reset))
        .route("/sim/search", get(search::search))
        .fallback(rejection::unknown_route)
        .with_state(state.clone());
    // The routes sit inside an outer router as one service, so the error layer sees their whole
    // answer: axum adds a 405's `Allow` header outside the layers of the router that routes.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(
            state,
            rejection::openai_errors,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(echo_request_id))
}

async fn echo_request_id(request: Request, next: Next) -> Response {
    let id = request.headers().get(&REQUEST_ID).cloned();
    let mut response = next.run(request).await;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn models(State(state): State<SimState>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": state.config().model, "object": "model", "created": 0, "owned_by": "planex-sim"}],
    }))
    .into_response()
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn stats(State(state): State<SimState>) -> Response {
    axum::Json(state.stats()).into_response()
}

async fn calls(State(state): State<SimState>) -> Response {
    axum::Json(state.calls()).into_response()
}

async fn reset(State(state): State<SimState>) -> Response {
    state.reset();
    axum::Json(state.stats()).into_response()
}

/// A running simulated model server.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    state: SimState,
    stop: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimServer {
    /// Binds `config.host:config.port` (port 0 = any free port) and serves in the background.
    pub async fn start(config: SimConfig) -> Result<SimServer, SimError> {
        config.validate()?;
        let requested = format!("{}:{}", config.host, config.port);
        let bind_err = |source| SimError::Bind {
            addr: requested.clone(),
            source,
        };
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let state = SimState::new(config);
        let stop = CancellationToken::new();
        let signal = stop.clone().cancelled_owned();
        let app = router(state.clone());
        let options = planex_http::ListenOptions {
            header_read_timeout: state.config().header_read_timeout,
            // TCP_NODELAY: without it, Nagle's algorithm and the client's delayed ACK hold back
            // the small SSE chunks of a streamed answer by ~40 ms, a latency no real server has.
            nodelay: true,
        };
        let task = tokio::spawn(planex_http::serve_router(listener, app, options, signal));
        tracing::debug!(%addr, "planex-sim listening");
        Ok(SimServer {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// OpenAI base URL, e.g. `http://127.0.0.1:PORT/v1` (loopback when bound to 0.0.0.0 / ::).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}/v1", SocketAddr::new(ip, self.addr.port()))
    }

    /// The same counters as `GET /sim/stats`.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// The server's state (reset counters, read the config).
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Stops accepting, ends pending simulated waits, and waits for open requests to finish.
    pub async fn shutdown(mut self) {
        self.state.cancel_waits();
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "planex-sim server error"),
                Err(e) => tracing::warn!(error = %e, "planex-sim server task failed"),
            }
        }
    }

    async fn until_stopped(&mut self) -> Result<(), SimError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let result = task.await;
        self.task = None;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SimError::Serve(e)),
            Err(e) => Err(SimError::Serve(std::io::Error::other(e))),
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.state.cancel_waits();
        self.stop.cancel();
    }
}

/// Serves `config` until ctrl-c, then shuts down gracefully (prints nothing itself).
pub async fn run_forever(config: SimConfig) -> Result<(), SimError> {
    let mut server = SimServer::start(config).await?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            server.shutdown().await;
            signal.map_err(SimError::Serve)
        }
        result = server.until_stopped() => result,
    }
}
