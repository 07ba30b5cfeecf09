//! The request and response types of one chat call, independent of HTTP.
//!
//! Key decision: a [`ChatRequest`] carries no model name and no streaming flag; both belong to the
//! tier that runs it, so the same request can be sent to any tier (escalation) unchanged.

use planex_core::Usage;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user's turn.
    User,
    /// A previous answer of the model.
    Assistant,
    /// The result of a tool the model called (function calling).
    Tool,
}

/// One message of a chat conversation, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote the message.
    pub role: Role,
    /// The message text.
    pub content: String,
    /// An assistant message's calls of the request's tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A tool message: the id of the call whose result it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    fn with_role(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::with_role(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::with_role(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::with_role(Role::Assistant, content)
    }

    /// An assistant message that called tools (as the model answered, to send back with their
    /// results).
    pub fn assistant_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::with_role(Role::Assistant, content)
        }
    }

    /// The result of tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::with_role(Role::Tool, content)
        }
    }
}

/// A call of one of the request's tools, as the model asked for it (OpenAI function calling:
/// `{"id", "type": "function", "function": {"name", "arguments"}}` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "crate::wire::WireToolCall", from = "crate::wire::WireToolCall")]
pub struct ToolCall {
    /// The call's id, echoed by the tool message that answers it.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// Its arguments as the model wrote them: a JSON object as text, not checked here.
    pub arguments: String,
}

/// One chat completion request; the model name and streaming come from the tier that runs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling: the probability mass sampled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences at which the server stops generating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// The standard OpenAI `response_format` object (e.g. `{type: "json_schema", json_schema: …}`),
    /// sent verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    /// Functions the model may call, in the OpenAI `tools` format
    /// (`{"type": "function", "function": {"name", "description", "parameters"}}`), sent verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<serde_json::Value>,
    /// The OpenAI `tool_choice` (`"auto"`, `"none"`, …), sent verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<serde_json::Value>,
}

impl ChatRequest {
    /// A request with these messages and no other settings.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Sets `max_tokens`.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets `temperature`.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `response_format` (sent verbatim).
    pub fn with_response_format(mut self, response_format: serde_json::Value) -> Self {
        self.response_format = Some(response_format);
        self
    }

    /// Sets `tools` and `tool_choice` (both sent verbatim).
    pub fn with_tools(
        mut self,
        tools: Vec<serde_json::Value>,
        tool_choice: Option<serde_json::Value>,
    ) -> Self {
        self.tools = tools;
        self.tool_choice = tool_choice;
        self
    }
}

/// Per-call context that is not part of the request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// Sent as the `X-Request-ID` header when set, so server logs can be joined with ours.
    pub request_id: Option<String>,
    /// Where the call's content goes as it arrives, when someone follows it (a streamed answer):
    /// the call is then streamed whatever its tier's `stream` setting.
    pub deltas: Option<DeltaSink>,
}

impl CallContext {
    /// A context carrying this request id.
    pub fn with_request_id(request_id: impl Into<String>) -> Self {
        Self {
            request_id: Some(request_id.into()),
            deltas: None,
        }
    }
}

/// Content of a streamed call as it arrives: `text` follows what attempt `attempt` sent before. A
/// higher `attempt` means the call was retried and its content starts over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDelta {
    /// The attempt (1 = the first) that produced the text.
    pub attempt: u32,
    /// The new text.
    pub text: String,
}

/// The sending side of a call's [`ContentDelta`]s ([`CallContext::deltas`]). Sending never
/// blocks the call; a receiver that went away is ignored.
#[derive(Debug, Clone)]
pub struct DeltaSink(tokio::sync::mpsc::UnboundedSender<ContentDelta>);

impl DeltaSink {
    /// A sink and the receiver of what is sent to it.
    pub fn channel() -> (
        DeltaSink,
        tokio::sync::mpsc::UnboundedReceiver<ContentDelta>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (DeltaSink(tx), rx)
    }

    /// Sends `text` of attempt `attempt` (nothing when it is empty).
    pub fn send(&self, attempt: u32, text: &str) {
        if !text.is_empty() {
            let _ = self.0.send(ContentDelta {
                attempt,
                text: text.to_owned(),
            });
        }
    }
}

/// Two sinks are equal when they feed the same receiver.
impl PartialEq for DeltaSink {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl Eq for DeltaSink {}

/// The result of a successful chat call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutcome {
    /// The generated text (`choices[0]`), concatenated over stream deltas when streaming.
    pub content: String,
    /// The tools the model called (`choices[0].message.tool_calls`, assembled from the stream's
    /// deltas when streaming); empty when it answered in text.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage as reported by the server (zeros, with a warning logged, when it reported none).
    pub usage: Usage,
    /// The model name as answered by the server (the tier's model if the server named none).
    pub model: String,
    /// Streaming only: time from sending the successful attempt to its first non-empty content delta.
    pub ttft: Option<Duration>,
    /// Wall time of the whole call: waiting for a concurrency slot, every attempt and every backoff.
    pub latency: Duration,
    /// Attempts made, including the successful one (1 = no retry).
    pub attempts: u32,
    /// Base URL of the endpoint that answered.
    pub endpoint: String,
    /// The `X-Request-ID` response header, when the server sent one back.
    pub response_request_id: Option<String>,
    /// The completion's `id` as the server gave it (`chatcmpl-…`), when it gave one: what ties
    /// a billed call to the server's own record of it.
    pub response_id: Option<String>,
}
