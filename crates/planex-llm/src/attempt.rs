//! One attempt of a chat call against one endpoint: send, check the status, read the JSON body or
//! the event stream.
//!
//! Key decision: the per-attempt timeout wraps everything from sending to the end of the stream, so
//! a server that accepts the request and then stalls mid-stream is caught like one that never answers.

use crate::endpoint::Endpoint;
use crate::error::{LlmError, truncate_body};
use crate::http::{retry_after, transport};
use crate::sse::{LineSplitter, StreamAccumulator};
use crate::types::{CallContext, ToolCall};
use crate::wire::WireResponse;
use bytes::Bytes;
use futures::StreamExt;
use planex_core::Usage;
use planex_core::cause::SharedSource;
use std::time::{Duration, Instant};

/// What a successful attempt produced.
#[derive(Debug)]
pub(crate) struct AttemptOk {
    pub(crate) content: String,
    pub(crate) tool_calls: Vec<ToolCall>,
    /// `None` when the server sent no usage.
    pub(crate) usage: Option<Usage>,
    pub(crate) model: Option<String>,
    /// The completion's `id`, when the server sent one.
    pub(crate) response_id: Option<String>,
    pub(crate) ttft: Option<Duration>,
    pub(crate) response_request_id: Option<String>,
}

/// A failed attempt and, for 429, how long the server asked us to wait.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) error: LlmError,
    pub(crate) retry_after: Option<Duration>,
}

impl From<LlmError> for AttemptError {
    fn from(error: LlmError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// Everything an attempt needs besides the endpoint.
pub(crate) struct AttemptSpec<'a> {
    pub(crate) client: &'a reqwest::Client,
    /// The serialized [`crate::wire::WireRequest`].
    pub(crate) body: Bytes,
    pub(crate) stream: bool,
    pub(crate) timeout: Duration,
    pub(crate) ctx: &'a CallContext,
}

/// Runs attempt `number` (1 = the first) against `endpoint`, bounded by the spec's timeout.
pub(crate) async fn attempt(
    spec: &AttemptSpec<'_>,
    endpoint: &Endpoint,
    number: u32,
) -> Result<AttemptOk, AttemptError> {
    match tokio::time::timeout(spec.timeout, run(spec, endpoint, number)).await {
        Ok(result) => result,
        Err(_) => Err(LlmError::Timeout {
            endpoint: endpoint.base_url.clone(),
            after: spec.timeout,
        }
        .into()),
    }
}

async fn run(
    spec: &AttemptSpec<'_>,
    endpoint: &Endpoint,
    number: u32,
) -> Result<AttemptOk, AttemptError> {
    let mut request = spec
        .client
        .post(endpoint.url("chat/completions"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(spec.body.clone());
    if let Some(key) = &endpoint.api_key {
        request = request.bearer_auth(key);
    }
    if let Some(id) = &spec.ctx.request_id {
        request = request.header("X-Request-ID", id);
    }
    // The call's span (`chat {model}`) is the parent of whatever the model server traces.
    for (name, value) in crate::trace_context::headers_of(&tracing::Span::current()) {
        request = request.header(name, value);
    }
    let sent = Instant::now();
    let response = request.send().await.map_err(|e| transport(endpoint, e))?;
    let status = response.status();
    let response_request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !status.is_success() {
        let wait = if status.as_u16() == 429 {
            retry_after(response.headers())
        } else {
            None
        };
        let body = match response.text().await {
            Ok(text) => truncate_body(&text),
            Err(e) => format!("<body unreadable: {}>", planex_core::cause::ErrorChain(&e)),
        };
        let error = LlmError::Status {
            endpoint: endpoint.base_url.clone(),
            status: status.as_u16(),
            body,
        };
        return Err(AttemptError {
            error,
            retry_after: wait,
        });
    }
    let is_event_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let deltas = spec.ctx.deltas.as_ref();
    let mut ok = if spec.stream && is_event_stream {
        read_stream(response, endpoint, sent, |text| {
            if let Some(sink) = deltas {
                sink.send(number, text);
            }
        })
        .await?
    } else {
        // Also covers a server that ignores `stream: true` and answers with one JSON body.
        let ok = read_json(response, endpoint).await?;
        if let Some(sink) = deltas {
            sink.send(number, &ok.content);
        }
        ok
    };
    ok.response_request_id = response_request_id;
    Ok(ok)
}

async fn read_json(
    response: reqwest::Response,
    endpoint: &Endpoint,
) -> Result<AttemptOk, LlmError> {
    let body = response.bytes().await.map_err(|e| transport(endpoint, e))?;
    let malformed = |detail: String| LlmError::Malformed {
        endpoint: endpoint.base_url.clone(),
        detail,
        source: None,
    };
    let parsed: WireResponse = serde_json::from_slice(&body).map_err(|e| LlmError::Malformed {
        endpoint: endpoint.base_url.clone(),
        detail: format!(
            "body is not a chat completion: {}",
            truncate_body(&String::from_utf8_lossy(&body))
        ),
        source: Some(SharedSource::new(e)),
    })?;
    let Some(choice) = parsed.choices.into_iter().next() else {
        return Err(malformed("chat completion has no choices".to_string()));
    };
    Ok(AttemptOk {
        content: choice.message.content.unwrap_or_default(),
        tool_calls: choice
            .message
            .tool_calls
            .into_iter()
            .map(ToolCall::from)
            .collect(),
        usage: parsed.usage.map(Usage::from),
        model: parsed.model.filter(|m| !m.is_empty()),
        response_id: parsed.id.filter(|id| !id.is_empty()),
        ttft: None,
        response_request_id: None,
    })
}

/// Reads an event stream, handing each piece of new content to `on_delta` as it arrives.
async fn read_stream(
    response: reqwest::Response,
    endpoint: &Endpoint,
    sent: Instant,
    on_delta: impl Fn(&str),
) -> Result<AttemptOk, LlmError> {
    let malformed = |detail: String| LlmError::Malformed {
        endpoint: endpoint.base_url.clone(),
        detail,
        source: None,
    };
    let mut bytes = response.bytes_stream();
    let mut splitter = LineSplitter::default();
    let mut acc = StreamAccumulator::default();
    let mut ttft = None;
    let mut on_line = |line: &str, acc: &mut StreamAccumulator| -> Result<(), LlmError> {
        let before = acc.content.len();
        if acc.on_line(line).map_err(malformed)? {
            if ttft.is_none() {
                ttft = Some(sent.elapsed());
            }
            on_delta(&acc.content[before..]);
        }
        Ok(())
    };
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| transport(endpoint, e))?;
        for line in splitter.push(&chunk) {
            on_line(&line, &mut acc)?;
        }
        if acc.done {
            break;
        }
    }
    if let Some(line) = splitter.finish() {
        on_line(&line, &mut acc)?;
    }
    if !acc.done {
        return Err(malformed(format!(
            "event stream ended before `data: [DONE]` after {} characters of content (truncated answer)",
            acc.content.chars().count()
        )));
    }
    let tool_calls = acc.tool_calls().map_err(malformed)?;
    Ok(AttemptOk {
        content: acc.content,
        tool_calls,
        usage: acc.usage,
        model: acc.model,
        response_id: acc.response_id,
        ttft,
        response_request_id: None,
    })
}
