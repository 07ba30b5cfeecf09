//! Every route of the API ([`routes`], listed once in [`table`]), the application around them
//! ([`app`]: request limits, body limit, request ids, tracing, HTTP metrics) and [`serve`].
//!
//! Key decision: routes are registered through [`RouteTable`], which records each path and method
//! as it adds the handler, so [`route_table`] is the router's own list (not a copy kept beside
//! it) and a test can hold it against `/openapi.json`. Request limits are checked from the head
//! alone, before any body byte is read: a declared `Content-Length` over the body limit is an
//! immediate JSON 413 (a client that sends a short body is not left waiting for the rest), a
//! request target over [`MAX_URI_BYTES`] a JSON 414.

use crate::error::ApiError;
use crate::extract::{self, REQUEST_ID, RequestId};
use crate::{
    AppState, dashboard, dead_letters, health, metrics, openai, openapi, plan_exec, scaling, spend,
    spend_export, task_changes, task_list, tasks, tools,
};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use std::future::Future;
use tracing::Instrument;

/// The longest request target (path and query) the API reads, in bytes; longer ones get a JSON
/// 414. (Over 65,534 bytes hyper itself answers 414, with an empty body, before the app runs.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The router being built and the `(path, method)` of every route added so far.
struct RouteTable {
    router: Router<AppState>,
    entries: Vec<(&'static str, Method)>,
}

impl RouteTable {
    fn add(mut self, path: &'static str, method: Method, route: MethodRouter<AppState>) -> Self {
        self.entries.push((path, method));
        self.router = self.router.route(path, route);
        self
    }

    fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(path, Method::GET, get(handler))
    }

    fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(path, Method::POST, post(handler))
    }

    fn delete<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(path, Method::DELETE, delete(handler))
    }
}

/// Every route of the API. Add new routes here (one line each); `/openapi.json` must document
/// them (a test compares [`route_table`] with it).
fn table() -> RouteTable {
    RouteTable {
        router: Router::new(),
        entries: Vec::new(),
    }
    .post("/v1/tasks", tasks::submit)
    .get("/v1/tasks", task_list::list_tasks)
    .get("/v1/tasks/events", task_changes::follow)
    .get("/v1/tasks/{id}", tasks::get_task)
    .get("/v1/tasks/{id}/events", tasks::events)
    .post("/v1/tasks/{id}/cancel", tasks::cancel)
    .get("/v1/dead-letters", dead_letters::list)
    .get("/v1/dead-letters/{id}", dead_letters::show)
    .delete("/v1/dead-letters/{id}", dead_letters::purge)
    .post("/v1/dead-letters/{id}/replay", dead_letters::replay)
    .post("/v1/plan", plan_exec::plan)
    .post("/v1/execute", plan_exec::execute)
    .get("/v1/tools", tools::list_tools)
    .post("/v1/chat/completions", openai::chat_completions)
    .get("/v1/models", openai::list_models)
    .get("/v1/models/{model}", openai::retrieve_model)
    .get("/v1/spend", spend::spend)
    .get("/v1/spend/export", spend_export::export)
    .get("/v1/scaling", scaling::scaling)
    .get("/healthz", health::healthz)
    .get("/readyz", health::readyz)
    .get("/metrics", health::metrics)
    .get("/openapi.json", openapi::serve_openapi)
    .get("/", dashboard::index)
    .get("/ui/{file}", dashboard::ui_asset)
}

/// Every route of the API, without the layers of [`app`].
pub fn routes() -> Router<AppState> {
    table().router
}

/// The path template and method of every route [`routes`] serves, in registration order.
pub fn route_table() -> Vec<(&'static str, Method)> {
    table().entries
}

/// The whole application: [`routes`] plus request limits, body limit, request ids, tracing and
/// HTTP metrics.
pub fn app(state: AppState) -> Router {
    let limit = state.server_settings().body_limit_bytes;
    routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // Inside `track_http`, so refused requests are counted under their route.
        .layer(middleware::from_fn(move |request, next| {
            check_head(request, next, limit)
        }))
        .layer(middleware::from_fn(metrics::track_http))
        .layer(middleware::from_fn(move |request, next| {
            request_context(request, next, limit)
        }))
        // Outermost, so every error of the OpenAI routes is rewritten, the early 413 included.
        .layer(middleware::from_fn(openai::openai_errors))
        .with_state(state)
}

/// The fallback of unknown routes: a JSON 404 (the worker metrics server shares it).
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json for the API")
}

/// The fallback of known routes asked with another method: a JSON 405.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Refuses, from the request head alone, a target over [`MAX_URI_BYTES`] (414) and a declared
/// `Content-Length` over `limit` (413), before the handler reads any of the body.
pub(crate) async fn check_head(request: Request, next: Next, limit: usize) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::uri_too_long(target, MAX_URI_BYTES).into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    // hyper has already refused a malformed Content-Length with a 400.
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    next.run(request).await
}

/// Gives each request its id (echoed as `X-Request-ID`), its body limit, and a tracing span.
async fn request_context(mut request: Request, next: Next, limit: usize) -> Response {
    let id = RequestId::from_header(request.headers().get(REQUEST_ID));
    // Probes and scrapes (each every few seconds) get no span: exported, each would be a trace.
    let quiet = matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics");
    let span = if quiet {
        tracing::Span::none()
    } else {
        tracing::info_span!(
            "http_request",
            otel.kind = "server",
            http.request.method = %request.method(),
            url.path = %request.uri().path(),
            request_id = %id.0,
            http.response.status_code = tracing::field::Empty,
        )
    };
    // A caller's W3C `traceparent` makes the request (and the task it submits) part of its
    // trace. Its `tracestate` is not carried: the store keeps only the `traceparent`, so the
    // workers' spans could not carry it either.
    if let Some(parent) = request
        .headers()
        .get(planex_llm::trace_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
    {
        planex_llm::trace_context::set_remote_parent(&span, parent, None);
    }
    request.extensions_mut().insert(id.clone());
    request.extensions_mut().insert(extract::BodyLimit(limit));
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes open requests (graceful).
/// A client that takes longer than `header_read_timeout` to send a request's head is
/// disconnected (`planex_http::serve_router`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown_token().clone();
    let header_timeout = state.server_settings().header_read_timeout;
    let app = app(state);
    // TCP_NODELAY: event streams (task events, task changes, streamed agent answers) are many
    // small writes, each of which should leave at once, not wait for the client's delayed ACK.
    let options = planex_http::ListenOptions {
        header_read_timeout: header_timeout,
        nodelay: true,
    };
    planex_http::serve_router(listener, app, options, async move {
        shutdown.await;
        // Event streams end, then open requests finish.
        token.cancel();
    })
    .await
}
