//! Which role answers a chat request, read from its `response_format` once, before the request
//! queues: a ReAct turn (`json_schema` named `react_step`), planex's joiner (`join`, a plan schema
//! with a decision), a planner (a schema with the plan shape, whatever its name), structured output for any other schema, or text.
//!
//! Key decision: the plan generator is chosen by the schema's shape, not by the name `plan`, so a
//! schema named `plan` that is not a plan schema still gets JSON valid against it; an invalid
//! schema is a 400 before any simulated wait, fault or counter, like a malformed body.

use serde_json::Value;

use crate::openai::{ApiError, ChatRequest};
use crate::planner::schema::is_plan_schema;
use crate::react;
use crate::structured::Schema;

/// What a `json_schema` without `schema` is read as: `{}` (any JSON; refused in strict mode).
static EMPTY_SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(serde_json::Map::new()));

/// The `json_schema` name of planex's joiner (`planex_engine::JOIN_SCHEMA_NAME`).
const JOIN_SCHEMA: &str = "join";

/// The role that answers a request.
#[derive(Debug)]
pub enum Role<'a> {
    /// A ReAct turn over this turn schema.
    React(&'a Value),
    /// A planner request over this plan schema.
    Plan(&'a Value),
    /// planex's joiner (a `json_schema` named `join`: a plan schema with a decision).
    Join(&'a Value),
    /// Structured output for any other `json_schema`.
    Structured {
        /// The checked schema.
        schema: Schema,
        /// `json_schema.name` (part of the seed).
        name: String,
    },
    /// Plain text, or a small JSON object for `json_object`.
    Text {
        /// Whether JSON was asked for (`json_object`).
        json: bool,
    },
}

impl Role<'_> {
    /// Whether the request counts as a planner-tier request in the stats.
    pub fn is_planner(&self) -> bool {
        matches!(self, Role::React(_) | Role::Plan(_) | Role::Join(_))
    }
}

/// Reads the role of `request`; an unusable `json_schema` is a 400 `invalid_json_schema`.
pub fn classify(request: &ChatRequest) -> Result<Role<'_>, ApiError> {
    if let Some(schema) = react::schema(request) {
        return Ok(Role::React(schema));
    }
    let Some(spec) = request.json_schema_spec() else {
        return Ok(Role::Text {
            json: request.wants_json(),
        });
    };
    let Some(spec) = spec.and_then(Value::as_object) else {
        let mut error = ApiError::bad_request(
            "`response_format.json_schema` is required when `response_format.type` is `json_schema`; send {\"name\": …, \"schema\": {…}, \"strict\": true}",
        );
        error.param = Some("response_format");
        return Err(error);
    };
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let schema = match spec.get("schema") {
        Some(schema) if name == JOIN_SCHEMA && is_plan_schema(schema) => {
            return Ok(Role::Join(schema));
        }
        Some(schema) if is_plan_schema(schema) => return Ok(Role::Plan(schema)),
        Some(schema) => schema,
        None => &*EMPTY_SCHEMA,
    };
    let strict = spec.get("strict").and_then(Value::as_bool).unwrap_or(false);
    Schema::compile(schema, strict)
        .map(|schema| Role::Structured {
            schema,
            name: name.clone(),
        })
        .map_err(|e| ApiError::invalid_schema(&name, &e))
}
