//! OpenAI-shaped errors for the OpenAI routes (`/v1/chat/completions`, `/v1/models`):
//! `{"error": {"message", "type", "param", "code"}}`, with planex's `details` kept beside them.
//!
//! Key decision: handlers and extractors keep returning the API's one error type; a middleware
//! on these routes rewrites every error body (an extractor's 400, auth's 401, the early 413, the
//! handler's own), so no path can answer the planex shape to an OpenAI client. OpenAI's `type`
//! follows the status (`invalid_request_error`, `authentication_error`, `permission_error`,
//! `insufficient_quota` for budgets, `rate_limit_error`, `server_error`); `code` is the finer code
//! when one was set, else planex's own error type.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

/// Error bodies larger than this are passed through unchanged (none of ours is).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// OpenAI's error `type` for a status and planex's own error type.
fn openai_type(status: StatusCode, planex: &str) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        429 if planex == "budget_exceeded" => "insufficient_quota",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// The OpenAI body for planex error body `planex` answered with `status`.
pub fn openai_body(status: StatusCode, planex: &Value) -> Value {
    let error = &planex["error"];
    let kind = error["type"].as_str().unwrap_or("internal");
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or(match kind {
            "unauthorized" => "invalid_api_key",
            other => other,
        });
    json!({"error": {
        "message": error["message"].as_str().unwrap_or("request failed"),
        "type": openai_type(status, kind),
        "param": error.get("param").cloned().unwrap_or(Value::Null),
        "code": code,
        "details": error.get("details").cloned().unwrap_or(Value::Null),
    }})
}

/// Middleware: rewrites the JSON error bodies of the OpenAI routes into OpenAI's shape.
pub async fn openai_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let openai =
        path == "/v1/chat/completions" || path == "/v1/models" || path.starts_with("/v1/models/");
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !openai || response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(
            parts,
            Body::from(
                "{\"error\":{\"message\":\"error body unreadable\",\"type\":\"server_error\",\"param\":null,\"code\":\"internal\"}}",
            ),
        );
    };
    let rewritten = match serde_json::from_slice::<Value>(&bytes) {
        Ok(planex) if planex["error"].is_object() => openai_body(parts.status, &planex).to_string(),
        _ => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(rewritten))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planex_errors_become_openai_errors() {
        let planex = json!({"error": {"type": "invalid_request", "message": "bad", "details": null,
            "param": "temperature", "code": "invalid_value"}});
        let body = openai_body(StatusCode::BAD_REQUEST, &planex);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "temperature");
        assert_eq!(body["error"]["code"], "invalid_value");
        let auth = json!({"error": {"type": "unauthorized", "message": "no key", "details": null}});
        let body = openai_body(StatusCode::UNAUTHORIZED, &auth);
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["param"], Value::Null);
        let budget =
            json!({"error": {"type": "budget_exceeded", "message": "over", "details": {}}});
        let body = openai_body(StatusCode::TOO_MANY_REQUESTS, &budget);
        assert_eq!(body["error"]["type"], "insufficient_quota");
        assert_eq!(body["error"]["code"], "budget_exceeded");
        let down = json!({"error": {"type": "upstream_error", "message": "x", "details": null}});
        assert_eq!(
            openai_body(StatusCode::BAD_GATEWAY, &down)["error"]["type"],
            "server_error"
        );
    }
}
