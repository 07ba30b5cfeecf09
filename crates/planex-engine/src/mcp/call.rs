//! `tools/call` of a plan step's MCP tool: the planned args as they are, a per-call timeout
//! (dropping the request makes the SDK send `notifications/cancelled`), a call that could not be
//! sent retried on a fresh connection, and the result as the step's value.

use super::{McpServers, Server};
use planex_core::McpTool;
use planex_llm::RetryPolicy;
use rmcp::ServiceError;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Map, Value};

/// The value of a successful call: its structured content when it has some, else its text
/// content (blocks joined by newlines; other blocks are described). `Err` when the tool reported
/// an error or the value is over `max_bytes`.
fn value(result: CallToolResult, tool: &McpTool, max_bytes: usize) -> Result<Value, String> {
    let text = result
        .content
        .iter()
        .map(|block| match block.as_text() {
            Some(text) => text.text.clone(),
            None => "[non-text content]".to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    if result.is_error == Some(true) {
        return Err(format!(
            "MCP tool {}/{} reported an error: {}",
            tool.server,
            tool.tool,
            planex_core::clip_chars(text.trim(), MAX_TOOL_ERROR_CHARS)
        ));
    }
    let value = match result.structured_content {
        Some(structured) => structured,
        None => Value::String(text),
    };
    let size = value.to_string().len();
    if size > max_bytes {
        return Err(format!(
            "MCP tool {}/{} returned {size} bytes, over the limit of {max_bytes} ([[mcp_servers]] max_result_bytes)",
            tool.server, tool.tool
        ));
    }
    Ok(value)
}

/// Most characters of a tool's error text in a step's error.
const MAX_TOOL_ERROR_CHARS: usize = 2000;

impl McpServers {
    /// Calls `tool` with `args`; returns its value and the attempts made, or why it failed.
    pub async fn call(
        &self,
        tool: &McpTool,
        args: &Map<String, Value>,
        retry: &RetryPolicy,
    ) -> Result<(Value, u32), (String, u32)> {
        let Some(server) = self.servers.get(&tool.server) else {
            return Err((
                format!(
                    "no MCP server {:?} is configured in this process; add it to [[mcp_servers]]",
                    tool.server
                ),
                0,
            ));
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match attempt(server, tool, args).await {
                Attempt::Done(result) => {
                    return result.map(|v| (v, attempts)).map_err(|e| (e, attempts));
                }
                Attempt::Transport(failure) => failure,
            };
            if attempts > retry.max_retries {
                return Err((
                    format!(
                        "MCP server {:?} failed after {attempts} attempts: {failure}",
                        tool.server
                    ),
                    attempts,
                ));
            }
            tracing::warn!(server = %tool.server, tool = %tool.tool, attempt = attempts, %failure, "MCP call failed; retrying on a fresh connection");
            tokio::time::sleep(retry.delay(attempts - 1, None)).await;
        }
    }
}

/// How one attempt ended.
enum Attempt {
    /// The tool answered (or cannot be retried): its value or its failure.
    Done(Result<Value, String>),
    /// The connection failed: retry on a new one.
    Transport(String),
}

async fn attempt(server: &Server, tool: &McpTool, args: &Map<String, Value>) -> Attempt {
    let client = match server.current().await {
        Ok(client) => client,
        Err(detail) => return Attempt::Transport(format!("it could not be started: {detail}")),
    };
    let params = CallToolRequestParams::new(tool.tool.clone()).with_arguments(args.clone());
    let timeout = server.config.timeout;
    match tokio::time::timeout(timeout, client.peer().call_tool(params)).await {
        Err(_) => Attempt::Done(Err(format!(
            "MCP tool {}/{} did not answer within {} s and was cancelled ([[mcp_servers]] timeout_secs)",
            tool.server,
            tool.tool,
            timeout.as_secs_f64()
        ))),
        Ok(Ok(result)) => Attempt::Done(value(result, tool, server.config.max_result_bytes)),
        Ok(Err(ServiceError::McpError(error))) => Attempt::Done(Err(format!(
            "MCP server {:?} refused the call of {}: {} (JSON-RPC error {})",
            tool.server, tool.tool, error.message, error.code.0
        ))),
        Ok(Err(ServiceError::TransportSend(error))) => {
            // Not sent: safe to try again on a new connection.
            server.forget(&client).await;
            Attempt::Transport(format!("the call could not be sent: {error}"))
        }
        Ok(Err(other)) => {
            server.forget(&client).await;
            Attempt::Done(Err(format!(
                "MCP server {:?} lost the connection during the call of {} ({other}); it is not retried, since the tool may have acted; the server is started again for the next call",
                tool.server, tool.tool
            )))
        }
    }
}

#[cfg(test)]
#[path = "call_fuzz.rs"]
mod fuzz;
