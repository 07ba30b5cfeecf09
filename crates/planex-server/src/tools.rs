//! `GET /v1/tools`: the tool catalog plans may use, as users see it (name, kind, tier,
//! description, arguments and schemas; never prompt templates, base URLs or headers), and whether
//! each can run now (its tier's endpoints, or its MCP server's connection).

use crate::AppState;
use crate::auth::Caller;
use crate::error::ErrorBody;
use axum::extract::State;
use planex_core::{ToolKind, ToolSpec};
use serde::Serialize;
use utoipa::ToSchema;

/// One argument of a tool.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ToolArgView {
    /// Its name.
    pub name: String,
    /// Its JSON type (`string`, `integer`, …; `any` when the schema names none).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a step must give it.
    pub required: bool,
}

/// One tool of the catalog.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ToolView {
    /// The name plans use as `tool_name`.
    pub name: String,
    /// `llm` (a prompt on its tier's model), `http` (a request to a configured service) or `mcp`
    /// (a tool of an MCP server).
    pub kind: String,
    /// The MCP server it comes from (`mcp` tools only).
    pub server: Option<String>,
    /// The tier whose workers run it.
    pub tier: String,
    /// What it does (the planner sees the same line).
    pub description: String,
    /// Its arguments, by name.
    pub args: Vec<ToolArgView>,
    /// The JSON Schema of its arguments.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// The JSON Schema its output must match, when it has one.
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    /// False when the tool's tier has no endpoint taking calls now (plans using it would fail).
    pub available: bool,
}

/// `GET /v1/tools`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ToolList {
    /// The tools, by name.
    pub tools: Vec<ToolView>,
}

/// Whether `tool` can run now: its MCP server's connection is up, or its tier's model reports a
/// healthy endpoint (`http` tools, and models that track no health, count as available).
async fn available(state: &AppState, tool: &ToolSpec) -> bool {
    let executor = state.engine().executor();
    match &tool.kind {
        ToolKind::Mcp(mcp) => executor.mcp.is_up(&mcp.server),
        ToolKind::Http(_) => true,
        ToolKind::Llm(_) => executor
            .models
            .get(&tool.tier)
            .ok()
            .and_then(|model| model.status())
            .is_none_or(|status| status.healthy_endpoints > 0),
    }
}

fn view(tool: &ToolSpec, available: bool) -> ToolView {
    let summary = tool.summary();
    ToolView {
        name: summary.name,
        kind: summary.kind.to_owned(),
        server: summary.server,
        tier: summary.tier,
        description: summary.description,
        args: summary
            .args
            .into_iter()
            .map(|arg| ToolArgView {
                name: arg.name,
                kind: arg.kind,
                required: arg.required,
            })
            .collect(),
        input_schema: summary.input_schema,
        output_schema: summary.output_schema,
        available,
    }
}

/// The tools plans may use.
#[utoipa::path(get, path = "/v1/tools", tag = "plan",
    responses(
        (status = 200, body = ToolList),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tools(State(state): State<AppState>, _caller: Caller) -> axum::Json<ToolList> {
    let mut tools = Vec::new();
    let catalog = state.engine().executor().catalog.current();
    for tool in catalog.specs() {
        tools.push(view(tool, available(&state, tool).await));
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    axum::Json(ToolList { tools })
}
