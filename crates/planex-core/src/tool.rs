//! Tool definitions: what the planner may call and how a worker runs it.
//!
//! A tool is data (`ToolSpec`) plus a kind (`llm`, `http`, `mcp`). Kinds are an enum matched
//! exhaustively by the executor: a new kind is a variant and one match arm, not a trait hierarchy.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tool the planner can put in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// Unique name, used as `tool_name` in plans.
    pub name: String,
    /// One line for the planner prompt.
    pub description: String,
    /// JSON Schema of the step's `args` (an object schema).
    pub input_schema: serde_json::Value,
    /// Optional JSON Schema the tool's output must match (output that fails it escalates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    /// The tier whose workers run this tool (and whose model serves `llm` tools).
    pub tier: String,
    /// How the tool runs.
    pub kind: ToolKind,
}

impl ToolSpec {
    /// An `llm` tool on TIER taking one required, non-empty string argument ARG, with the prompt
    /// `NAME: {ARG}` and no system prompt: the shape of the tools the benchmarks and test
    /// harnesses use, and a short way to build one when embedding planex.
    pub fn one_arg_llm(name: &str, arg: &str, tier: &str, max_tokens: u32) -> ToolSpec {
        ToolSpec {
            name: name.to_owned(),
            description: format!("{name} the given {arg}"),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {arg: {"type": "string", "minLength": 1}},
                "required": [arg],
                "additionalProperties": false,
            }),
            output_schema: None,
            tier: tier.to_owned(),
            kind: ToolKind::Llm(LlmTool::new(format!("{name}: {{{arg}}}"), max_tokens)),
        }
    }
}

/// How a tool runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolKind {
    /// A prompt template run on the tool's tier.
    Llm(LlmTool),
    /// A request template sent to a configured base URL.
    Http(HttpTool),
    /// A tool of a Model Context Protocol server: a direct `tools/call`, no model call.
    Mcp(McpTool),
}

/// An `mcp` tool: `tool` on the MCP server named `server` (`[[mcp_servers]]`), called with the
/// step's args as they are. Catalog entries of this kind come from the server's `tools/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpTool {
    /// The configured server's name.
    pub server: String,
    /// The tool's name on that server (the catalog name is `server__tool`, made safe).
    pub tool: String,
}

/// An `llm` tool: the args are rendered into a prompt and sent to the tier's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmTool {
    /// Optional system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// User prompt with `{arg}` placeholders naming the tool's args.
    pub prompt: String,
    /// Cap on generated tokens (per model round when the tool uses tools).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Tools the model may call while it answers (OpenAI function calling): catalog names of
    /// `http` or `mcp` tools. Empty: the model answers in one call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<String>,
    /// Most rounds of tool calls before the model must answer in text (1 to
    /// [`MAX_TOOL_ROUNDS`]).
    #[serde(
        default = "default_max_tool_rounds",
        skip_serializing_if = "is_default_tool_rounds"
    )]
    pub max_tool_rounds: u32,
}

/// The most `max_tool_rounds` an `llm` tool may set.
pub const MAX_TOOL_ROUNDS: u32 = 10;

fn default_max_tokens() -> u32 {
    512
}

fn default_max_tool_rounds() -> u32 {
    3
}

fn is_default_tool_rounds(rounds: &u32) -> bool {
    *rounds == default_max_tool_rounds()
}

impl LlmTool {
    /// A tool that renders `prompt` with no system prompt, capped at `max_tokens`, using no tools.
    pub fn new(prompt: impl Into<String>, max_tokens: u32) -> Self {
        LlmTool {
            system: None,
            prompt: prompt.into(),
            max_tokens,
            uses: Vec::new(),
            max_tool_rounds: default_max_tool_rounds(),
        }
    }
}

/// An `http` tool: a request to a configured base URL. Templated values are URL-encoded into the path
/// and query and can never change the scheme, host or port (no SSRF through args).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTool {
    /// HTTP method (GET, POST, …).
    #[serde(default = "default_method")]
    pub method: String,
    /// Absolute base URL (scheme, host, port, optional path prefix), fixed by config.
    pub base_url: String,
    /// Path and query template relative to `base_url`, e.g. `/search?q={query}`.
    pub path: String,
    /// Extra request headers (values may use `{arg}` placeholders).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Optional JSON body template; string leaves may use `{arg}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Per-request timeout in milliseconds.
    #[serde(default = "default_http_timeout_ms")]
    pub timeout_ms: u64,
    /// Responses larger than this are an error, not truncated silently.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Whether the tool may reach internal addresses (loopback, private, link-local such as the
    /// cloud metadata service); off by default, so a templated or redirected request cannot reach
    /// the cluster's own services.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_internal: bool,
}

fn default_method() -> String {
    "GET".into()
}

fn default_http_timeout_ms() -> u64 {
    10_000
}

fn default_max_response_bytes() -> usize {
    1 << 20
}
