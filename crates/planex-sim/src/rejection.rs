//! Framework rejections in the OpenAI error shape: an unknown route (404), a wrong method (405),
//! a body over the limit (413), a non-JSON content type (415) and any other error response that
//! is not JSON already become `{"error": {message, type, param, code}}`.
//!
//! Key decision: one response-mapping layer over the whole router rather than code in each
//! handler, so a rejection axum produces itself (the method router's empty 405, the body
//! limit's plain-text 413) is rewritten too; JSON error bodies (the handlers' own) pass untouched.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::openai::ApiError;
use crate::state::SimState;

/// The most bytes of a rejection's own text kept for the message.
const DETAIL_LIMIT: usize = 4 * 1024;

/// The router fallback: a 404 naming the method and path.
pub async fn unknown_route(method: Method, uri: Uri) -> Response {
    rejection(StatusCode::NOT_FOUND, &method, uri.path(), "", None, 0).into_response()
}

/// Whether a `Content-Type` names JSON (`application/json`, `application/*+json`, any params).
pub fn is_json_type(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence.starts_with("application/") && essence.ends_with("+json")
}

/// The 415 for a request body whose declared type is not JSON (a missing type is accepted).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        Some(value) if !is_json_type(value) => {
            let shown = value.to_str().unwrap_or("(not text)");
            let mut error = ApiError::bad_request(format!(
                "Unsupported Content-Type `{shown}`; send the request body as JSON with `Content-Type: application/json`."
            ));
            error.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            error.code = Some("unsupported_media_type");
            Err(error)
        }
        _ => Ok(()),
    }
}

/// Middleware: rewrites error responses that are not JSON into the OpenAI error shape.
pub async fn openai_errors(
    State(state): State<SimState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(is_json_type);
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The text of a rejection axum wrote (e.g. "length limit exceeded") joins the message.
    let detail = match axum::body::to_bytes(body, DETAIL_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let allow = parts.headers.get(header::ALLOW).cloned();
    let allowed = allow.as_ref().and_then(|v| v.to_str().ok());
    let limit = state.config().max_body_bytes;
    let mut rewritten = rejection(status, &method, &path, &detail, allowed, limit).into_response();
    if let Some(allow) = allow {
        rewritten.headers_mut().insert(header::ALLOW, allow);
    }
    rewritten
}

fn rejection(
    status: StatusCode,
    method: &Method,
    path: &str,
    detail: &str,
    allowed: Option<&str>,
    limit: usize,
) -> ApiError {
    let (message, code) = match status {
        StatusCode::NOT_FOUND => (
            format!(
                "Invalid URL ({method} {path}); the simulator serves /v1/chat/completions, /v1/models, /health, /sim/stats, /sim/calls, /sim/reset and /sim/search."
            ),
            Some("unknown_url"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            match allowed {
                Some(allowed) => {
                    format!("Method {method} is not allowed on {path}; use {allowed}.")
                }
                None => format!("Method {method} is not allowed on {path}."),
            },
            Some("method_not_allowed"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            format!(
                "The request body is larger than the simulator's limit of {limit} bytes ({detail}); send a smaller request or raise --max-body-bytes."
            ),
            Some("request_too_large"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            format!(
                "Unsupported Content-Type ({detail}); send JSON with `Content-Type: application/json`."
            ),
            Some("unsupported_media_type"),
        ),
        _ if detail.is_empty() => (
            format!(
                "HTTP {} {} on {method} {path}.",
                status.as_u16(),
                status.canonical_reason().unwrap_or("error")
            ),
            None,
        ),
        _ => (format!("{detail} ({method} {path})."), None),
    };
    let mut error = ApiError::bad_request(message);
    error.status = status;
    error.code = code;
    if status.is_server_error() {
        error.kind = "server_error";
    }
    error
}
