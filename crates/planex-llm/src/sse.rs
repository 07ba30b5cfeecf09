//! Decoding of a streamed chat completion: bytes → lines → `data:` events → content and usage.
//!
//! Key decision: bytes are split into lines before UTF-8 decoding, so a multi-byte character cut
//! across two network chunks is decoded correctly; a stream that ends without `data: [DONE]` is
//! malformed (truncated), hence retryable, rather than silently returning a partial answer.

use crate::types::ToolCall;
use crate::wire::{WireChunk, WireToolCallDelta};
use planex_core::Usage;

/// Splits a byte stream into lines (without `\n` or `\r\n`).
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes and returns the lines they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.pending);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(String::from_utf8_lossy(&line).into_owned());
            } else {
                self.pending.push(byte);
            }
        }
        lines
    }

    /// The last line if the stream did not end with a newline.
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.pending);
        Some(
            String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string(),
        )
    }
}

/// Accumulates the events of one streamed chat completion.
#[derive(Debug, Default)]
pub(crate) struct StreamAccumulator {
    /// Concatenated `choices[0].delta.content`.
    pub(crate) content: String,
    /// Usage from the final chunk, if the server sent it.
    pub(crate) usage: Option<Usage>,
    /// The model named by the server.
    pub(crate) model: Option<String>,
    /// The completion's id, from the first chunk that names one.
    pub(crate) response_id: Option<String>,
    /// Whether `data: [DONE]` was seen.
    pub(crate) done: bool,
    /// Tool calls assembled from `choices[0].delta.tool_calls`, by index.
    calls: Vec<ToolCall>,
}

impl StreamAccumulator {
    /// Applies one line of the event stream. Returns whether it added non-empty content, or what
    /// could not be parsed.
    pub(crate) fn on_line(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some(data) = line.strip_prefix("data:") else {
            // Blank lines end events; `:` comments, `event:`, `id:` and `retry:` carry nothing we need.
            return Ok(false);
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(false);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: WireChunk = serde_json::from_str(data).map_err(|e| {
            format!(
                "stream event is not a JSON chunk ({e}): {}",
                crate::error::truncate_body(data)
            )
        })?;
        if let Some(error) = chunk.error {
            return Err(format!(
                "server reported an error mid-stream: {}",
                crate::error::truncate_body(&error.to_string())
            ));
        }
        if self.model.is_none() {
            self.model = chunk.model.filter(|m| !m.is_empty());
        }
        if self.response_id.is_none() {
            self.response_id = chunk.id.filter(|id| !id.is_empty());
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        let Some(delta) = chunk.choices.into_iter().next().and_then(|c| c.delta) else {
            return Ok(false);
        };
        for piece in delta.tool_calls {
            self.add_tool_call(piece)?;
        }
        match delta.content {
            Some(text) if !text.is_empty() => {
                self.content.push_str(&text);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Most tool calls one answer may carry: a bound on what a server can make us hold.
const MAX_TOOL_CALLS: usize = 128;

impl StreamAccumulator {
    fn add_tool_call(&mut self, piece: WireToolCallDelta) -> Result<(), String> {
        if piece.index >= MAX_TOOL_CALLS {
            return Err(format!(
                "stream names tool call index {}, more than {MAX_TOOL_CALLS} calls",
                piece.index
            ));
        }
        while self.calls.len() <= piece.index {
            self.calls.push(ToolCall {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        }
        let call = &mut self.calls[piece.index];
        if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(function) = piece.function {
            // OpenAI sends the name once; some servers repeat it in every piece.
            match function.name.as_deref() {
                Some(name) if call.name.is_empty() => call.name = name.to_owned(),
                Some(name) if name != call.name => call.name.push_str(name),
                _ => {}
            }
            call.arguments
                .push_str(function.arguments.as_deref().unwrap_or_default());
        }
        Ok(())
    }

    /// The tool calls the stream assembled; one without a name is malformed.
    pub(crate) fn tool_calls(&mut self) -> Result<Vec<ToolCall>, String> {
        let calls = std::mem::take(&mut self.calls);
        if let Some(index) = calls.iter().position(|c| c.name.is_empty()) {
            return Err(format!(
                "streamed tool call {index} has no function name (the server sent arguments without naming the tool)"
            ));
        }
        Ok(calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_crlf() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"data: {\"a\"").is_empty());
        assert_eq!(
            splitter.push(b":1}\r\n\r\nda"),
            vec!["data: {\"a\":1}".to_string(), String::new()]
        );
        assert_eq!(splitter.push(b"ta: [DONE]"), Vec::<String>::new());
        assert_eq!(splitter.finish().as_deref(), Some("data: [DONE]"));
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn multibyte_characters_survive_chunk_boundaries() {
        let text = "data: é\n".as_bytes();
        let mut splitter = LineSplitter::default();
        let (a, b) = text.split_at(7); // inside the two bytes of 'é'
        assert!(splitter.push(a).is_empty());
        assert_eq!(splitter.push(b), vec!["data: é".to_string()]);
    }

    #[test]
    fn accumulates_content_usage_and_model() {
        let mut acc = StreamAccumulator::default();
        let lines = [
            ": keep-alive",
            r#"data: {"model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            "",
            r#"data: {"model":"m1","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"data: {"model":"m1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
            r#"data: {"model":"m1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
            "data: [DONE]",
        ];
        let added: Vec<bool> = lines.iter().map(|l| acc.on_line(l).unwrap()).collect();
        assert_eq!(added, vec![false, false, false, true, true, false, false]);
        assert_eq!(acc.content, "Hello");
        assert_eq!(acc.model.as_deref(), Some("m1"));
        assert_eq!(
            acc.usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 2,
                cached_tokens: 0
            })
        );
        assert!(acc.done);
        assert_eq!(acc.on_line("data: not json after done"), Ok(false));
    }

    #[test]
    fn garbage_and_error_events_are_reported() {
        let mut acc = StreamAccumulator::default();
        assert!(
            acc.on_line("data: {not json")
                .unwrap_err()
                .contains("not a JSON chunk")
        );
        let err = acc
            .on_line(r#"data: {"error":{"message":"boom"}}"#)
            .unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }

    #[test]
    fn tool_calls_are_assembled_from_their_pieces() {
        let mut acc = StreamAccumulator::default();
        let lines = [
            r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"read","arguments":""}}]}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","function":{"name":"list","arguments":"{}"}}]}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\":\"a\"}"}}]}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "data: [DONE]",
        ];
        for line in lines {
            assert_eq!(acc.on_line(line), Ok(false), "{line}");
        }
        let calls = acc.tool_calls().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str()),
            ("call_1", "read")
        );
        assert_eq!(calls[0].arguments, r#"{"path":"a"}"#);
        assert_eq!(calls[1].name, "list");
        let mut nameless = StreamAccumulator::default();
        nameless
            .on_line(r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#)
            .unwrap();
        assert!(nameless.tool_calls().is_err());
        let mut huge = StreamAccumulator::default();
        assert!(
            huge.on_line(r#"data: {"choices":[{"delta":{"tool_calls":[{"index":100000}]}}]}"#)
                .is_err()
        );
    }
}
