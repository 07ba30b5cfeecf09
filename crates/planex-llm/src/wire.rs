//! The OpenAI `/chat/completions` JSON shapes: the request body we send and the response bodies and
//! stream chunks we read.
//!
//! Key decision: only standard fields are sent (`response_format` passes through verbatim); vLLM's
//! removed `guided_json`/`guided_*` fields are never added, because vLLM ≥ 0.12 ignores them and
//! answers 200 with unconstrained output.

use crate::types::{ChatMessage, ChatRequest, ToolCall};
use planex_core::Usage;
use serde::{Deserialize, Serialize};

/// The body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [serde_json::Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl<'a> WireRequest<'a> {
    /// The body for `request` on `model`; streaming asks for a final usage chunk.
    pub(crate) fn new(model: &'a str, request: &'a ChatRequest, stream: bool) -> Self {
        Self {
            model,
            messages: &request.messages,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            top_p: request.top_p,
            stop: request.stop.as_deref(),
            response_format: request.response_format.as_ref(),
            tools: &request.tools,
            tool_choice: request.tool_choice.as_ref(),
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

/// The `usage` object.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(wire: WireUsage) -> Self {
        Usage {
            prompt_tokens: wire.prompt_tokens,
            completion_tokens: wire.completion_tokens,
            cached_tokens: wire
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
        }
    }
}

/// A non-streaming response body.
#[derive(Debug, Deserialize)]
pub(crate) struct WireResponse {
    /// The completion's id (`chatcmpl-…`).
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    pub(crate) choices: Vec<WireChoice>,
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireChoice {
    pub(crate) message: WireMessage,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
    /// Some servers send `null` with a text answer.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) tool_calls: Vec<WireToolCall>,
}

/// A list that may be missing or `null` (both read as empty).
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A tool call as OpenAI sends and takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireToolCall {
    #[serde(default)]
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

fn function_type() -> String {
    "function".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    /// A string on the wire; a server that sends an object gets it re-serialized.
    #[serde(default)]
    arguments: serde_json::Value,
}

impl From<WireToolCall> for ToolCall {
    fn from(wire: WireToolCall) -> Self {
        let arguments = match wire.function.arguments {
            serde_json::Value::String(text) => text,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        ToolCall {
            id: wire.id,
            name: wire.function.name,
            arguments,
        }
    }
}

impl From<ToolCall> for WireToolCall {
    fn from(call: ToolCall) -> Self {
        WireToolCall {
            id: call.id,
            kind: function_type(),
            function: WireFunction {
                name: call.name,
                arguments: serde_json::Value::String(call.arguments),
            },
        }
    }
}

/// One `data:` event of a streamed response.
#[derive(Debug, Deserialize)]
pub(crate) struct WireChunk {
    /// The completion's id, the same in every chunk of one answer.
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) choices: Vec<WireChunkChoice>,
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
    /// Some servers report a failure mid-stream as `{"error": {...}}`.
    #[serde(default)]
    pub(crate) error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireChunkChoice {
    #[serde(default)]
    pub(crate) delta: Option<WireDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireDelta {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) tool_calls: Vec<WireToolCallDelta>,
}

/// A piece of a streamed tool call: the call at `index` gets its id and name in its first piece
/// and its arguments over any number of pieces.
#[derive(Debug, Deserialize)]
pub(crate) struct WireToolCallDelta {
    #[serde(default)]
    pub(crate) index: usize,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) function: Option<WireFunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireFunctionDelta {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<String>,
}

/// The body of `GET /models`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireModelList {
    pub(crate) data: Vec<WireModel>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireModel {
    pub(crate) id: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn null_or_missing_tool_calls_are_none() {
        for body in [
            r#"{"choices":[{"message":{"content":"hi","tool_calls":null}}]}"#,
            r#"{"choices":[{"message":{"content":"hi"}}]}"#,
        ] {
            let parsed: WireResponse = serde_json::from_str(body).unwrap();
            assert!(parsed.choices[0].message.tool_calls.is_empty(), "{body}");
        }
        let chunk: WireChunk =
            serde_json::from_str(r#"{"choices":[{"delta":{"content":"x","tool_calls":null}}]}"#)
                .unwrap();
        assert!(
            chunk.choices[0]
                .delta
                .as_ref()
                .unwrap()
                .tool_calls
                .is_empty()
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn streaming_body_has_standard_fields_only() {
        let request = ChatRequest::new(vec![ChatMessage::user("hi")])
            .with_max_tokens(10)
            .with_response_format(
                json!({"type": "json_schema", "json_schema": {"name": "plan", "schema": {}}}),
            );
        let body = serde_json::to_value(WireRequest::new("m", &request, true)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 10,
                "response_format": {"type": "json_schema", "json_schema": {"name": "plan", "schema": {}}},
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        assert!(!body.to_string().contains("guided"));
    }

    #[test]
    fn non_streaming_body_omits_stream_fields() {
        let request = ChatRequest::new(vec![ChatMessage::system("s")]).with_temperature(0.5);
        let body = serde_json::to_value(WireRequest::new("m", &request, false)).unwrap();
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "system", "content": "s"}], "temperature": 0.5})
        );
    }

    #[test]
    fn usage_reads_cached_tokens_when_present() {
        let wire: WireUsage = serde_json::from_value(json!({
            "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 4}
        }))
        .unwrap();
        assert_eq!(
            Usage::from(wire),
            Usage {
                prompt_tokens: 7,
                completion_tokens: 3,
                cached_tokens: 4
            }
        );
        let wire: WireUsage = serde_json::from_value(
            json!({"prompt_tokens": 1, "completion_tokens": 2, "prompt_tokens_details": null}),
        )
        .unwrap();
        assert_eq!(Usage::from(wire).cached_tokens, 0);
    }
}
