//! The API's one error type and its JSON shape `{error: {type, message, details}}`.
//!
//! Key decision: every failure becomes an [`ApiError`] in one place (`From<EngineError>` and the
//! extractor rejections), so status codes are decided once; internal errors are logged in full and
//! answered with a generic message, never with backend details.

use crate::redact;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use planex_core::cause::chain_text;
use planex_engine::{BudgetExceeded, EngineError};
use planex_store::StoreError;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable kind (`invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `uri_too_long`, `validation_failed`,
    /// `idempotency_key_reused`, `budget_exceeded`, `rate_limited`, `unavailable`, `upstream_error`, `timeout`,
    /// `internal`).
    #[serde(rename = "type")]
    pub kind: String,
    /// For people: what failed and what to do.
    pub message: String,
    /// Structured details (validation errors, the budget hit, …), `null` when there are none.
    #[schema(value_type = Option<Object>)]
    pub details: Value,
    /// The request parameter at fault, when one is (`temperature`, `messages`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// A finer machine-readable code than `type`, when there is one (`model_not_found`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// An API failure with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    details: Value,
    retry_after: Option<Duration>,
    /// Boxed: most errors have none, and a small error keeps every `Result` small.
    extras: Option<Box<Extras>>,
}

/// The rarer parts of an [`ApiError`].
#[derive(Debug, Default)]
struct Extras {
    param: Option<String>,
    code: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
            extras: None,
        }
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Sets the `Retry-After` the answer carries.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds a response header (e.g. `x-ratelimit-remaining-requests`).
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.extras_mut().headers.push((name, value));
        self
    }

    /// Names the request parameter at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.extras_mut().param = Some(param.into());
        self
    }

    /// Sets a finer machine-readable code than the type.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.extras_mut().code = Some(code);
        self
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no or an unknown API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the key is known but may not do this (e.g. charge another cost center).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method; see /openapi.json",
        )
    }

    /// 413: the body is over the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes ([server] body_limit_bytes)"),
        )
        .with_details(json!({"limit_bytes": limit}))
    }

    /// 414: the request target (path and query) is longer than the API reads.
    pub fn uri_too_long(length: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request target is {length} bytes, over the {limit}-byte limit; send large inputs in a JSON body"
            ),
        )
        .with_details(json!({"length_bytes": length, "limit_bytes": limit}))
    }

    /// 409: the request conflicts with the resource's state (e.g. cancelling a finished task).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 409: the first submission with this `Idempotency-Key` has not recorded its task (yet).
    pub fn submission_in_progress(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "submission_in_progress", message)
    }

    /// 422: an `Idempotency-Key` already names a submission with another body.
    pub fn idempotency_key_reused(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            message,
        )
    }

    /// 422: the request is well-formed but fails validation (plan rules, tool schemas).
    pub fn validation(message: impl Into<String>, details: Value) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_details(details)
    }

    /// 502: the model server or tool failed after retries.
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "upstream_error", message)
    }

    /// 503: a dependency (store, planner tier) is unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 429: a budget refused the task (when no [`BudgetExceeded`] is at hand, only its text).
    pub fn over_budget(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "budget_exceeded", message)
    }

    /// 429: a rate limit of the caller's API key (requests per second, concurrent tasks).
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            .with_code("rate_limit_exceeded")
    }

    /// 504: the task (or its planning) did not finish within the time allowed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// 500: logged in full, answered generically.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// 429 from a budget refusal, with `Retry-After`.
    pub fn budget(refusal: &BudgetExceeded) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "budget_exceeded",
            refusal.to_string(),
        )
        .with_details(json!({
            "budget": refusal.budget.as_str(),
            "name": refusal.name,
            "limit_usd": refusal.limit_usd,
            "spent_usd": refusal.spent_usd,
            "reserved_usd": refusal.reserved_usd,
            "requested_usd": refusal.requested_usd,
            "over_by_usd": refusal.over_by_usd,
            "replanned": refusal.replanned,
            "task_id": refusal.task_id,
            "retry_after_secs": refusal.retry_after.as_secs().max(1),
        }));
        error.retry_after = Some(refusal.retry_after);
        error
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The request parameter at fault, if named.
    pub fn param(&self) -> Option<&str> {
        self.extras.as_ref().and_then(|e| e.param.as_deref())
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::InvalidRequest(message) => ApiError::bad_request(message),
            EngineError::InvalidPlan(rule) => {
                ApiError::validation(format!("invalid plan: {rule}"), rule.details())
            }
            EngineError::Catalog(e) => ApiError::bad_request(e.to_string()),
            EngineError::Budget(refusal) => ApiError::budget(&refusal),
            EngineError::Store(e) => e.into(),
            EngineError::ToolUnavailable {
                ref tool,
                ref server,
                ..
            } => {
                let details = json!({"tool": tool, "server": server});
                ApiError::unavailable(error.to_string())
                    .with_retry_after(Duration::from_secs(5))
                    .with_details(details)
            }
            EngineError::Timeout(task) => ApiError::unavailable(format!(
                "task {task} did not finish in time; read it later with GET /v1/tasks/{task}"
            )),
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::TaskNotFound(id) => ApiError::not_found(format!("no task {id}")),
            StoreError::Unavailable { .. } => ApiError::unavailable(chain_text(&error)),
            other => ApiError::internal(chain_text(&other)),
        }
    }
}

impl ApiError {
    /// The JSON body this error is answered with.
    pub fn body(&self) -> Value {
        serde_json::to_value(self.error_body()).unwrap_or_default()
    }

    /// The body, with internal addresses taken out of its message and error details (see
    /// `redact.rs`; the unredacted message is logged when anything was taken out).
    fn error_body(&self) -> ErrorBody {
        let message = redact::urls(&self.message);
        if message != self.message {
            tracing::warn!(status = %self.status, error = %self.message, "error answered without its internal addresses");
        }
        let mut details = self.details.clone();
        redact::error_fields(&mut details);
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message,
                details,
                param: self.param().map(str::to_owned),
                code: self.extras.as_ref().and_then(|e| e.code).map(str::to_owned),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.error_body())).into_response();
        if let Some(after) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        for (name, value) in self.extras.iter().flat_map(|e| &e.headers) {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(*name, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
