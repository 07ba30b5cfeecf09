//! OpenAI wire types: the parts of a chat-completions request the simulator reads, the error
//! body, and helpers that build error responses.
//!
//! Key decision: requests are parsed leniently with `serde_json::Value` for open-ended fields
//! (content parts, response_format) so any OpenAI-compatible client works, while a body that is
//! not a JSON object with `messages` is a 400 in the OpenAI error shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::structured::SchemaError;

/// One chat message.
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, …
    #[serde(default)]
    pub role: String,
    /// A string, an array of content parts, or null.
    #[serde(default)]
    pub content: Value,
    /// An assistant message's tool calls (function calling).
    #[serde(default)]
    pub tool_calls: Option<Value>,
}

impl Message {
    /// Whether this (assistant) message called tools.
    pub fn has_tool_calls(&self) -> bool {
        self.tool_calls
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|calls| !calls.is_empty())
    }

    /// The message text: a string content, or the concatenated `text` of content parts.
    pub fn text(&self) -> String {
        match &self.content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    }
}

/// `stream_options`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final usage chunk.
    #[serde(default)]
    pub include_usage: bool,
}

/// The fields of a chat-completions request the simulator uses.
#[derive(Clone, Debug, Deserialize)]
pub struct ChatRequest {
    /// Model id; when absent the served model is assumed.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Completion token cap.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Newer name of the completion token cap.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature: range-checked (0..=2), otherwise ignored (output is deterministic).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Structured-output request.
    #[serde(default)]
    pub response_format: Option<Value>,
    /// Functions the model may call (OpenAI `tools`).
    #[serde(default)]
    pub tools: Vec<Value>,
    /// `tool_choice`: `"none"` answers in text even when tools are offered.
    #[serde(default)]
    pub tool_choice: Option<Value>,
}

impl ChatRequest {
    /// The effective completion token cap.
    pub fn token_cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// `response_format.type`, if any.
    pub fn format_type(&self) -> Option<&str> {
        self.response_format.as_ref()?.get("type")?.as_str()
    }

    /// `response_format.json_schema` when the format type is `json_schema`: `Some(None)` when
    /// that object is missing.
    pub fn json_schema_spec(&self) -> Option<Option<&Value>> {
        (self.format_type() == Some("json_schema"))
            .then(|| self.response_format.as_ref()?.get("json_schema"))
    }

    /// Whether the request asks for any JSON answer.
    pub fn wants_json(&self) -> bool {
        matches!(self.format_type(), Some("json_object" | "json_schema"))
    }

    /// The task text of a planner request: the first user message (else the last message).
    pub fn task_text(&self) -> String {
        self.messages
            .iter()
            .find(|m| m.role == "user")
            .or_else(|| self.messages.last())
            .map(|m| m.text())
            .unwrap_or_default()
    }

    /// Whether a final usage chunk is requested when streaming.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

/// An HTTP error answered in the OpenAI error shape.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI error `type`.
    pub kind: &'static str,
    /// OpenAI error `code`.
    pub code: Option<&'static str>,
    /// OpenAI error `param`: the request field at fault.
    pub param: Option<&'static str>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
            param: None,
        }
    }

    /// A 400 `invalid_json_schema` for the `response_format` schema named `name`.
    pub fn invalid_schema(name: &str, error: &SchemaError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: format!("Invalid schema for response_format '{name}': {error}."),
            kind: "invalid_request_error",
            code: Some("invalid_json_schema"),
            param: Some("response_format"),
        }
    }

    /// A 404 `model_not_found`.
    pub fn model_not_found(requested: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The model `{requested}` does not exist or you do not have access to it."
            ),
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            param: Some("model"),
        }
    }

    /// An injected fault with status `status`.
    pub fn injected(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (kind, code) = if status == StatusCode::TOO_MANY_REQUESTS {
            ("rate_limit_error", Some("rate_limit_exceeded"))
        } else if status.is_server_error() {
            ("server_error", None)
        } else {
            ("invalid_request_error", None)
        };
        Self {
            status,
            message: format!("simulated fault: HTTP {}", status.as_u16()),
            kind,
            code,
            param: None,
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
