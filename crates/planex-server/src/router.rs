//! Every route of the API ([`routes`]), the application around them ([`app`]: body limit, request
//! ids, tracing, HTTP metrics) and [`serve`].

use crate::error::ApiError;
use crate::extract::{self, REQUEST_ID, RequestId};
use crate::{AppState, health, metrics, openai, openapi, plan_exec, scaling, spend, tasks};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::future::Future;
use tracing::Instrument;

/// Every route of the API. Add new routes here (one line each).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(tasks::submit))
        .route("/v1/tasks/{id}", get(tasks::get_task))
        .route("/v1/tasks/{id}/events", get(tasks::events))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/plan", post(plan_exec::plan))
        .route("/v1/execute", post(plan_exec::execute))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/spend", get(spend::spend))
        .route("/v1/scaling", get(scaling::scaling))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve_openapi))
}

/// The whole application: [`routes`] plus body limit, request ids, tracing and HTTP metrics.
pub fn app(state: AppState) -> Router {
    let limit = state.server_settings().body_limit_bytes;
    routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(metrics::track_http))
        .layer(middleware::from_fn(move |request, next| {
            request_context(request, next, limit)
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json for the API")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Gives each request its id (echoed as `X-Request-ID`), its body limit, and a tracing span.
async fn request_context(mut request: Request, next: Next, limit: usize) -> Response {
    let id = RequestId::from_header(request.headers().get(REQUEST_ID));
    let span = tracing::info_span!(
        "http_request",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        request_id = %id.0,
        http.response.status_code = tracing::field::Empty,
    );
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
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown_token().clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            token.cancel();
        })
        .await
}
